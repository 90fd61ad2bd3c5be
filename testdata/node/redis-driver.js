'use strict';
// Chat client driver for the cluster tests: runs any number of real
// socket.io clients (1.x to 4.x), and plain WebSocket clients (the ws
// package) of the server's plain endpoint, in one process, under the control
// of the Go test. The test writes one JSON command per line on stdin and reads one JSON
// event per line on stdout; all assertions live in the test.
//
//   node testdata/node/redis-driver.js
//
// Commands:
//   {"cmd":"connect","id":"a","gen":4,"mode":"websocket|polling|default","url":"http://..."}
//   {"cmd":"connect","id":"p","mode":"plain","url":"ws://host/demo"}   a plain WebSocket
//   {"cmd":"emit","id":"a","messages":["m1","m2",...]}   emits serverReceiver once per
//                                                         message, in a tight loop (a plain
//                                                         client sends each as a text message)
//   {"cmd":"close","id":"a"}
// Events:
//   {"ev":"connect","id":"a"}
//   {"ev":"connect_error","id":"a","message":"..."}
//   {"ev":"disconnect","id":"a","reason":"..."}        for a plain client: "<close code> <reason>"
//   {"ev":"msg","id":"a","clientID":0,"message":"..."}   one per clientReceiver (a plain
//                                                         client: per message, parsed as JSON)
//   {"ev":"bin","id":"a","args":[...]}                   one per "bin" event, Buffers as
//                                                         {"$bin":"<hex>"}
//   {"ev":"question","id":"a","args":[...]}              one per "question" event, which
//                                                         is acknowledged with
//                                                         {"id": "a", "echo": <Buffer 08>}
//   {"ev":"error","message":"..."}                      a command the driver cannot run
// End of stdin closes every client and exits.

const readline = require('readline');

const WebSocket = require('ws');

const PACKAGES = { 1: 'sio-client-1', 2: 'sio-client-2', 3: 'sio-client-3', 4: 'socket.io-client' };
const clients = new Map();

function send(ev) {
  process.stdout.write(JSON.stringify(ev) + '\n');
}

function encode(v) {
  if (v === null || v === undefined) return null;
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

// connectPlain opens a plain WebSocket: no Engine.IO or Socket.IO framing,
// each message the server sends is one chat line's JSON.
function connectPlain(id, url) {
  const ws = new WebSocket(url);
  const c = { closing: false, send: (m) => ws.send(m), close: () => ws.close() };
  clients.set(id, c);
  ws.on('open', () => send({ ev: 'connect', id }));
  ws.on('message', (data, isBinary) => {
    let line;
    try {
      line = JSON.parse(data.toString());
    } catch (err) {
      send({ ev: 'error', message: `${id}: message is not JSON${isBinary ? ' (binary)' : ''}: ${data.toString()}` });
      return;
    }
    send({ ev: 'msg', id, clientID: line && line.clientID, message: line && line.message });
  });
  ws.on('error', (err) => {
    if (!c.closing && ws.readyState !== WebSocket.OPEN) send({ ev: 'connect_error', id, message: String(err.message) });
  });
  ws.on('close', (code, reason) => {
    if (!c.closing) send({ ev: 'disconnect', id, reason: `${code} ${reason}` });
  });
}

function connect({ id, gen, mode, url }) {
  if (clients.has(id)) throw new Error(`client ${id} exists`);
  if (mode === 'plain') {
    connectPlain(id, url);
    return;
  }
  const pkg = PACKAGES[gen];
  if (!pkg) throw new Error(`unknown client generation ${gen}`);
  const options = { forceNew: true, 'force new connection': true, reconnection: false, timeout: 10000 };
  if (mode && mode !== 'default') options.transports = [mode];
  const socket = require(pkg)(url, options);
  const c = {
    closing: false,
    send: (m) => socket.emit('serverReceiver', m),
    close: () => socket.disconnect(),
  };
  clients.set(id, c);
  socket.on('connect', () => send({ ev: 'connect', id }));
  const onError = (err) => {
    if (c.closing) return;
    const message = err && typeof err === 'object' ? (err.message || err.description || JSON.stringify(err)) : String(err);
    send({ ev: 'connect_error', id, message });
  };
  // 3.x and 4.x report a refused connection as connect_error; 1.x and 2.x
  // as error, with the server's data.
  socket.on('connect_error', onError);
  socket.on('error', onError);
  socket.on('disconnect', (reason) => {
    if (!c.closing) send({ ev: 'disconnect', id, reason: String(reason) });
  });
  socket.on('clientReceiver', (m) => send({ ev: 'msg', id, clientID: m && m.clientID, message: m && m.message }));
  socket.on('bin', (...args) => send({ ev: 'bin', id, args: encode(args) }));
  socket.on('question', (...args) => {
    const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    send({ ev: 'question', id, args: encode(args) });
    if (ack) ack({ id, echo: Buffer.from([8]) });
  });
}

function run(cmd) {
  const c = cmd.id !== undefined ? clients.get(cmd.id) : undefined;
  switch (cmd.cmd) {
    case 'connect':
      connect(cmd);
      break;
    case 'emit':
      if (!c) throw new Error(`no client ${cmd.id}`);
      for (const m of cmd.messages) c.send(m);
      break;
    case 'close':
      if (!c) throw new Error(`no client ${cmd.id}`);
      c.closing = true;
      c.close();
      break;
    default:
      throw new Error(`unknown command ${cmd.cmd}`);
  }
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (!line.trim()) return;
  try {
    run(JSON.parse(line));
  } catch (err) {
    send({ ev: 'error', message: String(err && err.message ? err.message : err) });
  }
});
rl.on('close', () => {
  for (const c of clients.values()) {
    c.closing = true;
    try { c.close(); } catch (_) { /* already gone */ }
  }
  process.stdout.write('', () => process.exit(0));
});
