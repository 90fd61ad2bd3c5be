'use strict';
// Cluster client: real socket.io clients of several generations connect to
// the chat through the balancer and stay connected, reconnecting by
// themselves as the chat page does. The Go test drives them with JSON
// commands on stdin and asserts on the JSON events they print on stdout, one
// per line; this script decides nothing.
//
//   node testdata/node/cluster-client.js --url BALANCER_URL --clients 4:polling,4:default,2:polling
//
// --clients lists one GENERATION:MODE per client: generation 1, 2, 3 or 4
// is socket.io-client 1.x, 2.x, 3.x or 4.x; mode polling keeps the client
// on HTTP long-polling, websocket uses WebSocket only, default lets it
// upgrade to WebSocket.
//
// Commands:
//   {"cmd":"send","client":I,"text":T}  emit serverReceiver T with an ack
//   {"cmd":"drop","client":I,"ms":N,"url":U}
//                    cut the client's connection (its TCP socket, or its
//                    engine over polling) with reconnection held off for
//                    N ms, then let it reconnect, to U when given
//   {"cmd":"quiet"}  answer {"ev":"quiet"} once no client has anything on
//                    the wire but its pending poll: no POST, no frame, no
//                    buffered packet
//   {"cmd":"exit"}   disconnect everyone and exit
// Events:
//   {"ev":"connect","client":I,"sid":S,"id":ID,"transport":T,"recovered":B}
//                                       (again on reconnect; S is the Engine.IO
//                                       session, ID the socket)
//   {"ev":"upgrade","client":I,"sid":S}
//   {"ev":"disconnect","client":I,"reason":R}
//   {"ev":"connect_error","client":I,"error":E}
//   {"ev":"ack","client":I,"text":T,"clientID":N}
//   {"ev":"recv","client":I,"clientID":N,"message":T,"args":A,"offset":O}
//                    A: how many arguments the event had; O: the last one,
//                    when a string (a recovery offset)
//   {"ev":"quiet"}

const { onCommands } = require('./harness');

const PACKAGES = { 1: 'sio-client-1', 2: 'sio-client-2', 3: 'sio-client-3', 4: 'socket.io-client' };

function out(ev) {
  process.stdout.write(JSON.stringify(ev) + '\n');
}

function die(msg) {
  process.stderr.write(`cluster-client: ${msg}\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
let url;
let specs;
for (let i = 0; i < args.length; i += 2) {
  if (args[i] === '--url') url = args[i + 1];
  else if (args[i] === '--clients') specs = args[i + 1];
  else die(`unknown flag ${args[i]}`);
}
if (!url || !specs) die('need --url and --clients');

const clients = specs.split(',').map((spec, index) => {
  const [gen, mode] = spec.split(':');
  if (!PACKAGES[gen] || !['polling', 'websocket', 'default'].includes(mode)) die(`bad client ${spec}`);
  const io = require(PACKAGES[gen]);
  const options = {
    forceNew: true,
    reconnection: true,
    // Reconnect promptly: the test waits for it.
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
    randomizationFactor: 0.2,
    timeout: 5000,
  };
  if (mode === 'polling') options.transports = ['polling'];
  if (mode === 'websocket') options.transports = ['websocket'];
  const socket = io(url, options);
  const c = { index, socket };
  const engine = () => socket.io.engine;
  const sid = () => (engine() ? engine().id : null);

  // Each reconnection makes a new engine; watch each one's upgrade.
  const watchEngine = () => {
    const e = engine();
    if (!e || e.watched) return;
    e.watched = true;
    e.on('upgrade', () => out({ ev: 'upgrade', client: index, sid: e.id }));
  };
  socket.io.on('open', watchEngine);
  watchEngine();

  socket.on('connect', () => {
    watchEngine();
    out({ ev: 'connect', client: index, sid: sid(), id: socket.id, transport: engine().transport.name, recovered: Boolean(socket.recovered) });
  });
  socket.on('disconnect', (reason) => out({ ev: 'disconnect', client: index, reason: String(reason) }));
  socket.on('connect_error', (err) => out({ ev: 'connect_error', client: index, error: String(err && err.message ? err.message : err) }));
  socket.on('clientReceiver', (...args) => {
    const msg = args[0];
    const last = args[args.length - 1];
    out({ ev: 'recv', client: index, clientID: msg.clientID, message: msg.message, args: args.length,
      offset: args.length > 1 && typeof last === 'string' ? last : undefined });
  });
  return c;
});

// quiet holds when nothing but a pending poll is on the wire.
function quiet() {
  return clients.every(({ socket }) => {
    const e = socket.io.engine;
    return socket.connected && e && e.writeBuffer.length === 0 && e.transport && e.transport.writable &&
      (socket.sendBuffer || []).length === 0;
  });
}

onCommands('cluster-client', (cmd) => {
  switch (cmd.cmd) {
    case 'send': {
      const c = clients[cmd.client];
      if (!c) die(`no client ${cmd.client}`);
      c.socket.emit('serverReceiver', cmd.text, (res) => {
        out({ ev: 'ack', client: cmd.client, text: cmd.text, clientID: res && res.clientID });
      });
      break;
    }
    case 'drop': {
      const c = clients[cmd.client];
      if (!c) die(`no client ${cmd.client}`);
      const mgr = c.socket.io;
      mgr.reconnection(false);
      const e = mgr.engine;
      const t = e && e.transport;
      if (t && t.name === 'websocket' && t.ws && t.ws._socket) t.ws._socket.destroy();
      else if (e) e.close();
      setTimeout(() => {
        if (cmd.url) mgr.uri = cmd.url;
        mgr.reconnection(true);
        if (!c.socket.connected) c.socket.connect();
      }, cmd.ms || 0);
      break;
    }
    case 'quiet': {
      // The clients' state changes without an event of its own when a
      // request completes, so look every few milliseconds.
      const timer = setInterval(() => {
        if (quiet()) {
          clearInterval(timer);
          out({ ev: 'quiet' });
        }
      }, 5);
      break;
    }
    case 'exit':
      for (const { socket } of clients) socket.disconnect();
      process.stdout.write('', () => process.exit(0));
      break;
    default:
      die(`unknown command ${cmd.cmd}`);
  }
}, () => process.exit(0));
