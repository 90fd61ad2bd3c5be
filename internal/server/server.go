package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"siogo/engineio"
	"siogo/internal/adminui"
	"siogo/internal/chat"
	"siogo/internal/clientbundle"
	"siogo/internal/metrics"
	"siogo/internal/plainws"
	"siogo/socketio"
	"siogo/socketio/admin"
	"siogo/static"
)

// Config is everything the chat server needs to run.
type Config struct {
	// StaticDir is the page directory; empty serves the embedded page.
	StaticDir string
	// ClientBundleDir serves the socket.io client bundle from a directory
	// (e.g. node_modules/socket.io-client/dist) instead of the copy
	// embedded at build time.
	ClientBundleDir string
	// Socket configures the Socket.IO and Engine.IO layers.
	Socket socketio.Options
	// Counter hands out clientIDs (default: in memory, or from Redis when
	// RedisURL is set).
	Counter chat.Counter
	// RedisURL, when set, makes the node one of a cluster sharing
	// broadcasts and clientIDs through Redis, e.g. redis://host:6379/0.
	RedisURL string
	// Broker is the cluster's broker with RedisURL: BrokerStreams (the
	// default) or BrokerPubSub.
	Broker string
	// NodeID names the node in a cluster (default random). Every session
	// id starts with it, so that any node can forward a request to the
	// session's owner and no balancer needs sticky sessions.
	NodeID string
	// Advertise is the host:port other nodes of a cluster reach this one
	// at (default: derived from the listener's address).
	Advertise string
	// Metrics counts what the server does and serves /metrics (default:
	// a new set).
	Metrics *metrics.Metrics
	// Limits bounds connections and handshake rates.
	Limits Limits
	// Admin, when set, instruments the Socket.IO server for the Socket.IO
	// Admin UI (the /admin namespace) and serves its dashboard at /admin/.
	// ServerID defaults to the node id in a cluster.
	Admin *admin.Options
	// PlainPath is where plain WebSocket clients, which speak neither
	// Engine.IO nor Socket.IO, join the chat (e.g. "/demo"); empty serves
	// none. They are held to the Engine.IO limits and count towards the
	// connection limit.
	PlainPath string
	// HTTP timeouts (defaults: 10s to read headers, 30s to read a request,
	// 120s for an idle keep-alive connection). The write timeout follows
	// from the heartbeat, which bounds how long a poll is held.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration
	// ShutdownTimeout bounds a graceful shutdown (default 10s).
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Socket.Logger == nil {
		c.Socket.Logger = c.Logger
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = 10 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 30 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 120 * time.Second
	}
	if c.Metrics == nil {
		c.Metrics = metrics.New()
	}
}

// Server is a configured chat server, ready to serve.
type Server struct {
	cfg     Config
	log     *slog.Logger
	io      *socketio.Server
	redis   *redisParts // nil on a single node
	bundle  *clientbundle.Bundle
	admin   *admin.Admin    // nil without Config.Admin
	plain   *plainws.Server // nil without PlainPath
	handler http.Handler
}

// New builds the server: the page, the cluster parts when Redis is
// configured, the Socket.IO server with the chat, and the routes.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := checkPlainPath(cfg.PlainPath); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	page, err := newStaticFiles(cfg.StaticDir, static.Files)
	if err != nil {
		return nil, err
	}
	if s.bundle, err = clientbundle.Open(cfg.ClientBundleDir); err != nil {
		return nil, err
	}
	if msg := s.bundle.Missing(); msg != "" {
		s.log.Warn(msg)
	}
	if cfg.RedisURL != "" {
		if s.redis, err = newRedisParts(&s.cfg); err != nil {
			return nil, err
		}
	}
	s.io = s.newSocketIO()
	nsp := s.io.Of("/")
	chat.Register(nsp, s.counter(), s.log)
	if cfg.PlainPath != "" {
		s.plain = plainws.NewServer(s.io.Engine(), func(c *plainws.Conn) (engineio.Handler, error) {
			return chat.ConnectPlain(nsp, c)
		})
	}
	if cfg.Admin != nil {
		if err := s.instrument(*cfg.Admin); err != nil {
			s.io.Close(context.Background())
			if s.redis != nil {
				s.redis.Close(context.Background())
			}
			return nil, err
		}
	}
	s.handler = s.routes(page)
	return s, nil
}

// instrument serves the Socket.IO Admin UI: the admin namespace, and the
// count of refused logins at /metrics.
func (s *Server) instrument(opts admin.Options) error {
	if opts.ServerID == "" && s.redis != nil {
		opts.ServerID = s.redis.node.ID()
	}
	if opts.Logger == nil {
		opts.Logger = s.log
	}
	adm, err := admin.Instrument(s.io, opts)
	if err != nil {
		return err
	}
	s.admin = adm
	s.cfg.Metrics.AddCounterFunc(metrics.AdminRefused,
		"Connections to the Socket.IO Admin UI namespace refused for want of valid credentials.", adm.Refused)
	if !adminui.Available() {
		s.log.Warn(adminui.MissingMessage)
	}
	return nil
}

