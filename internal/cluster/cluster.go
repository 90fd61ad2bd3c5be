package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"siogo/engineio"
)

// HeaderForwardedBy marks a request forwarded by a node (the value is its
// id). A node never forwards such a request again. A balancer in front of
// the cluster should clear it on client requests.
const HeaderForwardedBy = "X-Siogo-Forwarded-By"

// sidSeparator ends the node id at the start of a session id. It is not in
// the node id alphabet, and it is unreserved in URLs.
const sidSeparator = '.'

var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// ValidNodeID reports whether id can be a node id: 1 to 32 letters, digits,
// '-' or '_', which keeps session ids URL-safe.
func ValidNodeID(id string) bool { return nodeIDPattern.MatchString(id) }

// RandomNodeID returns a fresh 10-character node id.
func RandomNodeID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 10)
	rand.Read(b)
	for i := range b {
		// 256 is not a multiple of 36; the slight bias does not matter
		// for an id that only has to differ from a handful of others.
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// OwnerOf returns the node id at the start of a session id.
func OwnerOf(sid string) (nodeID string, ok bool) {
	i := strings.IndexByte(sid, sidSeparator)
	if i <= 0 || i == len(sid)-1 || !ValidNodeID(sid[:i]) {
		return "", false
	}
	return sid[:i], true
}

// Observer is told about forwarding; the metrics implement it.
type Observer interface {
	// Forwarded counts a request passed to its session's owner.
	Forwarded(transport string)
	// ForwardFailed counts a forwarded request whose owner could not be
	// reached.
	ForwardFailed()
}

type nopObserver struct{}

func (nopObserver) Forwarded(string) {}
func (nopObserver) ForwardFailed()   {}

// Registry maps node ids to the addresses nodes reach each other at.
type Registry interface {
	// Register claims nodeID for addr, or refreshes the claim, for ttl.
	// When another address holds the id, it claims nothing and returns
	// that address.
	Register(ctx context.Context, nodeID, addr string, ttl time.Duration) (holder string, err error)
	// Lookup returns the address of a node, "" when it is not registered.
	Lookup(ctx context.Context, nodeID string) (string, error)
	// Deregister removes the claim if addr still holds it.
	Deregister(ctx context.Context, nodeID, addr string) error
}

// ErrNodeIDInUse is returned by Start when another node holds the id.
var ErrNodeIDInUse = errors.New("cluster: node id in use")

// errUnknownNode is what a lookup of an unregistered node gives.
var errUnknownNode = errors.New("cluster: unknown node")

// Config configures a Node. Registry is required.
type Config struct {
	// NodeID identifies this node in session ids and in the registry
	// (default: RandomNodeID).
	NodeID string
	// Registry is where nodes find each other.
	Registry Registry
	// TTL is how long a registration outlives its last refresh (default
	// 15s); the node refreshes it every TTL/3. A node that dies without
	// deregistering is reported unknown after at most TTL; until then,
	// forwarding to it fails fast.
	TTL time.Duration
	// DialTimeout bounds connecting to another node (default 2s).
	DialTimeout time.Duration
	Observer    Observer
	Logger      *slog.Logger
}

// Node is this process's membership of the cluster.
type Node struct {
	id    string
	cfg   Config
	log   *slog.Logger
	obs   Observer
	reg   Registry
	proxy *http.Transport

	cacheMu sync.Mutex
	cache   map[string]cachedAddr // by node id

	mu       sync.Mutex
	inflight map[*forwardedRequest]struct{}
	draining bool

	advertise string
	stop      chan struct{}
	stopped   chan struct{}
}

// Owner lookups are cached briefly: a lookup per forwarded request would
// double the work of a poll. A failed forward drops the entry at once.
const (
	cacheTTL         = 5 * time.Second
	negativeCacheTTL = time.Second
	maxCacheEntries  = 1024
)

type cachedAddr struct {
	addr    string // "" for an unknown node
	expires time.Time
}

// New returns a node; it joins the cluster with Start.
func New(cfg Config) (*Node, error) {
	if cfg.Registry == nil {
		return nil, errors.New("cluster: a registry is required")
	}
	if cfg.NodeID == "" {
		cfg.NodeID = RandomNodeID()
	}
	if !ValidNodeID(cfg.NodeID) {
		return nil, fmt.Errorf("cluster: node id %q: want 1 to 32 letters, digits, '-' or '_'", cfg.NodeID)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 15 * time.Second
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 2 * time.Second
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	n := &Node{
		id:       cfg.NodeID,
		cfg:      cfg,
		log:      cfg.Logger,
		obs:      cfg.Observer,
		reg:      cfg.Registry,
		cache:    make(map[string]cachedAddr),
		inflight: make(map[*forwardedRequest]struct{}),
	}
	n.proxy = &http.Transport{
		DialContext: (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		// Every polling client holds one long poll, so many requests to
		// the same owner are in flight at once.
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return n, nil
}

// ID returns the node id.
func (n *Node) ID() string { return n.id }

// NewSessionID returns a session id owned by this node: the node id, a dot,
// and 20 random URL-safe characters. It is meant for engineio.Config.NewID.
func (n *Node) NewSessionID() string {
	return n.id + string(sidSeparator) + engineio.NewSessionID()
}

// Start registers the node at advertise, the host:port other nodes reach it
// at, and keeps the registration alive until Close. Only a conflict (another
// node holds the id) is an error: while the registry is unreachable the node
// serves its own clients, logs why, and keeps trying.
func (n *Node) Start(ctx context.Context, advertise string) error {
	if _, _, err := net.SplitHostPort(advertise); err != nil {
		return fmt.Errorf("cluster: advertise address %q: %w", advertise, err)
	}
	holder, err := n.reg.Register(ctx, n.id, advertise, n.cfg.TTL)
	if holder != "" && err == nil {
		return fmt.Errorf("%w: %q is registered at %s", ErrNodeIDInUse, n.id, holder)
	}
	if err != nil {
		n.log.Error("cluster: cannot register yet; retrying", "node", n.id, "err", err)
	} else {
		n.log.Info("cluster: joined", "node", n.id, "advertise", advertise, "ttl", n.cfg.TTL)
	}
	n.mu.Lock()
	n.advertise = advertise
	n.stop = make(chan struct{})
	n.stopped = make(chan struct{})
	go n.refresh(advertise, err != nil, n.stop, n.stopped)
	n.mu.Unlock()
	return nil
}

// refresh renews the registration every TTL/3, and every second while the
// registry cannot be reached.
func (n *Node) refresh(advertise string, failing bool, stop, stopped chan struct{}) {
	defer close(stopped)
	period := n.cfg.TTL / 3
	retry := min(time.Second, period)
	t := time.NewTimer(period)
	if failing {
		t.Reset(retry)
	}
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), period)
		holder, err := n.reg.Register(ctx, n.id, advertise, n.cfg.TTL)
		cancel()
		if holder != "" && err == nil {
			err = fmt.Errorf("%w: %q is registered at %s", ErrNodeIDInUse, n.id, holder)
		}
		switch {
		case err != nil && !failing:
			// Other nodes cannot reach this node's sessions once the
			// registration expires; say so once, not every attempt.
			n.log.Error("cluster: cannot refresh the registration", "node", n.id, "err", err)
		case err == nil && failing:
			n.log.Info("cluster: joined", "node", n.id, "advertise", advertise, "ttl", n.cfg.TTL)
		}
		failing = err != nil
		if failing {
			t.Reset(retry)
		} else {
			t.Reset(period)
		}
	}
}

// Close stops refreshing the registration and removes it, so that other
// nodes stop forwarding here at once instead of after the TTL.
func (n *Node) Close(ctx context.Context) error {
	n.mu.Lock()
	stop, stopped, advertise := n.stop, n.stopped, n.advertise
	n.stop = nil
	n.mu.Unlock()
	if stop == nil {
		return nil
	}
	close(stop)
	<-stopped
	n.proxy.CloseIdleConnections()
	return n.reg.Deregister(ctx, n.id, advertise)
}

// lookup returns the address of a node, from the cache when fresh.
func (n *Node) lookup(ctx context.Context, nodeID string) (string, error) {
	now := time.Now()
	n.cacheMu.Lock()
	c, ok := n.cache[nodeID]
	n.cacheMu.Unlock()
	if ok && now.Before(c.expires) {
		if c.addr == "" {
			return "", errUnknownNode
		}
		return c.addr, nil
	}
	addr, err := n.reg.Lookup(ctx, nodeID)
	if err != nil {
		return "", err
	}
	entry := cachedAddr{addr: addr, expires: now.Add(cacheTTL)}
	if addr == "" {
		entry.expires = now.Add(negativeCacheTTL)
	}
	n.cacheMu.Lock()
	if len(n.cache) >= maxCacheEntries {
		// Made-up session ids must not grow the cache without bound.
		clear(n.cache)
	}
	n.cache[nodeID] = entry
	n.cacheMu.Unlock()
	if addr == "" {
		return "", errUnknownNode
	}
	return addr, nil
}

func (n *Node) forget(nodeID string) {
	n.cacheMu.Lock()
	delete(n.cache, nodeID)
	n.cacheMu.Unlock()
}

// DefaultAdvertise derives the address other nodes reach this one at from
// the listener's address: a specific host is kept; an unspecified one
// (":3000", "0.0.0.0:3000") becomes the first non-loopback address of the
// machine's interfaces, or the loopback address on a machine without one.
func DefaultAdvertise(listen net.Addr) (string, error) {
	host, port, err := net.SplitHostPort(listen.String())
	if err != nil {
		return "", fmt.Errorf("cluster: listen address %q: %w", listen, err)
	}
	ip := net.ParseIP(host)
	if ip != nil && !ip.IsUnspecified() {
		return net.JoinHostPort(host, port), nil
	}
	if host != "" && ip == nil {
		return net.JoinHostPort(host, port), nil
	}
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		var v6 string
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.IsLoopback() || !ipn.IP.IsGlobalUnicast() {
				continue
			}
			if ipn.IP.To4() != nil {
				return net.JoinHostPort(ipn.IP.String(), port), nil
			}
			if v6 == "" {
				v6 = ipn.IP.String()
			}
		}
		if v6 != "" {
			return net.JoinHostPort(v6, port), nil
		}
	}
	return net.JoinHostPort("127.0.0.1", port), nil
}
