// The reference chat server for the benchmark: socket.io 4 on Node.js with
// the same chat contract as cmd/chatserver. A client emits serverReceiver
// with a string; every connected client receives clientReceiver with
// {clientID, message}, clientID being a counter from 0 in connection order.
//
//   node bench/node-chat-server.js [-addr 127.0.0.1:0] [--per-message-deflate]
//
// --per-message-deflate turns on WebSocket permessage-deflate for messages of
// 1 KiB or more (perMessageDeflate: { threshold: 1024 }), as cmd/chatserver's
// -per-message-deflate -per-message-deflate-threshold 1024 does.
//
// Like cmd/chatserver it prints "msg=listening addr=HOST:PORT" on stderr once
// it listens, so the benchmark can use a port chosen by the kernel.
'use strict';

const http = require('http');
const { Server } = require('socket.io');

let addr = '127.0.0.1:0';
let perMessageDeflate = false;
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if ((args[i] === '-addr' || args[i] === '--addr') && i + 1 < args.length) {
    addr = args[++i];
  } else if (args[i] === '-per-message-deflate' || args[i] === '--per-message-deflate') {
    perMessageDeflate = { threshold: 1024 };
  } else {
    console.error(`node-chat-server: unknown argument ${args[i]}`);
    process.exit(2);
  }
}
const sep = addr.lastIndexOf(':');
const host = addr.slice(0, sep) || '127.0.0.1';
const port = Number(addr.slice(sep + 1));

const httpServer = http.createServer();
const io = new Server(httpServer, { allowEIO3: true, cors: { origin: true }, perMessageDeflate });

let nextClientID = 0;
io.on('connection', (socket) => {
  const clientID = nextClientID++;
  socket.on('serverReceiver', (message, ack) => {
    io.emit('clientReceiver', { clientID, message });
    if (typeof ack === 'function') {
      ack({ clientID });
    }
  });
});

httpServer.listen(port, host, () => {
  const a = httpServer.address();
  console.error(`level=INFO msg=listening addr=${a.address}:${a.port}`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => process.exit(0));
}