// newSocketIO builds the Socket.IO server with the limits and metrics, on
// the cluster's broker when there is one.
func (s *Server) newSocketIO() *socketio.Server {
	opts := s.cfg.Socket
	if opts.Engine.Observer == nil {
		opts.Engine.Observer = s.cfg.Metrics
	}
	if opts.Observer == nil {
		opts.Observer = s.cfg.Metrics
	}
	if opts.Engine.ReadTimeout <= 0 {
		opts.Engine.ReadTimeout = s.cfg.ReadTimeout
	}
	if s.redis != nil {
		opts.Broker = s.redis.broker
		opts.Engine.NewID = s.redis.node.NewSessionID
	}
	var io *socketio.Server
	adm := newAdmission(s.cfg.Limits, func() int {
		n := io.Engine().SessionCount()
		if s.plain != nil {
			n += s.plain.Len()
		}
		return n
	})
	opts.Engine.AllowRequest = adm.chain(opts.Engine.AllowRequest)
	io = socketio.NewServer(opts)
	return io
}

// checkPlainPath refuses a plain WebSocket path that is not a path, or that
// would hide the server's own endpoints.
func checkPlainPath(path string) error {
	if path == "" {
		return nil
	}
	if !strings.HasPrefix(path, "/") || path == "/" {
		return fmt.Errorf("plain WebSocket path %q: want a path below /, such as /demo", path)
	}
	if path == "/socket.io" || strings.HasPrefix(path, "/socket.io/") || slices.Contains([]string{"/healthz", "/readyz", "/metrics"}, path) {
		return fmt.Errorf("plain WebSocket path %q: the server's own endpoints are there", path)
	}
	return nil
}

// counter is where clientIDs come from.
func (s *Server) counter() chat.Counter {
	switch {
	case s.cfg.Counter != nil:
		return s.cfg.Counter
	case s.redis != nil:
		return s.redis.client.Counter(chat.CounterKey)
	}
	return &chat.MemoryCounter{}
}

// Handler returns the HTTP handler of the whole server.
func (s *Server) Handler() http.Handler { return s.handler }

// SocketIO returns the Socket.IO server.
func (s *Server) SocketIO() *socketio.Server { return s.io }

// Serve serves on ln until ctx is done, then shuts down gracefully: it stops
// accepting, closes every client session so that clients reconnect
// elsewhere, and waits for in-flight requests up to the shutdown timeout.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	engineCfg := s.io.Engine().Config()
	// The read deadline also runs while a long poll is held (the server
	// watches the connection for the client going away), so it must
	// outlast a poll.
	readTimeout := max(s.cfg.ReadTimeout, engineCfg.PingInterval+engineCfg.PingTimeout+5*time.Second)
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       readTimeout,
		// A long poll is held for up to a ping interval.
		WriteTimeout: engineCfg.PingInterval + engineCfg.PingTimeout + 10*time.Second,
		IdleTimeout:  s.cfg.IdleTimeout,
		ErrorLog:     slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		ConnState:    s.cfg.Metrics.ConnState,
	}
	if s.redis != nil {
		if err := s.redis.start(ctx, ln, s.cfg.Advertise, hs); err != nil {
			return err
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(newFDListener(ln, s.log, s.cfg.Metrics.AcceptRefused)) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	return s.shutdown(hs, errc)
}

// drainWindow bounds how long a shutdown waits for polling clients to
// collect what is queued for them.
const drainWindow = 2 * time.Second

// shutdown closes the sessions, lets polling clients collect their last
// packets, then stops the HTTP server and leaves the cluster.
func (s *Server) shutdown(hs *http.Server, errc <-chan error) error {
	s.log.Info("shutting down", "sessions", s.io.Engine().SessionCount())
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	// Polling clients collect their close packet, with whatever was still
	// queued for them, on their next poll, which needs the listener: the
	// sessions drain before it closes. A live client polls again at once,
	// so a short window serves them all; one that has gone away must not
	// hold the shutdown until its session times out.
	dctx, dcancel := context.WithTimeout(sctx, drainWindow)
	if s.admin != nil {
		s.admin.Close()
	}
	if s.plain != nil {
		// Close frames 1001, and each client's answer, within the window.
		s.plain.Close(dctx)
	}
	s.io.Close(dctx)
	dcancel()
	err := hs.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		hs.Close()
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if s.redis != nil {
		if rerr := s.redis.Close(sctx); rerr != nil {
			s.log.Warn(rerr.Error())
		}
	}
	return err
}
