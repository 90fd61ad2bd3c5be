// Command soak holds a chat server under steady load for a long time and
// checks that it neither leaks nor loses messages: thousands of clients,
// spread over both protocol revisions (Engine.IO 3 and 4) and both
// transports, stay connected while some of them chat at a steady rate and
// short-lived clients connect and disconnect around them (churn). It samples
// the server's resident memory and goroutines from its /metrics, and at the
// end asserts
//
//   - memory and goroutines are flat: over the last window (a minute),
//     the median of the memory readings and the floor of the goroutine
//     counts (they come and go with the traffic) within a tolerance (5%)
//     of the same over the window two minutes into the run, once the
//     server keeps what it keeps for departed clients;
//   - no message is lost among connected clients: every client connected
//     for the whole run received, from every sender, each line up to the
//     last one the server acknowledged, in order; every churn client saw
//     each sender's lines without a gap while it was connected.
//
// It prints a readable summary, optionally writes it as JSON, and exits with
// status 1 when a check fails. With -chatserver it starts the server itself
// on a loopback port and stops it at the end; otherwise it soaks the one at
// -url.
//
// With -nodes 3 it starts redis-server and three chat nodes on the Streams
// broker instead, spreads the long-lived clients over them, and in the
// middle of the run restarts one node (SIGTERM, wait for its exit, start it
// again with the same id and address). The clients it held reconnect, each
// through a node picked at random as a round-robin balancer would, and
// recover their session (connection-state recovery): Engine.IO 4 clients
// must come back with their socket, their clientID (checked through the
// senders' acks) and every line they missed; Engine.IO 3 clients cannot
// recover, so their misses are counted apart. The other nodes' clients must
// notice nothing. Memory and goroutines must be flat on every node before
// the restart and after it (the restarted node from its restart on).
//
//	soak -chatserver bin/chatserver -server-log artifacts/soak-server.log -duration 10m
//	soak -chatserver bin/chatserver -nodes 3 -server-log artifacts/soak-server.log -duration 10m
//	soak -url http://127.0.0.1:3000 -clients 2000 -duration 10m -churn 50
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

type config struct {
	url         string
	chatserver  string
	serverLog   string
	nodes       int
	redisServer string
	restartNode int // 1-based; 0: none
	restartAt   time.Duration
	clients     int
	senders     int
	rate        float64
	churn       int
	churnLife   time.Duration
	duration    time.Duration
	sample      time.Duration
	window      time.Duration
	tolerance   float64
	drain       time.Duration
	dialConc    int
	jsonOut     string
}

func main() { os.Exit(soakMain()) }

// soakMain runs the whole soak and returns the exit status.
func soakMain() int {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "soak:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cl, err := startCluster(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		return 2
	}
	defer func() {
		if err := cl.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
		}
	}()
	cfg.url = cl.nodes[0].url
	sum, err := run(ctx, cfg, cl)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		return 2
	}
	sum.print(os.Stdout)
	if cfg.jsonOut != "" {
		b, _ := json.MarshalIndent(sum, "", "  ")
		if err := os.WriteFile(cfg.jsonOut, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			return 2
		}
	}
	if !sum.Pass {
		return 1
	}
	return 0
}

func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	var c config
	fs.StringVar(&c.url, "url", "http://127.0.0.1:3000", "chat server base URL, when -chatserver is not set")
	fs.StringVar(&c.chatserver, "chatserver", "", "chat server binary to start on a loopback port and soak instead of -url")
	fs.StringVar(&c.serverLog, "server-log", "", "with -chatserver: also write the server's output to this file (with -nodes, one file per node: NAME-node1.EXT, …)")
	fs.IntVar(&c.nodes, "nodes", 1, "with -chatserver: run this many chat nodes on one redis-server (Streams broker) instead of one server")
	fs.StringVar(&c.redisServer, "redis-server", "redis-server", "with -nodes: the redis-server executable")
	fs.IntVar(&c.restartNode, "restart-node", 1, "with -nodes: restart this node (1-based) during the run; 0 for none")
	fs.DurationVar(&c.restartAt, "restart-at", 0, "with -nodes: when to restart it, into the load (default: half of -duration)")
	fs.IntVar(&c.clients, "clients", 2000, "clients connected for the whole run, a quarter per protocol revision and transport")
	fs.IntVar(&c.senders, "senders", 40, "how many of them chat")
	fs.Float64Var(&c.rate, "rate", 10, "chat lines per second, all senders together")
	fs.IntVar(&c.churn, "churn", 50, "short-lived clients connecting (and as many disconnecting) per second")
	fs.DurationVar(&c.churnLife, "churn-life", 2*time.Second, "how long each short-lived client stays")
	fs.DurationVar(&c.duration, "duration", 10*time.Minute, "how long the load runs, after everyone has connected")
	fs.DurationVar(&c.sample, "sample", 2*time.Second, "interval between readings of the server's memory and goroutines")
	fs.DurationVar(&c.window, "window", time.Minute, "length of the windows compared for flatness; at most a quarter of -duration is used")
	fs.Float64Var(&c.tolerance, "tolerance", 0.05, "largest relative difference allowed between the windows")
	fs.DurationVar(&c.drain, "drain", time.Minute, "longest wait for acknowledged lines to arrive once the senders stop")
	fs.IntVar(&c.dialConc, "dial-concurrency", 50, "clients connecting at the same time during the ramp-up")
	fs.StringVar(&c.jsonOut, "json", "", "also write the summary as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case c.clients < 4 || c.senders < 1 || c.senders > c.clients:
		return nil, errors.New("need -clients >= 4 and 1 <= -senders <= -clients")
	case c.rate <= 0 || c.churn < 0 || c.duration <= 0 || c.sample <= 0 || c.window <= 0:
		return nil, errors.New("-rate, -duration, -sample and -window must be positive, -churn not negative")
	}
	switch {
	case c.nodes < 1 || c.nodes > 9:
		return nil, errors.New("need 1 <= -nodes <= 9")
	case c.nodes > 1 && c.chatserver == "":
		return nil, errors.New("-nodes needs -chatserver")
	case c.restartNode < 0 || c.restartNode > c.nodes:
		return nil, fmt.Errorf("-restart-node must be 0 to %d", c.nodes)
	}
	if c.restartAt == 0 {
		c.restartAt = c.duration / 2
	}
	// Memory and goroutines are compared within a phase of steady load:
	// the whole run, or before and after the restart.
	phase := c.duration
	if c.restarts() {
		if c.restartAt <= 0 || c.restartAt >= c.duration {
			return nil, fmt.Errorf("-restart-at %v is not within -duration %v", c.restartAt, c.duration)
		}
		phase = min(c.restartAt, c.duration-c.restartAt)
	}
	c.window = min(c.window, phase/4)
	if c.window < 2*c.sample {
		return nil, fmt.Errorf("-duration %v leaves windows of %v, too short for readings every %v", c.duration, c.window, c.sample)
	}
	return &c, nil
}

// restarts reports whether a node is restarted during the run.
func (c *config) restarts() bool { return c.nodes > 1 && c.restartNode > 0 }
