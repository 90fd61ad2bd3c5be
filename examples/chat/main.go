// Command chat is the chat this project started from, on the siogo library:
// a client emits serverReceiver with a line, and every client receives
// clientReceiver with {"clientID": <number>, "message": <line>}.
package main

import (
	"flag"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"

	"siogo/socketio"
)

func main() {
	addr := flag.String("addr", ":3000", "listen address")
	flag.Parse()

	io := socketio.NewServer(socketio.Options{})
	chat := io.Of("/")
	var next atomic.Int64
	chat.OnConnect(func(s *socketio.Socket) { s.SetData(next.Add(1) - 1) })
	chat.On("serverReceiver", func(s *socketio.Socket, message string) map[string]any {
		chat.Emit("clientReceiver", map[string]any{"clientID": s.Data(), "message": message})
		return map[string]any{"clientID": s.Data()}
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		slog.Error("listen", "err", err)
		return
	}
	slog.Info("listening", "addr", ln.Addr().String())
	http.Serve(ln, io)
}
