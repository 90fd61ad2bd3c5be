// JSONP polling in a real browser: socket.io-client 1.x or 2.x, with
// forceJSONP and polling only, runs in a page of headless Chromium (JSONP
// needs a DOM: script tags to receive, a form in an iframe to send) and
// chats through the chat server with socket.io-client 4.x over WebSocket in
// Node.js.
//
//   node testdata/node/jsonp-browser.js --chat URL --generation 1|2 \
//        --text TEXT --ws-text TEXT [--conformance URL] [--foreign PAGE-URL]
//
// The test page is served by Playwright at the server's own origin (the
// request never reaches the server), and the client library is loaded from
// node_modules. With --conformance, the 2.x client also sends a binary
// attachment over JSONP to the conformance server and checks the echo. With
// --foreign, the page at that URL, on another origin, tries the same JSONP
// connection to the chat server, which the chat server must refuse. (That
// page must really come from a loopback server: Chromium lets no page
// reach loopback addresses from elsewhere.)
//
// Prints one JSON summary on stdout; exits 1 when a step fails. Every wait
// is bounded.
'use strict';

const path = require('path');
const bounded = require('./bounded');
const ioClient4 = require('socket.io-client');

const WAIT_MS = 15000;
const LIBRARY = {
  1: path.join(__dirname, '..', '..', 'node_modules', 'sio-client-1', 'socket.io.js'),
  2: path.join(__dirname, '..', '..', 'node_modules', 'sio-client-2', 'dist', 'socket.io.js'),
};
const PAGE = '<!doctype html><meta charset="utf-8"><title>JSONP test page</title><body></body>';

function parseArgs(argv) {
  const opts = { chat: '', conformance: '', generation: '', text: '', 'ws-text': '', foreign: '' };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, '');
    if (!(name in opts)) throw new Error(`unknown argument ${argv[i]}`);
    if (argv[i + 1] === undefined) throw new Error(`${argv[i]} needs a value`);
    opts[name] = argv[++i];
  }
  if (!opts.chat || !LIBRARY[opts.generation] || !opts.text || !opts['ws-text']) {
    throw new Error('usage: jsonp-browser.js --chat URL --generation 1|2 --text T --ws-text T [--conformance URL] [--foreign PAGE-URL]');
  }
  return opts;
}

function withTimeout(promise, what) {
  return bounded.withTimeout(promise, what, WAIT_MS);
}

// openPage opens a page with the client library loaded: the test page at
// origin, or the page at url when given. It records every Socket.IO
// request: its kind (a script tag, a form's document, or XHR), method,
// query and the answer's status and content type.
async function openPage(browser, origin, generation, url) {
  const context = await browser.newContext();
  context.setDefaultTimeout(WAIT_MS);
  const page = await context.newPage();
  const requests = [];
  const errors = [];
  page.on('pageerror', (err) => errors.push(String(err)));
  page.on('response', (resp) => {
    const req = resp.request();
    const u = new URL(req.url());
    if (!u.pathname.startsWith('/socket.io/')) return;
    requests.push({
      kind: req.resourceType(),
      method: req.method(),
      j: u.searchParams.get('j'),
      transport: u.searchParams.get('transport'),
      status: resp.status(),
      contentType: resp.headers()['content-type'] || '',
    });
  });
  if (!url) {
    url = new URL('/jsonp-test.html', origin).href;
    await page.route(url, (route) => route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: PAGE }));
  }
  await page.goto(url);
  await page.addScriptTag({ path: LIBRARY[generation] });
  return { context, page, requests, errors };
}

