// Package server assembles the chat server: the Socket.IO endpoint with the
// chat application, the page, the client bundle, and the health endpoints,
// behind one HTTP server with graceful shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"siogo/internal/chat"
	"siogo/internal/clientbundle"
	"siogo/internal/cluster"
	"siogo/internal/metrics"
	"siogo/internal/redisadapter"
	"siogo/socketio"
	"siogo/static"
)

// Config is everything the chat server needs to run.
type Config struct {
	// StaticDir is the page directory; empty serves the embedded page.
	StaticDir string
	// Socket configures the Socket.IO and Engine.IO layers.
	Socket socketio.Options
	// IDs allocates clientIDs (default: in memory, or from Redis when
	// RedisURL is set).
	IDs chat.IDAllocator
	// RedisURL, when set, makes the node one of a cluster sharing
	// broadcasts and clientIDs through Redis, e.g. redis://host:6379/0.
	RedisURL string
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

// Server is a configured chat server, ready to serve.
type Server struct {
	cfg     Config
	log     *slog.Logger
	io      *socketio.Server
	cluster *redisadapter.Cluster // nil on a single node
	node    *cluster.Node         // nil on a single node
	handler http.Handler
}

// New builds the server.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Socket.Logger == nil {
		cfg.Socket.Logger = cfg.Logger
	}
	if cfg.IDs == nil && cfg.RedisURL == "" {
		cfg.IDs = &chat.MemoryIDs{}
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = 10 * time.Second
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 120 * time.Second
	}
	page, err := newStaticFiles(cfg.StaticDir, static.Files)
	if err != nil {
		return nil, err
	}
	if !clientbundle.Available() {
		cfg.Logger.Warn(clientbundle.MissingMessage)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	if cfg.Socket.Engine.Observer == nil {
		cfg.Socket.Engine.Observer = cfg.Metrics
	}
	if cfg.Socket.Observer == nil {
		cfg.Socket.Observer = cfg.Metrics
	}
	var node *cluster.Node
	if cfg.RedisURL != "" {
		node, err = cluster.New(cluster.Config{
			NodeID:   cfg.NodeID,
			Registry: cluster.NewRedisRegistry(cluster.NewPool(cfg.RedisURL)),
			Observer: cfg.Metrics,
			Logger:   cfg.Logger,
		})
		if err != nil {
			return nil, err
		}
		cfg.Socket.Engine.NewID = node.NewSessionID
	}
	var cluster *redisadapter.Cluster
	if cfg.RedisURL != "" {
		// Connects in the background: with Redis down the node serves
		// its own clients, logs why and keeps retrying.
		cluster, err = redisadapter.New(redisadapter.Config{
			URL:    cfg.RedisURL,
			Logger: cfg.Logger,
			SocketData: func(s *socketio.Socket) any {
				return map[string]any{"clientID": s.Context()}
			},
		})
		if err != nil {
			return nil, err
		}
		cfg.Metrics.AddCounterFunc(redisadapter.MetricReconnects,
			"Times the Redis subscriber connection was re-established after being lost.", cluster.Reconnects)
		cfg.Metrics.AddCounterFunc(redisadapter.MetricDropped,
			"Messages for other nodes dropped because Redis was unreachable or too slow.", cluster.Dropped)
		cfg.Metrics.AddCounterFunc(redisadapter.MetricMalformed,
			"Messages from Redis skipped because they could not be decoded.", cluster.Malformed)
		cfg.Socket.Adapter = cluster.AdapterFactory()
		if cfg.IDs == nil {
			cfg.IDs = cluster.IDs()
		}
	}
	var io *socketio.Server
	adm := newAdmission(cfg.Limits, func() int { return io.Engine().SessionCount() })
	if next := cfg.Socket.Engine.AllowRequest; next != nil {
		cfg.Socket.Engine.AllowRequest = func(r *http.Request) error {
			if err := adm.allow(r); err != nil {
				return err
			}
			return next(r)
		}
	} else {
		cfg.Socket.Engine.AllowRequest = adm.allow
	}
	if cfg.Socket.Engine.ReadTimeout <= 0 {
		cfg.Socket.Engine.ReadTimeout = cfg.ReadTimeout
	}
	io = socketio.NewServer(cfg.Socket)
	chat.Register(io.Of("/"), cfg.IDs, cfg.Logger)
	var endpoint http.Handler = io
	if node != nil {
		endpoint = node.Handler(io)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/socket.io/", func(w http.ResponseWriter, r *http.Request) {
		rest := strings.TrimPrefix(r.URL.Path, "/socket.io/")
		if rest == "" {
			endpoint.ServeHTTP(w, r)
			return
		}
		if clientbundle.Handle(rest) {
			clientbundle.ServeFile(w, r, rest)
			return
		}
		http.NotFound(w, r)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	// Ready means able to serve the whole cluster: with Redis configured,
	// subscribed and answering.
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if cluster != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := cluster.Ready(ctx); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "not ready: %v\n", err)
				return
			}
		}
		w.Write([]byte("ready\n"))
	})
	mux.Handle("/metrics", cfg.Metrics.Handler())
	mux.Handle("/", page)
	return &Server{cfg: cfg, log: cfg.Logger, io: io, cluster: cluster, node: node, handler: mux}, nil
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
	if s.node != nil {
		advertise := s.cfg.Advertise
		if advertise == "" {
			var err error
			if advertise, err = cluster.DefaultAdvertise(ln.Addr()); err != nil {
				return err
			}
		}
		if err := s.node.Start(ctx, advertise); err != nil {
			return err
		}
		// Cut the polls and WebSockets this node carries for other
		// nodes, so that the balancer moves them and shutdown does not
		// wait for them.
		hs.RegisterOnShutdown(s.node.Drain)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "sessions", s.io.Engine().SessionCount())
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	s.io.Close()
	// Polling clients collect their close packet, with whatever was still
	// queued for them, on their next poll, which needs the listener: let
	// the sessions drain before closing it. A live client polls again at
	// once, so a short window serves them all; one that has gone away
	// must not hold the shutdown until its session times out.
	dctx, dcancel := context.WithTimeout(sctx, drainWindow)
	s.waitSessionsDrained(dctx)
	dcancel()
	if s.cluster != nil {
		s.cluster.Close()
	}
	err := hs.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		hs.Close()
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if s.node != nil {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if derr := s.node.Close(dctx); derr != nil {
			s.log.Warn("cluster: cannot deregister", "err", derr)
		}
	}
	return err
}

// drainWindow bounds how long a shutdown waits for polling clients to
// collect what is queued for them.
const drainWindow = 2 * time.Second

// waitSessionsDrained returns once every session is gone or ctx is done.
func (s *Server) waitSessionsDrained(ctx context.Context) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for s.io.Engine().SessionCount() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
