// Drives the chat page in headless Chromium the way people use it: four
// separate browser contexts open the page, each types a line and presses
// Enter, and every tab must show every line, as text, in the same order.
//
//   node testdata/node/browser.js --url http://127.0.0.1:PORT/ \
//        [--mode mixed|polling|websocket|legacy] [--screenshot FILE]
//
// Modes:
//   mixed      tab 1 forces long-polling (?transport=polling); the others
//              use the default polling-then-WebSocket upgrade and must
//              complete it before sending.
//   polling    every tab forces long-polling.
//   websocket  every tab forces WebSocket only.
//   legacy     the page under --url is the legacy page (fixed server URL,
//              client library loaded after the page script); no query.
//
// Prints one JSON summary on stdout and exits 1 when any check fails. All
// diagnostics go to stderr. Every wait is bounded.
'use strict';

const fs = require('fs');
const path = require('path');
const { launchChromium } = require('./chromium');

const TABS = 4;
const WAIT_MS = 10000;
const WATCHDOG_MS = 50000;

// The first line of each tab; one is hostile HTML that must stay text.
const FIRST_LINES = ['안녕하세요', 'hello from tab 2', '<img src=x onerror=alert(1)>', '반가워요 😀 tab 4'];
// More conversation, one line per tab per round, so that the log overflows
// and has to scroll.
const MORE_LINES = [
  ['오늘 점심 뭐 먹을까요?', 'How about bibimbap?', '좋아요, 12시에 만나요', '저도 갈게요!'],
  ['회의는 3시로 옮겼어요', 'Noted, thanks.', '자료는 제가 올릴게요', '감사합니다'],
  ['   spaces   are   kept', 'a & b < c > d "quoted"', '줄바꿈 없는 아주아주아주아주아주아주아주아주아주아주아주긴문장입니다', 'ok'],
  ['마지막 줄입니다', '잘 보이나요?', '네, 잘 보여요', '그럼 이만!'],
];

function parseArgs(argv) {
  const opts = { url: '', mode: 'mixed', screenshot: '' };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--?/, '');
    const value = argv[i + 1];
    if (!(name in opts) || value === undefined) {
      throw new Error(`usage: browser.js --url URL [--mode mixed|polling|websocket|legacy] [--screenshot FILE] (bad argument ${argv[i]})`);
    }
    opts[name] = value;
    i++;
  }
  if (!opts.url) throw new Error('--url is required');
  if (!['mixed', 'polling', 'websocket', 'legacy'].includes(opts.mode)) throw new Error(`unknown --mode ${opts.mode}`);
  return opts;
}

// queryFor returns the query string tab i opens the page with.
function queryFor(mode, i) {
  switch (mode) {
    case 'polling':
      return '?transport=polling';
    case 'websocket':
      return '?transport=websocket';
    case 'mixed':
      return i === 1 ? '?transport=polling' : '';
    default:
      return '';
  }
}

// expectedTransport is the transport tab i must end up on, or '' when the
// mode does not pin it.
function expectedTransport(mode, i) {
  switch (mode) {
    case 'polling':
      return 'polling';
    case 'websocket':
      return 'websocket';
    case 'mixed':
      return i === 1 ? 'polling' : 'websocket';
    default:
      return '';
  }
}

// probeScript runs in every page before its own scripts. It wraps the io()
// function the client library installs on window so that the driver can see
// each socket the page creates, whatever the page does with it (the legacy
// page keeps its socket in a local variable).
function probeScript() {
  const probe = { sockets: [] };
  window.__chatProbe = probe;
  let wrapped;
  Object.defineProperty(window, 'io', {
    configurable: true,
    get() {
      return wrapped;
    },
    set(lookup) {
      if (typeof lookup !== 'function') {
        wrapped = lookup;
        return;
      }
      const io = function () {
        const socket = lookup.apply(this, arguments);
        probe.sockets.push(socket);
        return socket;
      };
      Object.assign(io, lookup);
      io.io = io;
      io.connect = io;
      wrapped = io;
    },
  });
  probe.state = function () {
    const s = probe.sockets[0];
    if (!s) return { sockets: 0, connected: false, transport: '' };
    const engine = s.io && s.io.engine;
    return {
      sockets: probe.sockets.length,
      connected: s.connected === true,
      transport: engine && engine.transport ? engine.transport.name : '',
    };
  };
}

