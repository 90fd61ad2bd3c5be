'use strict';
// A Node.js member of the chat cluster: socket.io 4 with the Redis adapter
// (on the `redis` 4.x client), running the same chat as the Go server, so the
// interop tests can mix Node.js and Go nodes on one Redis. clientIDs come from
// the same Redis counter the Go nodes use.
//
//   node testdata/node/redis-node-server.js --redis redis://127.0.0.1:6379/0 [--port 0]
//        [--adapter pubsub|streams] [--admin SERVER_ID]
//
// With --admin, the server is instrumented for the Socket.IO Admin UI as
// @socket.io/admin-ui documents it (instrument(io, {auth: false, serverId}),
// development mode), on the /admin namespace.
//
// --adapter streams runs @socket.io/redis-streams-adapter with
// connection-state recovery (2 minutes) instead of @socket.io/redis-adapter.
//
// It prints "msg=listening addr=127.0.0.1:<port>" once serving. Besides the Socket.IO endpoint it
// answers these requests, which run cluster operations from this node and
// reply with JSON:
//   GET /cluster/fetch               io.fetchSockets()
//   GET /cluster/rooms               the namespace adapter's allRooms()
//   GET /cluster/server-side-emit    io.serverSideEmit("ping", "from-node", ack):
//                                    {"error": ..., "responses": [...], "ms": N}
//   GET /cluster/emitter?message=M   @socket.io/redis-emitter emits clientReceiver
//                                    {"clientID": -1, "message": M}
//   GET /cluster/emit-binary         io.emit("bin", <Buffer 01 02 03>, {nested: <Buffer ff>}, "text")
//   GET /cluster/count               the adapter's serverCount()
//   GET /cluster/sockets-join?room=R io.socketsJoin(R)
//   GET /cluster/room-emit?room=R&message=M
//                                    io.to(R).emit("clientReceiver", {"clientID": -2, "message": M})
//   GET /cluster/emit-with-ack       io.timeout(3000).emit("question", "q?", <Buffer 07>, ack):
//                                    {"error": ..., "responses": [...], "ms": N}
//   GET /cluster/disconnect          io.disconnectSockets()
// The servers' own event "ping" (from serverSideEmit) is acknowledged with
// {"node": true, "args": [...]}.

const http = require('http');
const { createClient } = require('redis');
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');
const { createAdapter: createStreamsAdapter } = require('@socket.io/redis-streams-adapter');
const { Emitter } = require('@socket.io/redis-emitter');

const ID_KEY = 'siogo:chat:clientID';

function parseArgs(argv) {
  const opts = { port: 0, adapter: 'pubsub' };
  for (let i = 0; i < argv.length; i += 2) {
    switch (argv[i]) {
      case '--redis': opts.redis = argv[i + 1]; break;
      case '--port': opts.port = Number(argv[i + 1]); break;
      case '--adapter': opts.adapter = argv[i + 1]; break;
      case '--admin': opts.admin = argv[i + 1]; break;
      default: throw new Error(`unknown flag ${argv[i]}`);
    }
  }
  if (!opts.redis) throw new Error('--redis URL is required');
  return opts;
}

function json(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const pub = createClient({ url: opts.redis });
  const sub = pub.duplicate();
  const emitterClient = pub.duplicate();
  for (const c of [pub, sub, emitterClient]) c.on('error', (err) => console.error('redis:', err.message));
  await Promise.all([pub.connect(), sub.connect(), emitterClient.connect()]);
  const emitter = new Emitter(emitterClient);

  let io;
  const cluster = {
    async fetch() {
      const sockets = await io.fetchSockets();
      return sockets.map((s) => ({ id: s.id, handshake: s.handshake, rooms: [...s.rooms], data: s.data }));
    },
    async rooms() {
      return [...(await io.of('/').adapter.allRooms())];
    },
    'server-side-emit'() {
      const started = Date.now();
      return new Promise((resolve) => {
        io.serverSideEmit('ping', 'from-node', (err, responses) => {
          resolve({ error: err ? err.message : null, responses, ms: Date.now() - started });
        });
      });
    },
    emitter(query) {
      emitter.emit('clientReceiver', { clientID: -1, message: query.get('message') });
      return { ok: true };
    },
    'emit-binary'() {
      io.emit('bin', Buffer.from([1, 2, 3]), { nested: Buffer.from([0xff]) }, 'text');
      return { ok: true };
    },
    async count() {
      return { servers: await io.of('/').adapter.serverCount() };
    },
    'sockets-join'(query) {
      io.socketsJoin(query.get('room'));
      return { ok: true };
    },
    'room-emit'(query) {
      io.to(query.get('room')).emit('clientReceiver', { clientID: -2, message: query.get('message') });
      return { ok: true };
    },
    'emit-with-ack'() {
      const started = Date.now();
      return new Promise((resolve) => {
        io.timeout(3000).emit('question', 'q?', Buffer.from([7]), (err, responses) => {
          resolve({ error: err ? err.message : null, responses, ms: Date.now() - started });
        });
      });
    },
    disconnect() {
      io.disconnectSockets();
      return { ok: true };
    },
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    const op = url.pathname.startsWith('/cluster/') && cluster[url.pathname.slice('/cluster/'.length)];
    if (!op) {
      res.writeHead(404);
      res.end();
      return;
    }
    Promise.resolve()
      .then(() => op(url.searchParams))
      .then((body) => json(res, 200, body), (err) => json(res, 500, { error: String(err && err.message ? err.message : err) }));
  });

  const options = { allowEIO3: true, adapter: createAdapter(pub, sub) };
  if (opts.adapter === 'streams') {
    options.adapter = createStreamsAdapter(pub);
    options.connectionStateRecovery = { maxDisconnectionDuration: 2 * 60 * 1000 };
  }
  io = new Server(server, options);
  if (opts.admin) {
    require('@socket.io/admin-ui').instrument(io, { auth: false, serverId: opts.admin, mode: 'development' });
  }
  io.use(async (socket, next) => {
    if (socket.recovered) return next(); // it keeps its clientID
    try {
      socket.data.clientID = (await pub.incr(ID_KEY)) - 1;
      next();
    } catch (err) {
      next(new Error(`chat: cannot allocate a client id: ${err.message}`));
    }
  });
  io.on('ping', (...args) => {
    const ack = args.pop();
    if (typeof ack === 'function') ack({ node: true, args });
  });
  io.on('connection', (socket) => {
    socket.on('serverReceiver', (message, ack) => {
      if (typeof message !== 'string') return;
      io.emit('clientReceiver', { clientID: socket.data.clientID, message });
      if (typeof ack === 'function') ack({ clientID: socket.data.clientID });
    });
  });

  server.listen(opts.port, '127.0.0.1', () => {
    console.log(`msg=listening addr=127.0.0.1:${server.address().port}`);
  });
  const stop = () => {
    io.close();
    Promise.allSettled([pub.quit(), sub.quit(), emitterClient.quit()]).then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
