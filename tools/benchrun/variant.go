package main

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"siogo/internal/proc"
)

// variant is one server setup under test: one process, or a cluster of
// chat nodes sharing a redis-server.
type variant struct {
	key  string // as named in -servers
	name string // shown in the report
	// argv starts the server; each node of a cluster runs it with -redis
	// and -node-id added.
	argv  []string
	nodes int // 0: one process; n: n chat nodes on one redis-server
}

// variantKeys lists the variants in the order -h shows them.
var variantKeys = []string{"go", "node", "go-norecovery", "go3-streams", "go3-pubsub"}

func variants(chatBin, nodeBin, nodeJS string) map[string]variant {
	// The abuse limits (handshakes per address, packets per session) are
	// off: the load generator is one address sending far faster than any
	// person, and the reference server has no such limits.
	ours := []string{chatBin, "-addr", "127.0.0.1:0", "-handshake-rate", "0", "-max-packet-rate", "0"}
	with := func(extra ...string) []string { return append(append([]string(nil), ours...), extra...) }
	return map[string]variant{
		"go":            {key: "go", name: "siogo", argv: ours},
		"node":          {key: "node", name: "Node socket.io 4.8.4", argv: []string{nodeBin, nodeJS, "-addr", "127.0.0.1:0"}},
		"go-norecovery": {key: "go-norecovery", name: "siogo, recovery off", argv: with("-recovery-window", "0")},
		"go3-streams":   {key: "go3-streams", name: "siogo, 3 nodes, Redis Streams broker", argv: with("-broker", "streams"), nodes: 3},
		"go3-pubsub":    {key: "go3-pubsub", name: "siogo, 3 nodes, Redis pub/sub broker", argv: with("-broker", "pubsub"), nodes: 3},
	}
}

// command describes how the variant is started, for the report.
func (v variant) command() string {
	if v.nodes == 0 {
		return strings.Join(v.argv, " ")
	}
	return fmt.Sprintf("redis-server (no persistence) and %d × %s -redis URL -node-id nodeN", v.nodes, strings.Join(v.argv, " "))
}

// deployment is a started variant: its processes, all pinned to the
// server CPU.
type deployment struct {
	redis *proc.Process // nil for one process
	nodes []*proc.Process
}

// startVariant starts v and returns once every node serves (for a
// cluster: answers /readyz, so its broker is subscribed).
func startVariant(ctx context.Context, pin pinner, v variant, redisBin string) (*deployment, error) {
	opts := proc.Options{Wait: 20 * time.Second, Grace: 3 * time.Second, Keep: 20, Group: true}
	d := &deployment{}
	if v.nodes == 0 {
		argv := pin.wrap(pin.serverCPU, v.argv)
		// The server runs in a process group of its own, so that stopping
		// it also stops what taskset started.
		p, err := proc.Start(ctx, exec.Command(argv[0], argv[1:]...), opts)
		if err != nil {
			return nil, err
		}
		d.nodes = []*proc.Process{p}
		return d, nil
	}
	var err error
	d.redis, err = proc.StartRedis(ctx, proc.RedisOptions{Options: opts, Binary: redisBin, Wrap: pin.wrap(pin.serverCPU, nil)})
	if err != nil {
		return nil, fmt.Errorf("redis-server: %w", err)
	}
	for i := range v.nodes {
		argv := pin.wrap(pin.serverCPU, append(append([]string(nil), v.argv...),
			"-redis", d.redis.RedisURL(), "-node-id", "node"+strconv.Itoa(i+1)))
		p, err := proc.Start(ctx, exec.Command(argv[0], argv[1:]...), opts)
		if err != nil {
			d.stop()
			return nil, fmt.Errorf("node %d: %w", i+1, err)
		}
		d.nodes = append(d.nodes, p)
	}
	for _, p := range d.nodes {
		if err := p.WaitOK(ctx, "/readyz", 20*time.Second); err != nil {
			d.stop()
			return nil, err
		}
	}
	return d, nil
}

// urls lists the nodes' base URLs, comma-separated, for loadgen -url.
func (d *deployment) urls() string {
	u := make([]string, len(d.nodes))
	for i, p := range d.nodes {
		u[i] = p.URL()
	}
	return strings.Join(u, ",")
}

// pids lists every process, Redis included, for loadgen -pid.
func (d *deployment) pids() string {
	var ps []string
	for _, p := range d.all() {
		ps = append(ps, strconv.Itoa(p.Pid()))
	}
	return strings.Join(ps, ",")
}

func (d *deployment) all() []*proc.Process {
	if d.redis == nil {
		return d.nodes
	}
	return append([]*proc.Process{d.redis}, d.nodes...)
}

// exited reports whether a process has exited, with the last lines of its
// output.
func (d *deployment) exited() (bool, string) {
	for _, p := range d.all() {
		if p.Exited() {
			return true, tail(p)
		}
	}
	return false, ""
}

// tails is the last lines of every process's output.
func (d *deployment) tails() string {
	var t []string
	for _, p := range d.all() {
		t = append(t, tail(p))
	}
	return strings.Join(t, " || ")
}

// stop stops the nodes, then Redis.
func (d *deployment) stop() {
	for _, p := range d.nodes {
		p.Stop()
	}
	if d.redis != nil {
		d.redis.Stop()
	}
}
