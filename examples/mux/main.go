// Command mux mounts Socket.IO in a program's own net/http mux, beside its
// other routes: /socket.io/ is the chat of ../chat, /hello an ordinary
// handler.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"

	"siogo/socketio"
)

func main() {
	addr := flag.String("addr", ":3000", "listen address")
	flag.Parse()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello from the rest of the program")
	})

	io := socketio.NewServer(socketio.Options{})
	chat := io.Of("/")
	var next atomic.Int64
	chat.OnConnect(func(s *socketio.Socket) { s.SetData(next.Add(1) - 1) })
	chat.On("serverReceiver", func(s *socketio.Socket, message string) map[string]any {
		chat.Emit("clientReceiver", map[string]any{"clientID": s.Data(), "message": message})
		return map[string]any{"clientID": s.Data()}
	})
	mux.Handle("/socket.io/", io)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		slog.Error("listen", "err", err)
		return
	}
	slog.Info("listening", "addr", ln.Addr().String())
	http.Serve(ln, mux)
}
