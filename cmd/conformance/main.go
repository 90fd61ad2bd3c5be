// Command conformance is the reference server for protocol conformance
// tests. /engine.io/ is a raw Engine.IO echo server (revisions 3 and 4);
// /socket.io/ is a Socket.IO server with the namespaces "/" and "/custom".
// It uses short heartbeats (pingInterval 300ms, pingTimeout 200ms, which
// -ping-interval and -ping-timeout change for clients too slow for them,
// such as JSONP polling) and a connectTimeout of 1000ms so that tests of
// those paths are quick.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"siogo/engineio"
	"siogo/socketio"
)

func main() {
	addr := flag.String("addr", "localhost:3000", "listen address")
	debug := flag.Bool("debug", false, "log every session at debug level")
	pingInterval := flag.Duration("ping-interval", 300*time.Millisecond, "Engine.IO heartbeat interval")
	pingTimeout := flag.Duration("ping-timeout", 200*time.Millisecond, "Engine.IO heartbeat timeout")
	flag.Parse()
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg := engineio.Config{
		PingInterval: *pingInterval,
		PingTimeout:  *pingTimeout,
		MaxPayload:   1000000,
		Logger:       log,
	}
	if err := run(*addr, cfg, log); err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(1)
	}
}

func run(addr string, cfg engineio.Config, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("/engine.io/", engineio.NewServer(cfg, func(s *engineio.Session) engineio.Handler {
		return &echo{s: s}
	}))
	mux.Handle("/socket.io/", newSocketServer(cfg, log))

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	log.Info("listening", "addr", ln.Addr().String())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		hs.Close()
	}()
	if err := hs.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// echo sends every message back on its session, text as text and binary as
// binary.
type echo struct{ s *engineio.Session }

func (e *echo) OnMessage(data []byte, binary bool) {
	e.s.Send(engineio.Message{Data: append([]byte(nil), data...), Binary: binary})
}

func (e *echo) OnClose(string) {}

func newSocketServer(cfg engineio.Config, log *slog.Logger) *socketio.Server {
	io := socketio.NewServer(socketio.Options{
		Engine:         cfg,
		ConnectTimeout: 1000 * time.Millisecond,
		Logger:         log,
	})
	emitAuth := func(s *socketio.Socket) {
		s.EmitRaw("auth", []json.RawMessage{s.Handshake().Auth}, nil)
	}
	root := io.Of("/")
	root.OnConnect(emitAuth)
	io.Of("/custom").OnConnect(emitAuth)

	root.OnEvent("message", func(s *socketio.Socket, m *socketio.Message) {
		s.EmitRaw("message-back", m.Args, m.Attachments)
	})
	root.OnEvent("message-with-ack", func(s *socketio.Socket, m *socketio.Message) {
		m.AckRaw(m.Args, m.Attachments)
	})
	// request-ack exercises acknowledgements from the client: the server
	// asks with ack-request and reports the answer with ack-response.
	root.OnEvent("request-ack", func(s *socketio.Socket, m *socketio.Message) {
		args := make([]any, len(m.Args))
		for i, a := range m.Args {
			args[i] = a
		}
		s.EmitWithAck("ack-request", 5*time.Second, func(resp []json.RawMessage, attachments [][]byte, err error) {
			if err != nil {
				log.Warn("conformance: ack-request unanswered", "err", err)
				return
			}
			s.EmitRaw("ack-response", resp, attachments)
		}, args...)
	})
	return io
}
