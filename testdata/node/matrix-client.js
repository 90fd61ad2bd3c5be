'use strict';
// Matrix client: drives one scenario with real socket.io clients of a chosen
// generation (1.x, 2.x, 3.x, 4.x) and transport mode, then prints one JSON
// line describing what it observed. The Go tests in integration/ assert on
// that line; this script only fails by itself on timeouts, disconnects and
// connection errors.
//
//   node testdata/node/matrix-client.js --url CHAT_URL --conformance-url CONF_URL
//        --client 1|2|3|4[,G...] --mode polling|websocket|default[,M...]
//        --scenario chat|sequential|acks|binary|burst|order [--text TEXT] [--run ID]
//        [--timeout MS]
//
// --client and --mode take comma lists for scenarios with several clients
// (client i uses entry i, the last entry repeats), which lets one run mix
// generations on the same server.
//
// Scenarios (chat server = --url, conformance server = --conformance-url):
//   chat       two clients connect at the same time; once both are connected
//              (the later one's connect event) each emits serverReceiver; both
//              must receive both clientReceiver messages.
//   sequential client 0 connects, then client 1; each emits once; both must
//              receive both messages (a fresh server hands out 0 then 1).
//   acks       client->server acks on both servers (serverReceiver on chat,
//              message-with-ack on conformance) and a server->client ack
//              (request-ack -> ack-request -> ack-response) on conformance.
//   binary     Buffers nested among JSON args round-trip through message ->
//              message-back and message-with-ack on the conformance server.
//   order      eight clients connect; once all are connected each emits 25
//              serverReceiver messages at once; all must receive all 200, and
//              (as from any single server) in one order shared by everyone.
//   burst      an observer connects, then a sender emits 50 serverReceiver
//              messages in a tight loop inside its connect handler (in the
//              default mode: while polling is being upgraded); both clients
//              must receive all 50.
//
// Chat messages are "RUN|CLIENT|SEQ|TEXT": the run id lets runs that share a
// server ignore each other's traffic (counted in "foreign"). TEXT defaults to
// non-ASCII on purpose, because Engine.IO 3 polling frames count UTF-16 code
// units; runs with 1.x clients pass ASCII, since socket.io-client 1.x
// UTF-8-encodes text a second time inside polling payloads, which servers of
// the 2.x era and later (the Node reference included) do not undo.

const path = require('path');

const PACKAGES = { 1: 'sio-client-1', 2: 'sio-client-2', 3: 'sio-client-3', 4: 'socket.io-client' };
const MODES = ['polling', 'websocket', 'default'];
const BURST = 50;
const ORDER_CLIENTS = 8;
const ORDER_EACH = 25;

const started = Date.now();
const report = { clients: [] };
const clients = [];

function parseArgs(argv) {
  const opts = { timeout: 15000, run: Math.random().toString(36).slice(2, 10), text: 'héllo €😀' };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i];
    const val = argv[i + 1];
    if (!key.startsWith('--') || val === undefined) fail(`bad argument ${key}`);
    i++;
    switch (key) {
      case '--url': opts.url = val; break;
      case '--conformance-url': opts.confURL = val; break;
      case '--client': opts.clients = val.split(',').map(Number); break;
      case '--mode': opts.modes = val.split(','); break;
      case '--scenario': opts.scenario = val; break;
      case '--run': opts.run = val; break;
      case '--text': opts.text = val; break;
      case '--timeout': opts.timeout = Number(val); break;
      default: fail(`unknown flag ${key}`);
    }
  }
  if (!opts.url && !opts.confURL) fail('need --url and/or --conformance-url');
  opts.url = opts.url || opts.confURL;
  opts.confURL = opts.confURL || opts.url;
  opts.clients = opts.clients || [4];
  opts.modes = opts.modes || ['default'];
  for (const g of opts.clients) if (!PACKAGES[g]) fail(`unknown client generation ${g}`);
  for (const m of opts.modes) if (!MODES.includes(m)) fail(`unknown mode ${m}`);
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
report.scenario = opts.scenario;
report.run = opts.run;
report.text = opts.text;
const TEXT = opts.text;

function fail(msg) {
  process.stderr.write(`matrix-client: ${msg}\n`);
  report.error = msg;
  finish(1);
}

let finished = false;
function finish(code) {
  if (finished) return;
  finished = true;
  report.elapsedMs = Date.now() - started;
  for (const c of clients) {
    c.closing = true;
    c.info.transport = transportName(c);
    try { c.socket.disconnect(); } catch (_) { /* already gone */ }
  }
  process.stdout.write(JSON.stringify(report) + '\n', () => process.exit(code));
}

