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
	"siogo/socketio/admin"
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
	clientBundle string
	pingInterval time.Duration
	pingTimeout  time.Duration
	maxPayload   int64
	corsOrigin   string
	transports   string
	logLevel     string
	redis        string
	broker       string
	nodeID       string
	advertise    string
	plainPath    string

	httpCompression            bool
	httpCompressionThreshold   int
	perMessageDeflate          bool
	perMessageDeflateThreshold int
	admin                      bool
	adminUser                  string
	adminPasswordHash          string
	adminInsecure              bool

	maxConnections    int
	handshakeRate     float64
	packetRate        int
	maxQueue          int
	trustForwardedFor bool
	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	idleTimeout       time.Duration
	shutdownTimeout   time.Duration

	recoveryWindow          time.Duration
	recoverySkipMiddlewares bool
}

func run(args []string) error {
	var o options
	// The connection cap follows from the open-file limit, raised first
	// to the most the process may hold.
	limit, limitErr := server.RaiseFileLimit()
	maxConnections := 20000
	if limitErr == nil {
		maxConnections = limit.MaxConnections()
	}
	fs := flag.NewFlagSet("chatserver", flag.ContinueOnError)
	fs.StringVar(&o.addr, "addr", ":3000", "listen address (CHAT_ADDR)")
	fs.StringVar(&o.static, "static", "", "serve the page from this directory instead of the embedded one; / gives chatClient.html or index.html (CHAT_STATIC)")
	fs.StringVar(&o.clientBundle, "client-bundle", "", "serve /socket.io/socket.io.js and the other client files from this directory, e.g. node_modules/socket.io-client/dist, instead of the copy embedded by make bundle (CHAT_CLIENT_BUNDLE)")
	fs.BoolVar(&o.httpCompression, "http-compression", true, "gzip or deflate polling responses, as Accept-Encoding asks (CHAT_HTTP_COMPRESSION)")
	fs.IntVar(&o.httpCompressionThreshold, "http-compression-threshold", 1024, "smallest polling response compressed, in bytes (CHAT_HTTP_COMPRESSION_THRESHOLD)")
	fs.BoolVar(&o.perMessageDeflate, "per-message-deflate", false, "offer WebSocket clients permessage-deflate, without context takeover (CHAT_PER_MESSAGE_DEFLATE)")
	fs.IntVar(&o.perMessageDeflateThreshold, "per-message-deflate-threshold", 1024, "with -per-message-deflate: smallest WebSocket message compressed, in bytes (CHAT_PER_MESSAGE_DEFLATE_THRESHOLD)")
	fs.DurationVar(&o.pingInterval, "ping-interval", 25*time.Second, "Engine.IO heartbeat interval (CHAT_PING_INTERVAL)")
	fs.DurationVar(&o.pingTimeout, "ping-timeout", 20*time.Second, "Engine.IO heartbeat timeout (CHAT_PING_TIMEOUT)")
	fs.Int64Var(&o.maxPayload, "max-payload", 1e6, "largest polling body or WebSocket message in bytes (CHAT_MAX_PAYLOAD)")
	fs.StringVar(&o.corsOrigin, "cors-origin", "", "comma-separated browser origins allowed besides the server's own, or * (CHAT_CORS_ORIGIN)")
	fs.StringVar(&o.transports, "transports", "polling,websocket", "comma-separated transports to accept (CHAT_TRANSPORTS)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error (CHAT_LOG_LEVEL)")
	fs.StringVar(&o.nodeID, "node-id", "", "with -redis: this node's name in the cluster, which starts every session id it hands out (default random) (CHAT_NODE_ID)")
	fs.StringVar(&o.advertise, "advertise", "", "with -redis: host:port the other nodes reach this one at, to forward requests for its sessions (default: the listen address, or this machine's first non-loopback address when listening on all) (CHAT_ADVERTISE)")
	fs.StringVar(&o.broker, "broker", "streams", "with -redis: streams (Redis Streams, durable: connection-state recovery across nodes; compatible with @socket.io/redis-streams-adapter) or pubsub (compatible with @socket.io/redis-adapter) (CHAT_BROKER)")
	fs.StringVar(&o.plainPath, "plain-ws-path", "/demo", "path where plain WebSocket clients (no Socket.IO library: a browser's bare WebSocket, websocat) join the chat; empty turns it off (CHAT_PLAIN_WS_PATH)")
	fs.StringVar(&o.redis, "redis", "", "share broadcasts and clientIDs with other nodes through Redis at this URL, e.g. redis://127.0.0.1:6379/0 (REDIS_URL)")
	fs.BoolVar(&o.admin, "admin", false, "serve the Socket.IO Admin UI: the /admin namespace, and its dashboard at /admin/ (CHAT_ADMIN)")
	fs.StringVar(&o.adminUser, "admin-user", "", "with -admin: the user name the dashboard must give (CHAT_ADMIN_USER)")
	fs.StringVar(&o.adminPasswordHash, "admin-password-hash", "", "with -admin: the bcrypt hash of the password the dashboard must give (CHAT_ADMIN_PASSWORD_HASH)")
	fs.BoolVar(&o.adminInsecure, "admin-insecure", false, "with -admin: no user name or password; anyone who reaches the server can use the dashboard (CHAT_ADMIN_INSECURE)")
	fs.IntVar(&o.maxConnections, "max-connections", maxConnections, "most open sessions on this node; more get 503; 0 for no limit; the default keeps a reserve within the open-file limit (CHAT_MAX_CONNECTIONS)")
	fs.Float64Var(&o.handshakeRate, "handshake-rate", 100, "new sessions and upgrades per second per client address, burst twice that; more get 429; 0 for no limit (CHAT_HANDSHAKE_RATE)")
	fs.IntVar(&o.packetRate, "max-packet-rate", 200, "packets per second one session may send, burst one second's worth; faster clients are disconnected; 0 for no limit (CHAT_MAX_PACKET_RATE)")
	fs.IntVar(&o.maxQueue, "max-queue", 8192, "packets queued for one slow client before it is disconnected (CHAT_MAX_QUEUE)")
	fs.BoolVar(&o.trustForwardedFor, "trust-forwarded-for", false, "take the client address from X-Forwarded-For (only behind a proxy) (CHAT_TRUST_FORWARDED_FOR)")
	fs.DurationVar(&o.readHeaderTimeout, "read-header-timeout", 10*time.Second, "time to read request headers (CHAT_READ_HEADER_TIMEOUT)")
	fs.DurationVar(&o.readTimeout, "read-timeout", 30*time.Second, "time to read a whole request, body included (CHAT_READ_TIMEOUT)")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", 120*time.Second, "time an idle keep-alive connection is kept (CHAT_IDLE_TIMEOUT)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGTERM, how long clients get to collect what is queued for them before the process exits (CHAT_SHUTDOWN_TIMEOUT)")
	fs.DurationVar(&o.recoveryWindow, "recovery-window", 2*time.Minute, "how long a disconnected socket.io 4.6+ client can come back with its clientID and every line it missed; 0 turns connection-state recovery off (CHAT_RECOVERY_WINDOW)")
	fs.BoolVar(&o.recoverySkipMiddlewares, "recovery-skip-middlewares", true, "connect a recovered client without running the connection middlewares again (CHAT_RECOVERY_SKIP_MIDDLEWARES)")
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
		"node-id": "CHAT_NODE_ID", "advertise": "CHAT_ADVERTISE", "broker": "CHAT_BROKER", "client-bundle": "CHAT_CLIENT_BUNDLE",
		"recovery-window": "CHAT_RECOVERY_WINDOW", "recovery-skip-middlewares": "CHAT_RECOVERY_SKIP_MIDDLEWARES",
		"http-compression": "CHAT_HTTP_COMPRESSION", "http-compression-threshold": "CHAT_HTTP_COMPRESSION_THRESHOLD",
		"per-message-deflate": "CHAT_PER_MESSAGE_DEFLATE", "per-message-deflate-threshold": "CHAT_PER_MESSAGE_DEFLATE_THRESHOLD",
		"admin": "CHAT_ADMIN", "admin-user": "CHAT_ADMIN_USER", "admin-password-hash": "CHAT_ADMIN_PASSWORD_HASH",
		"admin-insecure": "CHAT_ADMIN_INSECURE",
		"plain-ws-path":  "CHAT_PLAIN_WS_PATH",
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
	if limitErr != nil {
		log.Warn("cannot read or raise the open-file limit", "err", limitErr)
	} else {
		log.Info("open-file limit", "soft", limit.Soft, "hard", limit.Hard, "max_connections", o.maxConnections)
	}

	transports := splitList(o.transports)
	for _, t := range transports {
		if t != engineio.TransportPolling && t != engineio.TransportWebSocket {
			return fmt.Errorf("-transports: unknown transport %q", t)
		}
	}
	if len(transports) == 0 {
		return fmt.Errorf("-transports: at least one transport is needed")
	}
	if o.httpCompressionThreshold < 1 || o.perMessageDeflateThreshold < 1 {
		return fmt.Errorf("-http-compression-threshold and -per-message-deflate-threshold must be at least 1")
	}
	adminOpts, err := o.adminOptions()
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{
		StaticDir:       o.static,
		ClientBundleDir: o.clientBundle,
		RedisURL:        o.redis,
		Broker:          o.broker,
		NodeID:          o.nodeID,
		Advertise:       o.advertise,
		Logger:          log,
		PlainPath:       o.plainPath,
		Limits: server.Limits{
			MaxConnections:      o.maxConnections,
			HandshakesPerSecond: o.handshakeRate,
			TrustForwardedFor:   o.trustForwardedFor,
		},
		ReadHeaderTimeout: o.readHeaderTimeout,
		ReadTimeout:       o.readTimeout,
		IdleTimeout:       o.idleTimeout,
		ShutdownTimeout:   o.shutdownTimeout,
		Admin:             adminOpts,
		Socket: socketio.Options{
			Recovery: socketio.Recovery{
				MaxDisconnectionDuration: o.recoveryWindow,
				SkipMiddlewares:          o.recoverySkipMiddlewares,
			},
			Engine: engineio.Config{
				PingInterval:        o.pingInterval,
				PingTimeout:         o.pingTimeout,
				MaxPayload:          o.maxPayload,
				Transports:          transports,
				AllowedOrigins:      splitList(o.corsOrigin),
				MaxPacketsPerSecond: o.packetRate,
				MaxQueuedPackets:    o.maxQueue,

				DisableHTTPCompression:     !o.httpCompression,
				HTTPCompressionThreshold:   o.httpCompressionThreshold,
				PerMessageDeflate:          o.perMessageDeflate,
				PerMessageDeflateThreshold: o.perMessageDeflateThreshold,
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

// adminOptions turns the -admin flags into the admin namespace's options,
// or nil when it is off. Authentication is required unless turned off
// explicitly.
func (o *options) adminOptions() (*admin.Options, error) {
	if !o.admin {
		if o.adminUser != "" || o.adminPasswordHash != "" || o.adminInsecure {
			return nil, fmt.Errorf("-admin-user, -admin-password-hash and -admin-insecure need -admin")
		}
		return nil, nil
	}
	creds := o.adminUser != "" || o.adminPasswordHash != ""
	switch {
	case o.adminInsecure && creds:
		return nil, fmt.Errorf("-admin-insecure turns authentication off: give it without -admin-user and -admin-password-hash")
	case o.adminInsecure:
		return &admin.Options{NoAuth: true}, nil
	case o.adminUser == "" || o.adminPasswordHash == "":
		return nil, fmt.Errorf("-admin needs -admin-user and -admin-password-hash (a bcrypt hash of the password), or -admin-insecure to serve the dashboard without authentication")
	}
	return &admin.Options{Auth: &admin.BasicAuth{Username: o.adminUser, PasswordHash: o.adminPasswordHash}}, nil
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