// readTab collects what a person would see in the tab, straight from its DOM.
function readTab() {
  const log = document.getElementById('message');
  const input = document.getElementById('txtChat');
  return {
    lines: Array.from(log.children, (el) => el.textContent),
    mine: Array.from(log.children, (el, i) => (el.classList.contains('mine') ? i : -1)).filter((i) => i >= 0),
    imgInLog: log.querySelectorAll('img').length,
    input: input.value,
    scrollTop: log.scrollTop,
    clientHeight: log.clientHeight,
    scrollHeight: log.scrollHeight,
    pageState: document.body.dataset.state || '',
    pageTransport: document.body.dataset.transport || '',
  };
}

function trackNetwork(page, rec) {
  page.on('websocket', (ws) => {
    rec.websockets.push(ws.url());
    rec.socketHosts.add(new URL(ws.url()).host);
    ws.on('framesent', (f) => {
      rec.wsSent.push(typeof f.payload === 'string' ? f.payload : '<binary>');
    });
  });
  page.on('request', (req) => {
    const u = new URL(req.url());
    if (u.pathname.startsWith('/socket.io/') && u.searchParams.has('transport')) rec.socketHosts.add(u.host);
    if (u.pathname.startsWith('/socket.io/') && u.searchParams.get('transport') === 'polling') {
      rec.pollingRequests++;
      if (req.method() === 'POST') rec.pollingPosts.push(req.postData() || '');
    }
    // The hostile line's <img src=x> would fetch /x if it were ever parsed.
    if (u.pathname === '/x') rec.hostileFetches++;
  });
  page.on('dialog', (d) => {
    rec.dialogs.push(`${d.type()}: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  page.on('pageerror', (err) => rec.pageErrors.push(String(err)));
}

// sentVia reports which transport carried the serverReceiver packet for text.
function sentVia(rec, text) {
  const needle = JSON.stringify(text);
  const hit = (payload) => payload.includes('"serverReceiver"') && payload.includes(needle);
  const ws = rec.wsSent.some(hit);
  const polling = rec.pollingPosts.some(hit);
  if (ws && polling) return 'both';
  if (ws) return 'websocket';
  if (polling) return 'polling';
  return '';
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const failures = [];
  const check = (ok, msg) => {
    if (!ok) failures.push(msg);
  };
  const summary = { mode: opts.mode, url: opts.url, ok: false, tabs: [], screenshot: '', failures, durationMs: 0 };

  const watchdog = setTimeout(() => {
    failures.push(`watchdog: scenario did not finish in ${WATCHDOG_MS} ms`);
    summary.durationMs = Date.now() - started;
    process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
    process.exit(1);
  }, WATCHDOG_MS);

  const browser = await launchChromium(WAIT_MS);

  try {
    const tabs = [];
    // Open the tabs one after another, each connected before the next opens,
    // so the server sees them in a known order.
    for (let i = 0; i < TABS; i++) {
      const context = await browser.newContext({ viewport: { width: 480, height: 640 } });
      context.setDefaultTimeout(WAIT_MS);
      await context.addInitScript(probeScript);
      const page = await context.newPage();
      const rec = {
        index: i,
        query: queryFor(opts.mode, i),
        websockets: [],
        wsSent: [],
        pollingRequests: 0,
        pollingPosts: [],
        hostileFetches: 0,
        socketHosts: new Set(),
        dialogs: [],
        pageErrors: [],
      };
      trackNetwork(page, rec);
      await page.goto(new URL(rec.query, opts.url).href, { timeout: WAIT_MS });
      await page.waitForFunction(() => window.__chatProbe.state().connected, null, { timeout: WAIT_MS });
      tabs.push({ context, page, rec });
    }

    // The dialog listener must really see dialogs, or "no dialog opened"
    // would prove nothing.
    await tabs[0].page.evaluate(() => alert('probe'));
    check(tabs[0].rec.dialogs.length === 1, `dialog probe not observed: ${JSON.stringify(tabs[0].rec.dialogs)}`);
    tabs[0].rec.dialogs.length = 0;

    // Tabs whose transport is pinned must be on it before anything is sent,
    // so that the network record below says which one carried the line.
    for (const t of tabs) {
      const want = expectedTransport(opts.mode, t.rec.index);
      if (!want) continue;
      await t.page.waitForFunction((w) => window.__chatProbe.state().transport === w, want, { timeout: WAIT_MS });
      if (opts.mode !== 'legacy') {
        await t.page.waitForFunction((w) => document.body.dataset.transport === w, want, { timeout: WAIT_MS });
      }
    }

    const sent = [];
    // waitForLines bounds the wait for every tab to show n lines.
    const waitForLines = async (n) => {
      await Promise.all(
        tabs.map((t) =>
          t.page.waitForFunction((k) => document.getElementById('message').children.length >= k, n, { timeout: WAIT_MS }),
        ),
      );
    };
    // send types text into the tab's box like a person and presses Enter,
    // then waits until every tab has received it, which keeps the order of
    // lines the same everywhere.
    const send = async (t, text) => {
      const box = t.page.locator('#txtChat');
      await box.click();
      await box.pressSequentially(text);
      await box.press('Enter');
      const after = await box.inputValue();
      check(after === '', `tab ${t.rec.index}: text box holds ${JSON.stringify(after)} after Enter`);
      sent.push({ tab: t.rec.index, text });
      await waitForLines(sent.length);
    };

    for (const t of tabs) await send(t, FIRST_LINES[t.rec.index]);
    for (const round of MORE_LINES) {
      for (const t of tabs) await send(t, round[t.rec.index]);
    }

    // Our page learns its own id from the server's ack and marks its own
    // lines; the acks may still be on their way.
    if (opts.mode !== 'legacy') {
      await Promise.all(
        tabs.map((t) => {
          const own = sent.filter((s) => s.tab === t.rec.index).length;
          return t.page.waitForFunction((n) => document.querySelectorAll('#message > .mine').length >= n, own, { timeout: WAIT_MS });
        }),
      );
    }

    const views = await Promise.all(tabs.map((t) => t.page.evaluate(readTab)));
    const states = await Promise.all(tabs.map((t) => t.page.evaluate(() => window.__chatProbe.state())));

    // Which id did the server give each tab? Its own first line tells.
    const idOf = new Map();
    const lineRe = /^\[(\d+)님의 말\] ([\s\S]*)$/;
    for (const line of views[0].lines.slice(0, TABS)) {
      const m = lineRe.exec(line);
      if (!m) continue;
      const tab = FIRST_LINES.indexOf(m[2]);
      if (tab >= 0) idOf.set(tab, Number(m[1]));
    }
    check(idOf.size === TABS, `could not find every tab's first line in ${JSON.stringify(views[0].lines)}`);
    check(new Set(idOf.values()).size === TABS, `ids are not distinct: ${JSON.stringify([...idOf])}`);
    const expected = sent.map((s) => `[${idOf.get(s.tab)}님의 말] ${s.text}`);

    tabs.forEach((t, i) => {
      const v = views[i];
      const rec = t.rec;
      const want = expectedTransport(opts.mode, i);
      const via = sentVia(rec, FIRST_LINES[i]);
      check(JSON.stringify(v.lines) === JSON.stringify(expected), `tab ${i}: log ${JSON.stringify(v.lines)}, want ${JSON.stringify(expected)}`);
      check(v.input === '', `tab ${i}: text box not cleared`);
      check(v.scrollHeight > v.clientHeight, `tab ${i}: log did not overflow (${v.scrollHeight} <= ${v.clientHeight}); the scroll check would be empty`);
      check(Math.abs(v.scrollTop + v.clientHeight - v.scrollHeight) <= 2, `tab ${i}: log not scrolled to the bottom (top ${v.scrollTop} + client ${v.clientHeight} vs height ${v.scrollHeight})`);
      check(v.imgInLog === 0, `tab ${i}: ${v.imgInLog} <img> elements inside #message`);
      check(rec.dialogs.length === 0, `tab ${i}: dialogs opened: ${JSON.stringify(rec.dialogs)}`);
      check(rec.hostileFetches === 0, `tab ${i}: the hostile <img src=x> was fetched`);
      check(rec.pageErrors.length === 0, `tab ${i}: page errors: ${JSON.stringify(rec.pageErrors)}`);
      check(states[i].sockets === 1, `tab ${i}: page created ${states[i].sockets} sockets`);
      // The legacy page names its server itself; make sure it is this one.
      const hosts = [...rec.socketHosts];
      check(hosts.length === 1 && hosts[0] === new URL(opts.url).host, `tab ${i}: Socket.IO traffic went to ${JSON.stringify(hosts)}, want ${new URL(opts.url).host}`);
      if (want) {
        check(states[i].transport === want, `tab ${i}: socket transport ${states[i].transport}, want ${want}`);
        check(via === want, `tab ${i}: its line travelled over ${via || 'nothing seen'}, want ${want}`);
        if (want === 'polling') check(rec.websockets.length === 0, `tab ${i}: opened WebSockets ${JSON.stringify(rec.websockets)} though polling was forced`);
        if (rec.query === '?transport=websocket') check(rec.pollingRequests === 0, `tab ${i}: made ${rec.pollingRequests} polling requests though WebSocket was forced`);
      }
      if (opts.mode !== 'legacy') {
        const own = sent.map((s, k) => (s.tab === i ? k : -1)).filter((k) => k >= 0);
        check(JSON.stringify(v.mine) === JSON.stringify(own), `tab ${i}: lines marked as its own ${JSON.stringify(v.mine)}, want ${JSON.stringify(own)}`);
        check(v.pageState === 'connected', `tab ${i}: page shows state ${v.pageState}`);
        if (want) check(v.pageTransport === want, `tab ${i}: page shows transport ${v.pageTransport}, want ${want}`);
      }
      summary.tabs.push({
        index: i,
        query: rec.query,
        id: idOf.has(i) ? idOf.get(i) : null,
        socketTransport: states[i].transport,
        pageState: v.pageState,
        pageTransport: v.pageTransport,
        sentVia: via,
        websockets: rec.websockets.length,
        pollingRequests: rec.pollingRequests,
        socketHosts: [...rec.socketHosts],
        lines: v.lines,
        mine: v.mine,
        input: v.input,
        scroll: { top: v.scrollTop, client: v.clientHeight, height: v.scrollHeight },
        imgInLog: v.imgInLog,
        hostileFetches: rec.hostileFetches,
        dialogs: rec.dialogs,
        pageErrors: rec.pageErrors,
      });
    });
    summary.expected = expected;

    if (opts.screenshot) {
      fs.mkdirSync(path.dirname(opts.screenshot), { recursive: true });
      await tabs[0].page.screenshot({ path: opts.screenshot, timeout: WAIT_MS });
      summary.screenshot = path.resolve(opts.screenshot);
      console.error(`screenshot: ${summary.screenshot}`);
    }
    await Promise.all(tabs.map((t) => t.context.close()));
  } catch (err) {
    failures.push(String(err && err.stack ? err.stack : err));
  } finally {
    await browser.close().catch(() => {});
  }

  clearTimeout(watchdog);
  summary.ok = failures.length === 0;
  summary.durationMs = Date.now() - started;
  process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
  process.exitCode = summary.ok ? 0 : 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(2);
});
