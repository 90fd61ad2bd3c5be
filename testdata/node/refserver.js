'use strict';
// Reference server for the client matrix: a socket.io 4 server (Engine.IO 3
// and 4 accepted) that implements, on one port, the contract of both Go
// binaries, so the matrix client can be checked against it and the Go
// servers compared with it.
//
//   node testdata/node/refserver.js PORT [--conformance]
//
// PORT 0 lets the kernel choose. --conformance switches to the conformance
// server's short heartbeat and connect timeouts. Prints
// "msg=listening addr=127.0.0.1:PORT" on stdout once listening.
//
// Chat: serverReceiver(string[, ack]) -> every client gets clientReceiver
// {clientID, message}; the ack gets {clientID}. clientIDs count from 0 in
// connection order.
// Conformance: on connect emit auth(handshake auth); on "/" message ->
// message-back, message-with-ack -> acked with its args, request-ack ->
// ack-request with an ack whose answer is emitted back as ack-response.

const http = require('http');
const { Server } = require('socket.io');

const port = Number(process.argv[2] || 0);
const conformance = process.argv.includes('--conformance');

const httpServer = http.createServer();
const io = new Server(httpServer, {
  allowEIO3: true,
  serveClient: false,
  ...(conformance ? { pingInterval: 300, pingTimeout: 200, connectTimeout: 1000 } : {}),
});

let nextClientID = 0;

io.on('connection', (socket) => {
  const clientID = nextClientID++;
  socket.emit('auth', socket.handshake.auth || {});

  socket.on('serverReceiver', (message, ack) => {
    io.emit('clientReceiver', { clientID, message });
    if (typeof ack === 'function') ack({ clientID });
  });

  socket.on('message', (...args) => socket.emit('message-back', ...args));

  socket.on('message-with-ack', (...args) => {
    const ack = args.pop();
    if (typeof ack === 'function') ack(...args);
  });

  socket.on('request-ack', (...args) => {
    socket.emit('ack-request', ...args, (...answer) => socket.emit('ack-response', ...answer));
  });
});

io.of('/custom').on('connection', (socket) => {
  socket.emit('auth', socket.handshake.auth || {});
});

httpServer.listen(port, '127.0.0.1', () => {
  process.stdout.write(`msg=listening addr=127.0.0.1:${httpServer.address().port}\n`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    io.close();
    process.exit(0);
  });
}
