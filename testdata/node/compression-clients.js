// socket.io-client 4.8.4 in Node.js and in headless Chromium chat through
// one server, each over one transport, so that the test in front of them
// can watch compression on the wire:
//
//   node testdata/node/compression-clients.js --url URL --text TEXT
//
// The page at URL/ must load /socket.io/socket.io.js (the test serves one
// with -static: Chromium lets only pages that come from a loopback server
// open WebSockets to one).
//
// Clients: node-xhr (polling over the default XMLHttpRequest, which asks for
// no compression), node-fetch (polling over fetch, which accepts gzip),
// node-websocket (the ws package, which offers permessage-deflate),
// browser-polling and browser-websocket (Chromium's own XHR and WebSocket).
// Once all are connected, each sends TEXT followed by its name; every
// client must receive every line. Prints one JSON summary; exits 1 when a
// step fails. Every wait is bounded.
'use strict';

const path = require('path');
const bounded = require('./bounded');
const { io } = require('socket.io-client');
// The fetch transport of the engine.io-client that socket.io-client uses.
const { Fetch } = require(require.resolve('engine.io-client', { paths: [path.dirname(require.resolve('socket.io-client/package.json'))] }));

const WAIT_MS = 20000;

function parseArgs(argv) {
  const opts = { url: '', text: '' };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '');
    if (!(name in opts) || argv[i + 1] === undefined) throw new Error('usage: compression-clients.js --url URL --text TEXT');
    opts[name] = argv[i + 1];
  }
  if (!opts.url || !opts.text) throw new Error('usage: compression-clients.js --url URL --text TEXT');
  return opts;
}

function withTimeout(promise, what) {
  return bounded.withTimeout(promise, what, WAIT_MS);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const summary = { ok: false, failures: [], clients: {} };
  const browser = await bounded.launchChromium(WAIT_MS);
  const nodeSockets = {};
  try {
    const common = { forceNew: true, reconnection: false };
    nodeSockets['node-xhr'] = io(opts.url, { ...common, transports: ['polling'] });
    nodeSockets['node-fetch'] = io(opts.url, { ...common, transports: [Fetch] });
    nodeSockets['node-websocket'] = io(opts.url, { ...common, transports: ['websocket'] });
    const nodeLines = {};
    for (const [name, s] of Object.entries(nodeSockets)) {
      nodeLines[name] = [];
      s.on('clientReceiver', (line) => nodeLines[name].push(line.message));
    }
    await withTimeout(
      Promise.all(Object.values(nodeSockets).map((s) => new Promise((resolve, reject) => {
        s.on('connect', resolve);
        s.on('connect_error', reject);
      }))),
      'the Node.js clients connect',
    );

    const context = await browser.newContext();
    context.setDefaultTimeout(WAIT_MS);
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    await page.goto(new URL('/', opts.url).href);
    await page.waitForFunction(() => typeof window.io === 'function');
    await withTimeout(
      page.evaluate(() => {
        window.lines = {};
        window.sockets = {};
        const open = (name, transports) =>
          new Promise((resolve, reject) => {
            const s = io(location.origin, { forceNew: true, reconnection: false, transports });
            window.sockets[name] = s;
            window.lines[name] = [];
            s.on('clientReceiver', (line) => window.lines[name].push(line.message));
            s.on('connect', resolve);
            s.on('connect_error', (err) => reject(new Error(`${name}: ${err.message}`)));
          });
        return Promise.all([open('browser-polling', ['polling']), open('browser-websocket', ['websocket'])]);
      }),
      'the browser clients connect',
    );

    const names = [...Object.keys(nodeSockets), 'browser-polling', 'browser-websocket'];
    for (const [name, s] of Object.entries(nodeSockets)) s.emit('serverReceiver', `${opts.text} ${name}`);
    await page.evaluate((text) => {
      for (const [name, s] of Object.entries(window.sockets)) s.emit('serverReceiver', `${text} ${name}`);
    }, opts.text);

    await withTimeout(
      new Promise((resolve) => {
        const check = () => (Object.values(nodeLines).every((l) => l.length >= names.length) ? resolve() : setTimeout(check, 20));
        check();
      }),
      'every line at the Node.js clients',
    );
    await withTimeout(
      page.waitForFunction((n) => Object.values(window.lines).every((l) => l.length >= n), names.length),
      'every line at the browser clients',
    );
    const browserLines = await page.evaluate(() => window.lines);
    const browserTransports = await page.evaluate(() =>
      Object.fromEntries(Object.entries(window.sockets).map(([k, s]) => [k, s.io.engine.transport.name])),
    );
    for (const [name, s] of Object.entries(nodeSockets)) {
      summary.clients[name] = { transport: s.io.engine.transport.name, lines: nodeLines[name] };
    }
    for (const name of Object.keys(browserLines)) {
      summary.clients[name] = { transport: browserTransports[name], lines: browserLines[name] };
    }
    summary.pageErrors = pageErrors;
    await context.close();
  } catch (err) {
    summary.failures.push(String(err && err.stack ? err.stack : err));
  } finally {
    for (const s of Object.values(nodeSockets)) s.close();
    await browser.close().catch(() => {});
  }
  bounded.report(summary);
}

bounded.run(main);
