// Command redischat is the chat of ../chat for many instances: they share
// one chat through Redis, and clientIDs come from a counter in Redis.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"

	"siogo/redisbroker"
	"siogo/socketio"
)

func main() {
	addr := flag.String("addr", ":3000", "listen address")
	redisURL := flag.String("redis", "redis://127.0.0.1:6379/0", "Redis URL")
	flag.Parse()

	redis, err := redisbroker.NewClient(*redisURL, nil)
	if err != nil {
		slog.Error("redis", "err", err)
		os.Exit(1)
	}
	ids := redis.Counter("examples:chat:clientID")
	io := socketio.NewServer(socketio.Options{Broker: redisbroker.NewStreams(redis, redisbroker.StreamsConfig{})})
	chat := io.Of("/")
	chat.Use(func(s *socketio.Socket, _ json.RawMessage) error {
		n, err := ids.Next(context.Background())
		if err != nil {
			return err // the client is refused with the reason
		}
		s.SetData(n - 1)
		return nil
	})
	chat.On("serverReceiver", func(s *socketio.Socket, message string) map[string]any {
		chat.Emit("clientReceiver", map[string]any{"clientID": s.Data(), "message": message})
		return map[string]any{"clientID": s.Data()}
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		slog.Error("listen", "err", err)
		os.Exit(1)
	}
	slog.Info("listening", "addr", ln.Addr().String())
	http.Serve(ln, io)
}
