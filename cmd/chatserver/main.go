// Command chatserver runs the chat: the page at /, the socket.io client at
// /socket.io/socket.io.js, the Socket.IO endpoint at /socket.io/ for every
// client generation (1.x to 4.x), and a plain WebSocket endpoint at /demo
// for clients without a Socket.IO library. Run with -h for the flags; each
// has an environment variable equivalent.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"siogo/engineio"
	"siogo/internal/server"
	"siogo/socketio"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "chatserver:", err)
		os.Exit(1)
	}
}

type options struct {
	addr         string
	static       string
	pingInterval time.Duration
	pingTimeout  time.Duration
	maxPayload   int64
	corsOrigin   string
	transports   string
	logLevel     string
	redis        string
	nodeID       string
	advertise    string
	plainPath    string

	maxConnections    int
	handshakeRate     float64
	packetRate        int
	maxQueue          int
	trustForwardedFor bool
	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	idleTimeout       time.Duration
	shutdownTimeout   time.Duration
}

func run(args []string) error {
	var o options
	fs := flag.NewFlagSet("chatserver", flag.ContinueOnError)
	fs.StringVar(&o.addr, "addr", ":3000", "listen address (CHAT_ADDR)")
	fs.StringVar(&o.static, "static", "", "serve the page from this directory instead of the embedded one; / gives chatClient.html or index.html (CHAT_STATIC)")
	fs.DurationVar(&o.pingInterval, "ping-interval", 25*time.Second, "Engine.IO heartbeat interval (CHAT_PING_INTERVAL)")
	fs.DurationVar(&o.pingTimeout, "ping-timeout", 20*time.Second, "Engine.IO heartbeat timeout (CHAT_PING_TIMEOUT)")
	fs.Int64Var(&o.maxPayload, "max-payload", 1e6, "largest polling body or WebSocket message in bytes (CHAT_MAX_PAYLOAD)")
	fs.StringVar(&o.corsOrigin, "cors-origin", "", "comma-separated browser origins allowed besides the server's own, or * (CHAT_CORS_ORIGIN)")
	fs.StringVar(&o.transports, "transports", "polling,websocket", "comma-separated transports to accept (CHAT_TRANSPORTS)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error (CHAT_LOG_LEVEL)")
	fs.StringVar(&o.nodeID, "node-id", "", "with -redis: this node's name in the cluster, which starts every session id it hands out (default random) (CHAT_NODE_ID)")
	fs.StringVar(&o.advertise, "advertise", "", "with -redis: host:port the other nodes reach this one at, to forward requests for its sessions (default: the listen address, or this machine's first non-loopback address when listening on all) (CHAT_ADVERTISE)")
	fs.StringVar(&o.plainPath, "plain-ws-path", "/demo", "path where plain WebSocket clients (no Socket.IO library: a browser's bare WebSocket, websocat) join the chat; empty turns it off (CHAT_PLAIN_WS_PATH)")
	fs.StringVar(&o.redis, "redis", "", "share broadcasts and clientIDs with other nodes through Redis at this URL, e.g. redis://127.0.0.1:6379/0 (REDIS_URL)")
	fs.IntVar(&o.maxConnections, "max-connections", 20000, "most open sessions on this node; more get 503; 0 for no limit (CHAT_MAX_CONNECTIONS)")
	fs.Float64Var(&o.handshakeRate, "handshake-rate", 100, "new sessions and upgrades per second per client address, burst twice that; more get 429; 0 for no limit (CHAT_HANDSHAKE_RATE)")
	fs.IntVar(&o.packetRate, "max-packet-rate", 200, "packets per second one session may send, burst one second's worth; faster clients are disconnected; 0 for no limit (CHAT_MAX_PACKET_RATE)")
	fs.IntVar(&o.maxQueue, "max-queue", 8192, "packets queued for one slow client before it is disconnected (CHAT_MAX_QUEUE)")
	fs.BoolVar(&o.trustForwardedFor, "trust-forwarded-for", false, "take the client address from X-Forwarded-For (only behind a proxy) (CHAT_TRUST_FORWARDED_FOR)")
	fs.DurationVar(&o.readHeaderTimeout, "read-header-timeout", 10*time.Second, "time to read request headers (CHAT_READ_HEADER_TIMEOUT)")
	fs.DurationVar(&o.readTimeout, "read-timeout", 30*time.Second, "time to read a whole request, body included (CHAT_READ_TIMEOUT)")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", 120*time.Second, "time an idle keep-alive connection is kept (CHAT_IDLE_TIMEOUT)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGTERM, how long clients get to collect what is queued for them before the process exits (CHAT_SHUTDOWN_TIMEOUT)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: chatserver [flags]\n\nThe chat server. Every flag can also be set by the environment variable in parentheses;\na flag on the command line wins.\n\n")
		fs.PrintDefaults()
	}
	if err := applyEnv(fs, map[string]string{
		"addr": "CHAT_ADDR", "static": "CHAT_STATIC", "ping-interval": "CHAT_PING_INTERVAL",
		"ping-timeout": "CHAT_PING_TIMEOUT", "max-payload": "CHAT_MAX_PAYLOAD", "cors-origin": "CHAT_CORS_ORIGIN",
		"transports": "CHAT_TRANSPORTS", "log-level": "CHAT_LOG_LEVEL",
		"max-connections": "CHAT_MAX_CONNECTIONS", "handshake-rate": "CHAT_HANDSHAKE_RATE", "max-packet-rate": "CHAT_MAX_PACKET_RATE",
		"max-queue": "CHAT_MAX_QUEUE", "trust-forwarded-for": "CHAT_TRUST_FORWARDED_FOR", "read-header-timeout": "CHAT_READ_HEADER_TIMEOUT",
		"read-timeout": "CHAT_READ_TIMEOUT", "idle-timeout": "CHAT_IDLE_TIMEOUT", "shutdown-timeout": "CHAT_SHUTDOWN_TIMEOUT", "redis": "REDIS_URL",
		"node-id": "CHAT_NODE_ID", "advertise": "CHAT_ADVERTISE", "plain-ws-path": "CHAT_PLAIN_WS_PATH",
	}); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return err
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	transports := splitList(o.transports)
	for _, t := range transports {
		if t != engineio.TransportPolling && t != engineio.TransportWebSocket {
			return fmt.Errorf("-transports: unknown transport %q", t)
		}
	}
	if len(transports) == 0 {
		return fmt.Errorf("-transports: at least one transport is needed")
	}
	srv, err := server.New(server.Config{
		StaticDir: o.static,
		RedisURL:  o.redis,
		NodeID:    o.nodeID,
		Advertise: o.advertise,
		PlainPath: o.plainPath,
		Logger:    log,
		Limits: server.Limits{
			MaxConnections:      o.maxConnections,
			HandshakesPerSecond: o.handshakeRate,
			TrustForwardedFor:   o.trustForwardedFor,
		},
		ReadHeaderTimeout: o.readHeaderTimeout,
		ReadTimeout:       o.readTimeout,
		IdleTimeout:       o.idleTimeout,
		ShutdownTimeout:   o.shutdownTimeout,
		Socket: socketio.Options{
			Engine: engineio.Config{
				PingInterval:        o.pingInterval,
				PingTimeout:         o.pingTimeout,
				MaxPayload:          o.maxPayload,
				Transports:          transports,
				AllowedOrigins:      splitList(o.corsOrigin),
				MaxPacketsPerSecond: o.packetRate,
				MaxQueuedPackets:    o.maxQueue,
			},
		},
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	log.Info("listening", "addr", ln.Addr().String())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return srv.Serve(ctx, ln)
}

// applyEnv sets each flag from its environment variable, before the command
// line is parsed so that flags win.
func applyEnv(fs *flag.FlagSet, env map[string]string) error {
	for name, key := range env {
		if v, ok := os.LookupEnv(key); ok {
			if err := fs.Set(name, v); err != nil {
				return fmt.Errorf("%s=%q: %w", key, v, err)
			}
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}
