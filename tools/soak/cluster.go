package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"siogo/internal/proc"
)

// cluster is what the soak runs against: one chat server, or redis-server
// and several chat nodes on the Streams broker. With -url it is that one
// server, started by someone else.
type cluster struct {
	cfg   *config
	redis *proc.Process
	nodes []*node
}

// node is one chat server. Its id and address stay the same when it is
// restarted.
type node struct {
	id   string // -node-id, e.g. node2 ("" for a single server)
	addr string // host:port
	url  string
	up   atomic.Bool // serving; false from the restart's SIGTERM until it is ready again

	mu  sync.Mutex
	p   *proc.Process // nil with -url
	log *os.File
}

func (n *node) proc() *proc.Process {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.p
}

// name is how the summary calls the node.
func (n *node) name() string {
	if n.id == "" {
		return "server"
	}
	return n.id
}

// restartReport says how a node's restart went.
type restartReport struct {
	Node      string        `json:"node"`
	index     int           // in cluster.nodes
	SIGTERMAt time.Duration `json:"sigterm_at_ns"` // since the load started
	ExitedAt  time.Duration `json:"exited_at_ns"`
	ReadyAt   time.Duration `json:"ready_at_ns"`
	Killed    bool          `json:"killed"` // it did not exit within the grace period
	Error     string        `json:"error,omitempty"`
}

// startCluster starts the servers -chatserver and -nodes ask for, each on a
// loopback port the kernel chooses, and returns once every one is ready.
func startCluster(ctx context.Context, cfg *config) (*cluster, error) {
	c := &cluster{cfg: cfg}
	if cfg.chatserver == "" {
		n := &node{url: cfg.url}
		n.up.Store(true)
		c.nodes = []*node{n}
		return c, nil
	}
	if cfg.nodes > 1 {
		var err error
		c.redis, err = proc.StartRedis(ctx, proc.RedisOptions{Options: proc.Options{Keep: 50}, Binary: cfg.redisServer})
		if err != nil {
			return nil, fmt.Errorf("redis-server: %w", err)
		}
	}
	for i := range cfg.nodes {
		n := &node{addr: "127.0.0.1:0"}
		if cfg.nodes > 1 {
			n.id = fmt.Sprintf("node%d", i+1)
		}
		c.nodes = append(c.nodes, n)
		if err := c.start(ctx, n, false); err != nil {
			c.stop()
			return nil, err
		}
	}
	return c, nil
}

// start runs n's chat server and waits until it is ready. Every client
// comes from 127.0.0.1, so the per-address handshake limit is off; the
// per-session packet limit stays on (the clients stay far below it).
func (c *cluster) start(ctx context.Context, n *node, again bool) error {
	opts := proc.Options{Keep: 50, Grace: 20 * time.Second}
	if path := c.logPath(n); path != "" {
		flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
		if again {
			flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
		}
		f, err := os.OpenFile(path, flags, 0o644)
		if err != nil {
			return err
		}
		opts.Output = f
		n.log = f
	}
	args := []string{"-addr", n.addr, "-handshake-rate", "0"}
	if c.redis != nil {
		args = append(args, "-redis", c.redis.RedisURL(), "-broker", "streams", "-node-id", n.id)
	}
	var p *proc.Process
	var err error
	// A restarted node takes its old address again, which the previous
	// process may still hold for a moment.
	for attempt := 0; attempt < 20; attempt++ {
		p, err = proc.Start(ctx, exec.Command(c.cfg.chatserver, args...), opts)
		if err == nil || !again || !strings.Contains(err.Error(), "in use") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", n.name(), err)
	}
	n.mu.Lock()
	n.p = p
	n.mu.Unlock()
	if !again {
		// The clients read the address without a lock: it is set once.
		n.addr, n.url = p.Addr, p.URL()
	}
	if c.redis != nil {
		if err := p.WaitOK(ctx, "/readyz", 30*time.Second); err != nil {
			return fmt.Errorf("%s: %w", n.name(), err)
		}
	}
	n.up.Store(true)
	return nil
}

// logPath is where n's output goes: -server-log, with the node's id added
// before the extension on a cluster.
func (c *cluster) logPath(n *node) string {
	path := c.cfg.serverLog
	if path == "" || n.id == "" {
		return path
	}
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-" + n.id + ext
}

// restart stops node i with SIGTERM, waits for it to exit, and starts it
// again with the same id and address. since gives the time into the load.
func (c *cluster) restart(ctx context.Context, i int, since func() time.Duration) *restartReport {
	n := c.nodes[i]
	r := &restartReport{Node: n.name(), index: i}
	n.up.Store(false)
	r.SIGTERMAt = since()
	if err := n.proc().Stop(); err != nil {
		r.Killed = true
		r.Error = err.Error()
	}
	r.ExitedAt = since()
	if n.log != nil {
		n.log.Close()
	}
	if err := c.start(ctx, n, true); err != nil {
		r.Error = strings.TrimSpace(r.Error + "; started again: " + err.Error())
		return r
	}
	r.ReadyAt = since()
	return r
}

// stop stops the nodes, then Redis.
func (c *cluster) stop() error {
	var errs []error
	for _, n := range c.nodes {
		if p := n.proc(); p != nil {
			errs = append(errs, p.Stop())
		}
	}
	if c.redis != nil {
		errs = append(errs, c.redis.Stop())
	}
	return errors.Join(errs...)
}