// connectJSONP connects the page's client to target with JSONP forced and
// resolves with its outcome: connected, or the error it got.
function connectJSONP(page, target) {
  return page.evaluate(
    ({ target, wait }) =>
      new Promise((resolve) => {
        const socket = io(target, { forceJSONP: true, transports: ['polling'], forceNew: true, reconnection: false, timeout: wait });
        window.socket = socket;
        window.lines = [];
        socket.on('clientReceiver', (line) => window.lines.push(line));
        socket.on('connect', () => resolve({ connected: true }));
        socket.on('connect_error', (err) => resolve({ connected: false, error: String((err && err.message) || err) }));
        socket.on('error', (err) => resolve({ connected: false, error: String((err && err.message) || err) }));
      }),
    { target, wait: WAIT_MS - 2000 },
  );
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const summary = { generation: Number(opts.generation), ok: false, failures: [] };
  const fail = (msg) => summary.failures.push(msg);
  const browser = await bounded.launchChromium(WAIT_MS);
  let node;
  try {
    // The JSONP client in the browser, on the chat server's origin.
    const tab = await openPage(browser, opts.chat, opts.generation);
    const outcome = await withTimeout(connectJSONP(tab.page, opts.chat), 'JSONP client connects');
    if (!outcome.connected) throw new Error(`JSONP client did not connect: ${outcome.error}`);

    // socket.io-client 4.x over WebSocket in Node.js.
    node = ioClient4(opts.chat, { transports: ['websocket'], forceNew: true, reconnection: false });
    const nodeLines = [];
    node.on('clientReceiver', (line) => nodeLines.push(line));
    await withTimeout(new Promise((resolve, reject) => {
      node.on('connect', resolve);
      node.on('connect_error', reject);
    }), '4.x client connects');

    // Each sends one line; each learns its clientID from the ack.
    const browserAck = await withTimeout(
      tab.page.evaluate((text) => new Promise((resolve) => window.socket.emit('serverReceiver', text, resolve)), opts.text),
      'ack of the JSONP client\'s line',
    );
    const nodeAck = await withTimeout(new Promise((resolve) => node.emit('serverReceiver', opts['ws-text'], resolve)), 'ack of the 4.x client\'s line');
    await withTimeout(tab.page.waitForFunction(() => window.lines.length >= 2), 'both lines at the JSONP client');
    await withTimeout(new Promise((resolve) => {
      const check = () => (nodeLines.length >= 2 ? resolve() : setTimeout(check, 20));
      check();
    }), 'both lines at the 4.x client');

    summary.browser = {
      ack: browserAck,
      lines: await tab.page.evaluate(() => window.lines),
      transport: await tab.page.evaluate(() => window.socket.io.engine.transport.name),
    };
    summary.node = { ack: nodeAck, lines: nodeLines };

    if (opts.conformance) {
      // A binary attachment over JSONP, echoed by the conformance server.
      const conf = await openPage(browser, opts.conformance, opts.generation);
      const out = await withTimeout(connectJSONP(conf.page, opts.conformance), 'JSONP client connects to the conformance server');
      if (!out.connected) throw new Error(`JSONP client did not connect to the conformance server: ${out.error}`);
      summary.binary = await withTimeout(
        conf.page.evaluate(
          () =>
            new Promise((resolve) => {
              const sent = new Uint8Array(300);
              for (let i = 0; i < sent.length; i++) sent[i] = (i * 7) & 0xff;
              window.socket.on('message-back', async (label, data) => {
                let buf = data;
                if (typeof Blob !== 'undefined' && buf instanceof Blob) buf = await buf.arrayBuffer();
                const bytes = buf instanceof ArrayBuffer ? Array.from(new Uint8Array(buf)) : null;
                resolve({ label, sent: Array.from(sent), received: bytes, kind: Object.prototype.toString.call(data) });
              });
              window.socket.emit('message', 'binary over JSONP', sent.buffer);
            }),
        ),
        'the binary echo',
      );
      summary.binaryRequests = conf.requests;
      await conf.context.close();
    }

    if (opts.foreign) {
      // The same connection from a page of another origin.
      const other = await openPage(browser, '', opts.generation, opts.foreign);
      summary.foreign = await withTimeout(connectJSONP(other.page, opts.chat), 'the foreign page\'s attempt');
      summary.foreignRequests = other.requests;
      await other.context.close();
    }

    summary.requests = tab.requests;
    summary.pageErrors = tab.errors;
    await tab.context.close();
  } catch (err) {
    fail(String(err && err.stack ? err.stack : err));
  } finally {
    if (node) node.close();
    await browser.close().catch(() => {});
  }
  bounded.report(summary);
}

bounded.run(main);