// Events from every client funnel into notify(), which settles the waits
// whose condition now holds.
const waits = new Set();
function notify() {
  for (const w of waits) {
    if (w.cond()) {
      waits.delete(w);
      clearTimeout(w.timer);
      w.resolve();
    }
  }
}
function until(desc, cond) {
  return new Promise((resolve) => {
    const w = { cond, resolve };
    if (cond()) return resolve();
    w.timer = setTimeout(() => fail(`timeout after ${opts.timeout} ms waiting for ${desc}`), opts.timeout);
    waits.add(w);
  });
}

// Binary values become {"$bin": hex} so the report stays JSON and the test
// can compare bytes exactly.
function encode(v) {
  if (v === null || v === undefined) return v === undefined ? null : v;
  if (Buffer.isBuffer(v)) return { $bin: v.toString('hex') };
  if (v instanceof ArrayBuffer) return { $bin: Buffer.from(v).toString('hex') };
  if (ArrayBuffer.isView(v)) return { $bin: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') };
  if (Array.isArray(v)) return v.map(encode);
  if (typeof v === 'object') {
    const out = {};
    for (const k of Object.keys(v)) out[k] = encode(v[k]);
    return out;
  }
  return v;
}

function transportName(c) {
  const engine = c.socket.io && c.socket.io.engine;
  return engine && engine.transport ? engine.transport.name : null;
}

// newClient opens client number idx against url, using the generation and
// mode the flags give for that index.
function newClient(idx, url, extra = {}) {
  const gen = opts.clients[Math.min(idx, opts.clients.length - 1)];
  const mode = opts.modes[Math.min(idx, opts.modes.length - 1)];
  const pkg = PACKAGES[gen];
  const io = require(pkg);
  const options = {
    forceNew: true,
    'force new connection': true,
    reconnection: false,
    timeout: opts.timeout,
  };
  if (mode !== 'default') options.transports = [mode];
  if (gen >= 3 && extra.auth) options.auth = extra.auth;
  const info = {
    index: idx,
    generation: gen,
    version: require(path.join(pkg, 'package.json')).version,
    mode,
    connected: false,
    transportAtConnect: null,
    transport: null,
    upgraded: false,
    received: [],
    clientIDs: [],
    foreign: 0,
  };
  report.clients.push(info);
  const socket = io(url, options);
  const c = { socket, info, closing: false };
  clients.push(c);

  socket.on('connect', () => {
    info.connected = true;
    info.transportAtConnect = transportName(c);
    notify();
  });
  const onError = (what) => (err) => {
    if (c.closing) return;
    const detail = err && (err.message || err.description || err.type) ? (err.message || err.description || err.type) : String(err);
    fail(`client ${idx} (${gen}.x/${mode}): ${what}: ${detail}`);
  };
  socket.on('connect_error', onError('connect_error'));
  socket.on('connect_timeout', onError('connect_timeout'));
  socket.on('error', onError('error'));
  socket.on('disconnect', onError('disconnect'));

  const trackUpgrade = () => {
    const engine = socket.io.engine;
    if (!engine || c.upgradeTracked) return;
    c.upgradeTracked = true;
    engine.on('upgrade', () => {
      info.upgraded = true;
      notify();
    });
  };
  trackUpgrade();
  socket.io.on('open', trackUpgrade);

  socket.on('clientReceiver', (msg) => {
    if (!msg || typeof msg.message !== 'string' || !msg.message.startsWith(opts.run + '|')) {
      info.foreign++;
      return;
    }
    info.received.push(msg.message.slice(opts.run.length + 1));
    info.clientIDs.push(msg.clientID);
    notify();
  });
  return c;
}

function chatMessage(idx, seq) {
  return `${opts.run}|${idx}|${seq}|${TEXT}`;
}

function connected(c) {
  return until(`client ${c.info.index} to connect`, () => c.info.connected);
}

// In the default mode, wait for the upgrade to WebSocket so the report says
// where the client settled rather than where it happened to be.
async function settle() {
  for (const c of clients) {
    if (c.info.mode !== 'default' || transportName(c) === 'websocket') continue;
    await until(`client ${c.info.index} to upgrade to websocket`, () => transportName(c) === 'websocket');
  }
}

const scenarios = {
  async chat() {
    const a = newClient(0, opts.url);
    const b = newClient(1, opts.url);
    const emitAll = () => {
      for (const c of [a, b]) {
        c.info.transportAtEmit = transportName(c);
        c.socket.emit('serverReceiver', chatMessage(c.info.index, 0));
      }
    };
    // The later connect event fires the emits, so both sockets are known to
    // the server before either message is broadcast.
    let pending = 2;
    for (const c of [a, b]) c.socket.once('connect', () => { if (--pending === 0) emitAll(); });
    await until('both clients to receive both messages', () => a.info.received.length >= 2 && b.info.received.length >= 2);
  },

  async sequential() {
    const a = newClient(0, opts.url);
    await connected(a);
    const b = newClient(1, opts.url);
    await connected(b);
    a.socket.emit('serverReceiver', chatMessage(0, 0));
    await until('both clients to receive message 0', () => a.info.received.length >= 1 && b.info.received.length >= 1);
    b.socket.emit('serverReceiver', chatMessage(1, 0));
    await until('both clients to receive message 1', () => a.info.received.length >= 2 && b.info.received.length >= 2);
  },

  async acks() {
    const chat = newClient(0, opts.url);
    const conf = newClient(1, opts.confURL, { auth: { token: opts.run } });
    conf.info.auth = null;
    conf.socket.on('auth', (a) => { conf.info.auth = encode(a); notify(); });
    conf.socket.on('ack-request', (...args) => {
      const ack = args.pop();
      conf.info.ackRequest = encode(args);
      ack('answer', 7, { echoed: args.length });
      notify();
    });
    conf.socket.on('ack-response', (...args) => { conf.info.ackResponse = encode(args); notify(); });

    await connected(chat);
    chat.socket.emit('serverReceiver', chatMessage(0, 0), (res) => { chat.info.ack = encode(res); notify(); });
    await until('the serverReceiver ack and broadcast', () => chat.info.ack !== undefined && chat.info.received.length >= 1);

    await connected(conf);
    conf.socket.emit('message-with-ack', 1, '2', { 3: [false] }, (...res) => { conf.info.messageAck = encode(res); notify(); });
    await until('the message-with-ack ack', () => conf.info.messageAck !== undefined);
    conf.socket.emit('request-ack', 'ping', 42, { k: [1, null] });
    await until('ack-response', () => conf.info.ackResponse !== undefined);
    await until('the auth event', () => conf.info.auth !== null);
  },

  async binary() {
    const c = newClient(0, opts.confURL);
    const all = Buffer.alloc(256);
    for (let i = 0; i < 256; i++) all[i] = i;
    const big = Buffer.alloc(3000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + 3) & 0xff;
    const args = ['text ' + TEXT, 42, all, { nested: Buffer.from([0xff, 0x00, 0x0a, 0x0d]), list: [1, big] }];
    c.info.sent = encode(args);
    c.socket.on('message-back', (...back) => { c.info.messageBack = encode(back); notify(); });
    await connected(c);
    c.socket.emit('message', ...args);
    c.socket.emit('message-with-ack', Buffer.from('ack-bytes'), 'x', (...res) => { c.info.messageAck = encode(res); notify(); });
    c.info.sentAck = encode([Buffer.from('ack-bytes'), 'x']);
    await until('message-back and the binary ack', () => c.info.messageBack !== undefined && c.info.messageAck !== undefined);
  },

  async burst() {
    const observer = newClient(0, opts.url);
    await connected(observer);
    const sender = newClient(1, opts.url);
    sender.socket.once('connect', () => {
      sender.info.transportAtEmit = transportName(sender);
      for (let k = 0; k < BURST; k++) sender.socket.emit('serverReceiver', chatMessage(1, k));
    });
    await until(`both clients to receive ${BURST} messages`,
      () => observer.info.received.length >= BURST && sender.info.received.length >= BURST);
  },
};

scenarios.order = async () => {
  const cs = [];
  for (let i = 0; i < ORDER_CLIENTS; i++) cs.push(newClient(i, opts.url));
  await Promise.all(cs.map(connected));
  for (let k = 0; k < ORDER_EACH; k++) {
    for (const c of cs) c.socket.emit('serverReceiver', chatMessage(c.info.index, k));
  }
  const total = ORDER_CLIENTS * ORDER_EACH;
  await until(`every client to receive ${total} messages`, () => cs.every((c) => c.info.received.length >= total));
};

if (!scenarios[opts.scenario]) fail(`unknown scenario ${opts.scenario}`);
scenarios[opts.scenario]()
  .then(settle)
  .then(() => finish(0))
  .catch((err) => fail(err && err.stack ? err.stack : String(err)));
