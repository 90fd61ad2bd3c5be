// Runs the HTML5 WebSocket snippet (testdata/plain-page/plain.html: a bare
// WebSocket, no socket.io library, every line it receives an alert) in
// headless Chromium, in the same chat as the chat page in another browser
// context (socket.io-client 4.x) and a socket.io-client 2.x in Node.js:
//
//   1. the chat page connects (clientID 0);
//   2. the snippet page opens its WebSocket (clientID 1) and sends "Hello",
//      which the chat page must show;
//   3. the 2.x client connects (clientID 2);
//   4. lines typed on the chat page, then a line from the 2.x client, must
//      each pop up on the snippet page as an alert holding the line's JSON.
//
//   node testdata/node/plain-browser.js --url http://127.0.0.1:PORT/
//
// The server must serve the chat page at / and the snippet at /plain.html.
// Prints one JSON summary on stdout (every alert, the chat page's lines) and
// exits 1 when a step fails; the Go test checks the summary. Every wait is
// bounded.
'use strict';

const { launchChromium } = require('./harness');
const io2 = require('sio-client-2');

const WAIT_MS = 10000;
const WATCHDOG_MS = 50000;
// Typed on the chat page, one after the other.
const TYPED = ['안녕하세요, plain client', 'emoji 😀 and "quotes"', 'third line'];
const FROM_SIO2 = 'from socket.io-client 2.x';

function parseArgs(argv) {
  if (argv.length !== 2 || argv[0] !== '--url') throw new Error('usage: plain-browser.js --url URL');
  return { url: argv[1] };
}

async function main() {
  const { url } = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const summary = { ok: false, failures: [], alerts: [], chatLines: [], plainSockets: [], pageErrors: [], durationMs: 0 };
  const finish = () => {
    summary.ok = summary.failures.length === 0;
    summary.durationMs = Date.now() - started;
    process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
  };
  const watchdog = setTimeout(() => {
    summary.failures.push(`watchdog: scenario did not finish in ${WATCHDOG_MS} ms`);
    finish();
    process.exit(1);
  }, WATCHDOG_MS);

  const browser = await launchChromium(WAIT_MS);
  let sio2;
  try {
    // 1. The chat page, a socket.io 4.x client in the browser.
    const chatContext = await browser.newContext();
    chatContext.setDefaultTimeout(WAIT_MS);
    const chat = await chatContext.newPage();
    chat.on('pageerror', (err) => summary.pageErrors.push(`chat: ${err}`));
    await chat.goto(url);
    await chat.waitForFunction(() => document.body.dataset.state === 'connected');

    // 2. The snippet page. Its alerts are what a person would see.
    const plainContext = await browser.newContext();
    plainContext.setDefaultTimeout(WAIT_MS);
    const plain = await plainContext.newPage();
    plain.on('pageerror', (err) => summary.pageErrors.push(`plain: ${err}`));
    plain.on('websocket', (ws) => summary.plainSockets.push(ws.url()));
    let alertSeen = () => {};
    plain.on('dialog', (d) => {
      summary.alerts.push({ type: d.type(), message: d.message() });
      d.accept().catch(() => {});
      alertSeen();
    });
    const waitAlerts = (n, what) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`waiting for ${what}: ${summary.alerts.length} alerts after ${WAIT_MS} ms, want ${n}`)), WAIT_MS);
        alertSeen = () => {
          if (summary.alerts.length >= n) {
            clearTimeout(timer);
            resolve();
          }
        };
        alertSeen();
      });
    await plain.goto(new URL('plain.html', url).href);
    await waitAlerts(1, 'the snippet page\'s own "Hello"');
    // The chat page shows the plain client's line like any other.
    await chat.waitForFunction(
      () => Array.from(document.querySelectorAll('#message > p'), (p) => p.textContent).includes('[1님의 말] Hello'),
    );

    // 3. A socket.io 2.x client in Node.js.
    sio2 = io2(url, { forceNew: true, reconnection: false, transports: ['websocket'], timeout: WAIT_MS });
    await new Promise((resolve, reject) => {
      sio2.on('connect', resolve);
      sio2.on('connect_error', (err) => reject(new Error(`socket.io 2.x: ${err}`)));
    });

    // 4. Lines from the socket.io clients become alerts on the snippet page.
    const box = chat.locator('#txtChat');
    let want = 1;
    for (const text of TYPED) {
      want++;
      await box.click();
      await box.pressSequentially(text);
      await box.press('Enter');
      await waitAlerts(want, `the alert of ${JSON.stringify(text)}`);
    }
    want++;
    sio2.emit('serverReceiver', FROM_SIO2);
    await waitAlerts(want, 'the alert of the 2.x line');
    await chat.waitForFunction((n) => document.querySelectorAll('#message > p').length >= n, 1 + TYPED.length + 1);
    summary.chatLines = await chat.evaluate(() => Array.from(document.querySelectorAll('#message > p'), (p) => p.textContent));
    await Promise.all([chatContext.close(), plainContext.close()]);
  } catch (err) {
    summary.failures.push(String(err && err.stack ? err.stack : err));
  } finally {
    if (sio2) sio2.close();
    await browser.close().catch(() => {});
  }
  clearTimeout(watchdog);
  finish();
  process.exitCode = summary.ok ? 0 : 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(2);
});
