package socketio

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"siogo/engineio"
)

// Options configures a Server.
type Options struct {
	// Engine configures the Engine.IO layer.
	Engine engineio.Config
	// ConnectTimeout closes a connection that has joined no namespace
	// within it (default 45s).
	ConnectTimeout time.Duration
	// Adapter creates each namespace's adapter (default in-memory).
	Adapter AdapterFactory
	// Observer, when set, counts packets and broadcasts.
	Observer Observer
	Logger   *slog.Logger
}

// Observer receives counters from the Socket.IO layer; implementations must
// be safe for concurrent use and fast.
type Observer interface {
	// PacketIn counts a decoded packet from a client.
	PacketIn()
	// Broadcast counts one broadcast delivered to recipients local sockets.
	Broadcast(recipients int)
}

type nopObserver struct{}

func (nopObserver) PacketIn()     {}
func (nopObserver) Broadcast(int) {}

// Server is a Socket.IO server: an http.Handler for the Engine.IO path
// (conventionally "/socket.io/") plus a set of namespaces. Namespaces and
// their handlers are registered before the server starts serving.
type Server struct {
	engine *engineio.Server
	opts   Options
	log    *slog.Logger

	mu   sync.RWMutex
	nsps map[string]*Namespace
}

// NewServer returns a server with the root namespace "/" already created.
func NewServer(opts Options) *Server {
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 45 * time.Second
	}
	if opts.Adapter == nil {
		opts.Adapter = func(nsp *Namespace) Adapter { return NewMemoryAdapter(nsp) }
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	if opts.Engine.Logger == nil {
		opts.Engine.Logger = opts.Logger
	}
	s := &Server{opts: opts, log: opts.Logger, nsps: make(map[string]*Namespace)}
	s.engine = engineio.NewServer(opts.Engine, s.onSession)
	s.Of("/")
	return s
}

// Of returns the namespace with the given name, creating it if needed.
// Clients may only connect to namespaces created this way.
func (s *Server) Of(name string) *Namespace {
	if name == "" || name[0] != '/' {
		name = "/" + name
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.nsps[name]; n != nil {
		return n
	}
	n := newNamespace(s, name)
	s.nsps[name] = n
	return n
}

func (s *Server) namespace(name string) *Namespace {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.nsps[name]
}

// Engine returns the underlying Engine.IO server.
func (s *Server) Engine() *engineio.Server { return s.engine }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

// Close disconnects every client without a Socket.IO disconnect packet, so
// that clients reconnect (to another node, behind a balancer), and closes the
// namespaces' adapters.
func (s *Server) Close() {
	s.engine.Close()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, n := range s.nsps {
		n.adapter.Close()
	}
}

func (s *Server) onSession(sess *engineio.Session) engineio.Handler {
	c := &client{srv: s, conn: sess, sockets: make(map[string]*Socket)}
	c.connectTimer = time.AfterFunc(s.opts.ConnectTimeout, c.onConnectTimeout)
	if sess.Protocol() == 3 {
		// Protocol 4 clients are connected to "/" without asking.
		c.connect("/", nil)
	}
	return c
}
