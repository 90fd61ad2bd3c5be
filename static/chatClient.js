// Chat page: sends each line typed into #txtChat as a "serverReceiver" event
// and appends every "clientReceiver" broadcast to the #message log.
(function () {
  'use strict';

  var log = document.getElementById('message');
  var input = document.getElementById('txtChat');
  var form = document.getElementById('composer');
  var status = document.getElementById('status');

  // io() with no URL talks to the origin that served this page, so the page
  // works on any host and port. ?transport=polling or ?transport=websocket
  // pins one transport, which is handy for checking each of them by hand.
  var options = {};
  var forced = new URLSearchParams(window.location.search).get('transport');
  if (forced === 'polling' || forced === 'websocket') {
    options.transports = [forced];
  }
  var socket = io(options);

  // The connection state and transport are mirrored on <body> as data
  // attributes so that people (and tests) can see how the page is connected.
  function showState(state, text) {
    var engine = socket.io.engine;
    var transport = state === 'connected' && engine && engine.transport ? engine.transport.name : '';
    document.body.dataset.state = state;
    document.body.dataset.transport = transport;
    status.textContent = transport ? text + ' · ' + transport : text;
  }

  socket.on('connect', function () {
    showState('connected', '연결됨');
  });
  socket.on('disconnect', function () {
    showState('disconnected', '연결 끊김, 다시 연결하는 중…');
  });
  socket.on('connect_error', function () {
    showState('disconnected', '연결할 수 없음, 다시 시도하는 중…');
  });
  // A polling connection usually moves to WebSocket shortly after connecting.
  socket.io.on('open', function () {
    socket.io.engine.on('upgrade', function () {
      if (socket.connected) {
        showState('connected', '연결됨');
      }
    });
  });

  // The ids this page has had, learnt from the server's ack to each line we
  // send; a reconnect brings a new id, and older lines stay ours.
  var mine = {};

  function markMine(id) {
    if (mine[id]) {
      return;
    }
    mine[id] = true;
    Array.prototype.forEach.call(log.children, function (line) {
      if (line.dataset.clientId === String(id)) {
        line.classList.add('mine');
      }
    });
  }

  socket.on('clientReceiver', function (data) {
    var line = document.createElement('p');
    line.className = mine[data.clientID] ? 'line mine' : 'line';
    line.dataset.clientId = String(data.clientID);
    // Stable per-speaker colour; the hue only decorates the speaker label.
    line.style.setProperty('--hue', String((Number(data.clientID) * 137) % 360));

    var who = document.createElement('span');
    who.className = 'who';
    // Everything received is inserted as text, never parsed as HTML.
    who.textContent = '[' + data.clientID + '님의 말]';
    line.appendChild(who);
    line.appendChild(document.createTextNode(' ' + data.message));

    log.appendChild(line);
    log.scrollTop = log.scrollHeight;
  });

  // Enter submits the form; so does the button, for touch keyboards.
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var text = input.value;
    if (text === '') {
      return;
    }
    // The ack may come before or after our own line is broadcast back.
    socket.emit('serverReceiver', text, function (reply) {
      if (reply && reply.clientID !== undefined) {
        markMine(reply.clientID);
      }
    });
    input.value = '';
    input.focus();
  });

  // Enter that confirms a Korean (or any IME) composition must not send the
  // half-composed text.
  input.addEventListener('keydown', function (event) {
    if (event.key === 'Enter' && (event.isComposing || event.keyCode === 229)) {
      event.preventDefault();
    }
  });
})();
