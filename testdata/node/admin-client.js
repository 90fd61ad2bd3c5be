'use strict';
// An Admin UI client: socket.io-client 4.x connects to the admin namespace
// the way the dashboard of @socket.io/admin-ui does (auth in the CONNECT
// payload, no reconnection) and reports everything it receives. The Go
// tests drive it with JSON commands on stdin and assert on the JSON events
// it prints on stdout, one per line; this script decides nothing.
//
//   node testdata/node/admin-client.js --url SERVER_URL [--nsp /admin]
//        [--auth '{"username":"admin","password":"secret"}'] [--transports websocket]
//
// Commands:
//   {"cmd":"emit","args":[EVENT, ...]}  socket.emit(EVENT, ...)
//   {"cmd":"exit"}                       disconnect and exit
// Events:
//   {"ev":"connect","sid":S}
//   {"ev":"connect_error","message":M}
//   {"ev":"disconnect","reason":R}
//   {"ev":"event","name":EVENT,"args":[...]}   every event the server sends

const { io } = require('socket.io-client');
const { out, die, parseFlags, onCommands } = require('./harness');

const SCRIPT = 'admin-client';
const opts = parseFlags(SCRIPT, process.argv.slice(2), { url: '', nsp: '/admin', auth: '{}', transports: 'polling,websocket' });
if (!opts.url) die(SCRIPT, '--url is required');
let auth;
try {
  auth = JSON.parse(opts.auth);
} catch (err) {
  die(SCRIPT, `--auth is not JSON: ${err.message}`);
}

const socket = io(opts.url + opts.nsp, {
  forceNew: true,
  reconnection: false,
  transports: opts.transports.split(','),
  auth,
});
socket.on('connect', () => out({ ev: 'connect', sid: socket.id }));
socket.on('connect_error', (err) => out({ ev: 'connect_error', message: String(err && err.message ? err.message : err) }));
socket.on('disconnect', (reason) => out({ ev: 'disconnect', reason: String(reason) }));
socket.onAny((name, ...args) => out({ ev: 'event', name, args }));

const exit = () => {
  socket.disconnect();
  process.exit(0);
};
onCommands(SCRIPT, (cmd) => {
  switch (cmd.cmd) {
    case 'emit':
      socket.emit(...cmd.args);
      break;
    case 'exit':
      exit();
      break;
    default:
      die(SCRIPT, `unknown command ${cmd.cmd}`);
  }
}, exit);
