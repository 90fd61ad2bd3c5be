package socketio

import (
	"context"
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
	// Broker links the server to the other nodes of a cluster (default:
	// a MemoryBroker, for a single node).
	Broker Broker
	// RequestTimeout bounds a request to the other nodes, such as
	// FetchSockets (default 5s).
	RequestTimeout time.Duration
	// Recovery turns connection-state recovery on. It needs a
	// DurableBroker; the default broker is one when recovery is on.
	Recovery Recovery
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
	// Recovery counts an attempt at connection-state recovery by its
	// outcome: RecoverySucceeded or why it failed.
	Recovery(result string)
	// Replayed counts the missed broadcasts sent to a recovered socket.
	Replayed(packets int)
}

type nopObserver struct{}

func (nopObserver) PacketIn()       {}
func (nopObserver) Broadcast(int)   {}
func (nopObserver) Recovery(string) {}
func (nopObserver) Replayed(int)    {}

// Server is a Socket.IO server: an http.Handler for the Engine.IO path
// (conventionally "/socket.io/") plus a set of namespaces. Namespaces and
// their handlers are registered before the server starts serving.
type Server struct {
	engine *engineio.Server
	opts   Options
	log    *slog.Logger
	broker Broker
	// durable is the broker when it is a DurableBroker, which hands this
	// node's broadcasts back in log order rather than the server
	// delivering them at once.
	durable DurableBroker
	// keeper stores the sessions of recoverable sockets; nil with recovery
	// off.
	keeper *sessionKeeper

	mu   sync.RWMutex
	nsps map[string]*Namespace

	reqMu    sync.Mutex
	requests map[string]*pendingRequest

	hooks serverHooks
}

// NewServer returns a server with the root namespace "/" already created,
// and opens its broker.
func NewServer(opts Options) *Server {
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 45 * time.Second
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 5 * time.Second
	}
	if opts.Broker == nil {
		cfg := MemoryBrokerConfig{}
		if opts.Recovery.enabled() {
			cfg = MemoryBrokerConfig{LogSize: defaultLogSize, LogAge: opts.Recovery.MaxDisconnectionDuration}
		}
		opts.Broker = NewMemoryBroker(cfg)
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
	s := &Server{
		opts:     opts,
		log:      opts.Logger,
		broker:   opts.Broker,
		nsps:     make(map[string]*Namespace),
		requests: make(map[string]*pendingRequest),
	}
	s.durable, _ = s.broker.(DurableBroker)
	if opts.Recovery.enabled() {
		if s.durable == nil {
			s.log.Warn("socketio: connection-state recovery needs a broker that keeps a log; recovery is off")
		} else {
			s.keeper = newSessionKeeper(s, s.durable, opts.Recovery.MaxDisconnectionDuration)
		}
	}
	s.broker.Open(brokerHandler{s})
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
	if n := s.nsps[name]; n != nil {
		s.mu.Unlock()
		return n
	}
	n := newNamespace(s, name)
	s.nsps[name] = n
	if err := s.broker.Subscribe(name); err != nil {
		s.log.Error("socketio: the broker cannot carry a namespace", "nsp", name, "err", err)
	}
	s.mu.Unlock()
	for _, f := range s.hooks.namespace.load() {
		f(n)
	}
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

// brokerCloseTimeout is how long Close gives the broker to send what it
// holds, and the sessions to be stored.
const brokerCloseTimeout = 2 * time.Second

// defaultLogSize is how many broadcasts per namespace the single node keeps
// for recovery.
const defaultLogSize = 10000

// Close disconnects every client without a Socket.IO disconnect packet, so
// that clients reconnect (to another node, behind a balancer), waits until
// polling clients have collected what was queued for them or ctx ends, and
// closes the broker, giving it two seconds to send what it holds.
func (s *Server) Close(ctx context.Context) error {
	err := s.engine.Close(ctx)
	if s.keeper != nil {
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), brokerCloseTimeout)
		s.keeper.close(kctx)
		cancel()
	}
	s.reqMu.Lock()
	pending := s.requests
	s.requests = make(map[string]*pendingRequest)
	s.reqMu.Unlock()
	for _, p := range pending {
		p.finish(errClosed)
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), brokerCloseTimeout)
	defer cancel()
	if berr := s.broker.Close(bctx); berr != nil && err == nil {
		err = berr
	}
	return err
}

func (s *Server) onSession(sess *engineio.Session) engineio.Handler {
	c := &client{srv: s, conn: sess, sockets: make(map[string]*Socket)}
	for _, f := range s.hooks.connection.load() {
		f(sess)
	}
	c.connectTimer = time.AfterFunc(s.opts.ConnectTimeout, c.onConnectTimeout)
	if sess.Protocol() == 3 {
		// Protocol 4 clients are connected to "/" without asking.
		c.connect("/", nil)
	}
	return c
}

// brokerHandler is the server's side of its broker.
type brokerHandler struct{ s *Server }

func (h brokerHandler) HandleBroadcast(b *Broadcast, offset string) {
	if n := h.s.namespace(b.Namespace); n != nil {
		n.deliver(b, offset)
	}
}

func (h brokerHandler) HandleRequest(m *NodeRequest) {
	if n := h.s.namespace(m.Namespace); n != nil {
		n.onNodeRequest(m)
	}
}

func (h brokerHandler) HandleReply(r *NodeReply) { h.s.onReply(r) }
