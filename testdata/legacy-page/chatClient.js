// A page written the way pages for the old Node.js chat server were: the
// server address is fixed, and io is only looked up in window.onload because
// the client library is loaded after this script.
window.onload = function () {
    var socket = io.connect('ws://127.0.0.1:3000');
    var message = document.getElementById('message');
    var txtChat = document.getElementById('txtChat');

    socket.on('clientReceiver', function (data) {
        var div = document.createElement('div');
        div.appendChild(document.createTextNode('[' + data.clientID + '님의 말] ' + data.message));
        message.appendChild(div);
        message.scrollTop = message.scrollHeight;
    });

    txtChat.onkeydown = function (e) {
        if (e.keyCode == 13) {
            socket.emit('serverReceiver', txtChat.value);
            txtChat.value = '';
        }
    };
};
