// Command loadgen is a load generator for Socket.IO chat servers. It speaks
// Engine.IO 3 and 4 over WebSocket or HTTP long-polling through the chat
// client of package eioclient, connects N clients, lets S of them emit
// serverReceiver messages (closed loop with a window of messages in flight
// per sender, or open loop at a fixed total rate), and measures connection
// rate, handshake time, fan-out deliveries per second and send-to-receipt
// latency at every other client. Given the server's pid it also reads the
// server's memory and CPU time from /proc.
//
// Given several server URLs, the nodes of one cluster, it spreads the clients,
// and the senders among them, round robin over the nodes; every client still
// receives every line. Given several pids (the nodes, and Redis), it reports
// their memory and CPU time added up.
//
// Each run prints one JSON line on stdout and a readable summary on stderr.
//
//	loadgen -url http://127.0.0.1:3000 -clients 1000 -senders 10 -window 16 -duration 5s
//	loadgen -url http://127.0.0.1:3000 -clients 1000 -senders 10 -delivery-rate 20000
//	loadgen -url http://127.0.0.1:3000 -clients 10000 -senders 0 -hold 3s -pid 1234
//	loadgen -url http://127.0.0.1:3001,http://127.0.0.1:3002,http://127.0.0.1:3003 -clients 1000 -pid 11,12,13,10
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"siogo/internal/eioclient"
)

type config struct {
	bases        []*url.URL // http://host:port of each node
	path         string
	eio          int
	transport    string
	clients      int
	senders      int
	window       int
	msgRate      float64
	deliveryRate float64
	size         int
	warmup       time.Duration
	duration     time.Duration
	hold         time.Duration
	drain        time.Duration
	connTimeout  time.Duration
	dialConc     int
	pids         []string
	srcs         []net.IP
	gzip         bool
	deflate      bool
	idleConns    int
	checkpoints  []int
	oneToAll     int
	readBuf      int
	label        string
	timeout      time.Duration
	cpuProfile   string
}

func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	var (
		c       config
		rawURL  string
		srcList string
		pidList string
		cpList  string
	)
	fs.StringVar(&rawURL, "url", "http://127.0.0.1:3000", "server base URL (loopback only), or a comma-separated list of a cluster's nodes, which the clients take in turn")
	fs.StringVar(&c.path, "path", "/socket.io/", "Socket.IO endpoint path")
	fs.IntVar(&c.eio, "eio", 4, "Engine.IO protocol revision: 3 or 4")
	fs.StringVar(&c.transport, "transport", "websocket", "websocket or polling")
	fs.IntVar(&c.clients, "clients", 100, "number of clients to connect")
	fs.IntVar(&c.senders, "senders", 10, "number of clients that emit messages, at most -clients (0: idle run)")
	fs.IntVar(&c.window, "window", 16, "closed loop: messages in flight per sender")
	fs.Float64Var(&c.msgRate, "rate", 0, "open loop: total emitted messages per second (0: closed loop)")
	fs.Float64Var(&c.deliveryRate, "delivery-rate", 0, "open loop: target deliveries per second; sets -rate to this / clients")
	fs.IntVar(&c.size, "size", 32, "minimum length of each message string in bytes")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "sending time before measuring")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "measurement window")
	fs.DurationVar(&c.hold, "hold", 2*time.Second, "pause after connecting, before the idle memory reading")
	fs.DurationVar(&c.drain, "drain", 20*time.Second, "longest wait for in-flight deliveries after the senders stop")
	fs.DurationVar(&c.connTimeout, "connect-timeout", 15*time.Second, "per-client connect deadline")
	fs.IntVar(&c.dialConc, "dial-concurrency", 50, "clients connecting at the same time")
	fs.StringVar(&pidList, "pid", "", "server process id, to read its RSS and CPU time from /proc; a comma-separated list adds up several processes (a cluster's nodes and Redis)")
	fs.StringVar(&srcList, "src", "", "comma-separated loopback source addresses, or a count N for 127.0.0.1..127.0.0.N")
	// A large read buffer lets one read system call take in a whole batch of
	// frames; reads are most of the generator's CPU time under fan-out.
	fs.IntVar(&c.readBuf, "read-buffer", 16384, "WebSocket read buffer per client in bytes")
	fs.BoolVar(&c.gzip, "gzip", false, "polling: accept gzip-compressed responses")
	fs.BoolVar(&c.deflate, "deflate", false, "WebSocket: offer permessage-deflate (no context takeover); the run fails unless the server agrees on every connection")
	fs.IntVar(&c.idleConns, "idle-conns", 0, "polling: idle keep-alive connections kept per server (0: twice -clients). A small pool keeps each idle session at one connection, its pending poll; otherwise every heartbeat POST leaves a second one open")
	fs.StringVar(&cpList, "checkpoints", "", "comma-separated client counts below -clients at which connecting pauses for -hold and the server's memory is read, e.g. 5000,10000")
	fs.IntVar(&c.oneToAll, "one-to-all", 0, "after the idle reading, send this many lines one at a time from one client to every client, each once the previous has reached them all, timing every receipt")
	fs.StringVar(&c.label, "label", "", "free-form label copied into the JSON line")
	fs.DurationVar(&c.timeout, "timeout", 2*time.Minute, "hard limit for the whole run")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write the load generator's own CPU profile to this file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	for _, raw := range strings.Split(rawURL, ",") {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || (u.Scheme != "http" && u.Scheme != "ws") || u.Host == "" {
			return nil, fmt.Errorf("-url must be http://host:port or a comma-separated list of them, got %q", rawURL)
		}
		if err := checkLoopback(u.Hostname()); err != nil {
			return nil, err
		}
		u.Scheme = "http"
		c.bases = append(c.bases, u)
	}
	if pidList != "" {
		for _, f := range strings.Split(pidList, ",") {
			if n, err := strconv.Atoi(strings.TrimSpace(f)); err != nil || n <= 0 {
				return nil, fmt.Errorf("-pid: %q is not a process id", f)
			}
			c.pids = append(c.pids, strings.TrimSpace(f))
		}
	}
	if c.eio != 3 && c.eio != 4 {
		return nil, errors.New("-eio must be 3 or 4")
	}
	if c.transport != "websocket" && c.transport != "polling" {
		return nil, errors.New("-transport must be websocket or polling")
	}
	// The cap keeps a typo from exhausting the machine's ports and memory.
	if c.clients < 1 || c.clients > 50000 || c.senders < 0 {
		return nil, errors.New("need 1 <= -clients <= 50000 and -senders >= 0")
	}
	c.senders = min(c.senders, c.clients)
	if c.window < 1 || c.dialConc < 1 || c.readBuf < 256 {
		return nil, errors.New("-window and -dial-concurrency must be >= 1, -read-buffer >= 256")
	}
	if c.deliveryRate > 0 {
		c.msgRate = c.deliveryRate / float64(c.clients)
	}
	if c.deflate && c.transport != "websocket" {
		return nil, errors.New("-deflate needs -transport websocket")
	}
	if c.idleConns < 0 || c.oneToAll < 0 {
		return nil, errors.New("-idle-conns and -one-to-all must not be negative")
	}
	var err error
	if c.checkpoints, err = parseCheckpoints(cpList, c.clients); err != nil {
		return nil, err
	}
	if c.srcs, err = parseSources(srcList); err != nil {
		return nil, err
	}
	return &c, nil
}

// checkLoopback keeps the generator pointed at this machine.
func checkLoopback(host string) error {
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing non-loopback target %q", host)
	}
	return nil
}

// parseCheckpoints reads -checkpoints: ascending client counts between 0
// and clients, exclusive.
func parseCheckpoints(s string, clients int) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 || n >= clients || (len(out) > 0 && n <= out[len(out)-1]) {
			return nil, fmt.Errorf("-checkpoints must be ascending client counts below -clients (%d), got %q", clients, s)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseSources(s string) ([]net.IP, error) {
	if s == "" {
		return nil, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 254 {
			return nil, errors.New("-src count must be 1..254")
		}
		ips := make([]net.IP, n)
		for i := range ips {
			ips[i] = net.IPv4(127, 0, 0, byte(i+1))
		}
		return ips, nil
	}
	var ips []net.IP
	for _, f := range strings.Split(s, ",") {
		ip := net.ParseIP(strings.TrimSpace(f))
		if ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("-src: %q is not a loopback address", f)
		}
		ips = append(ips, ip)
	}
	return ips, nil
}

type client struct {
	r       *run
	id      int
	cc      *eioclient.ChatClient // nil until connected
	credits chan struct{}         // closed loop: one token per own message echoed back
	scratch []byte
	seq     int
	closing atomic.Bool
}

type run struct {
	cfg  *config
	base time.Time // monotonic origin of the timestamps carried in messages

	connHist   histogram // handshake: dial start to Socket.IO connected
	latHist    histogram // send to receipt at the other clients
	measuring  atomic.Bool
	stopping   atomic.Bool
	inWindow   atomic.Uint64 // deliveries received while measuring
	received   atomic.Uint64 // all deliveries
	sent       atomic.Uint64
	foreign    atomic.Uint64
	disconnect atomic.Int64
	srcNext    atomic.Uint64
	connFailed atomic.Int64 // clients that did not connect

	probes    atomic.Pointer[probeSet] // the one-to-all lines, once sent
	probeHist histogram                // their emit to receipt at each client

	errMu    sync.Mutex
	errCount int
	errFirst string
}

func (r *run) now() int64 { return int64(time.Since(r.base)) }

func (r *run) fail(err error) {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	r.errCount++
	if r.errFirst == "" {
		r.errFirst = err.Error()
	}
}

// lost is called when a connected client's read loop ends.
func (c *client) lost(err error) {
	if c.r.stopping.Load() || c.closing.Load() {
		return
	}
	c.r.disconnect.Add(1)
	c.r.fail(fmt.Errorf("client %d disconnected: %w", c.id, err))
}

// handle processes one Socket.IO packet received after the connection,
// from the client's reader. An error means the session is over.
func (c *client) handle(pkt []byte) error {
	if len(pkt) == 0 {
		return nil
	}
	switch pkt[0] {
	case '2':
		d, ok, foreign := parseDelivery(pkt)
		if ok {
			c.onDelivery(d)
		} else if foreign {
			c.r.foreign.Add(1)
		}
	case '1':
		return errors.New("server sent Socket.IO DISCONNECT")
	case '4':
		return fmt.Errorf("connect error %s", clip(pkt[1:]))
	}
	return nil
}

func (c *client) onDelivery(d delivery) {
	r := c.r
	now := r.now()
	if ps := r.probes.Load(); ps != nil && ps.receive(d, now) {
		r.probeHist.record(time.Duration(now - d.sentNS))
		return
	}
	r.received.Add(1)
	if d.sender == c.id {
		if c.credits != nil {
			select {
			case c.credits <- struct{}{}:
			default:
			}
		}
		if r.measuring.Load() {
			r.inWindow.Add(1)
		}
		return
	}
	if r.measuring.Load() {
		r.inWindow.Add(1)
		r.latHist.record(time.Duration(now - d.sentNS))
	}
}

// emit sends one serverReceiver message stamped with sentNS.
func (c *client) emit(sentNS int64) error {
	c.scratch = appendEmit(c.scratch[:0], c.id, c.seq, sentNS, c.r.cfg.size)
	c.seq++
	if err := c.cc.SendPacket(c.scratch); err != nil {
		return err
	}
	c.r.sent.Add(1)
	return nil
}

func (c *client) shutdown() {
	c.closing.Store(true)
	if c.cc != nil {
		c.cc.Close()
	}
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}
	res := execute(cfg)
	line, _ := json.Marshal(res)
	fmt.Println(string(line))
	printSummary(os.Stderr, res)
	if res.Error != "" {
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// execute performs one run: connect, hold, send and measure, drain, report.
func execute(cfg *config) *result {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	r := &run{cfg: cfg, base: time.Now()}
	res := newResult(cfg)
	pids := cfg.pids
	if len(pids) > 0 {
		if s, err := readProcs(pids); err == nil {
			res.ServerRSSStartKB = s.RSSKB
		} else {
			res.Error = fmt.Sprintf("reading server process: %v", err)
			return res
		}
	}

	dial := newDialer(r)
	clients := make([]*client, cfg.clients)
	for i := range clients {
		clients[i] = &client{r: r, id: i}
	}
	defer func() {
		r.stopping.Store(true)
		closeAll(clients)
		dial.closeIdle()
	}()

	connectAll(ctx, r, dial, clients, res)
	if res.Connected == 0 {
		res.Error = "no client connected: " + r.errFirst
		return res
	}
	if cfg.deflate {
		for _, c := range clients {
			if c.cc != nil && c.cc.Deflate() {
				res.DeflateAgreed++
			}
		}
		if res.DeflateAgreed < res.Connected {
			res.Error = fmt.Sprintf("the server agreed to permessage-deflate on %d of %d connections", res.DeflateAgreed, res.Connected)
			return res
		}
	}

	// Idle phase: every client connected, nobody talking.
	sleepCtx(ctx, cfg.hold)
	if len(pids) > 0 {
		s, err := readProcs(pids)
		if err != nil {
			res.Error = fmt.Sprintf("reading server process after connecting: %v", err)
			return res
		}
		res.ServerRSSIdleKB = s.RSSKB
		res.RSSPerConnKB = float64(s.RSSKB-res.ServerRSSStartKB) / float64(res.Connected)
		// Best effort: another user's process hides its descriptors.
		res.ServerFDsIdle, _ = countFDs(pids)
	}
	res.DisconnectsIdle = r.disconnect.Load()

	if cfg.oneToAll > 0 {
		res.OneToAll = sendOneToAll(ctx, r, clients, res.Connected)
	}
	if cfg.senders > 0 && ctx.Err() == nil {
		measureTraffic(ctx, r, clients, pids, res)
	}
	if ctx.Err() != nil && res.Error == "" {
		res.Error = fmt.Sprintf("run exceeded -timeout %s", cfg.timeout)
	}
	res.Disconnects = r.disconnect.Load()
	r.errMu.Lock()
	res.Errors = r.errCount
	if r.errFirst != "" {
		res.FirstError = r.errFirst
	}
	r.errMu.Unlock()
	return res
}

// connectAll connects the clients, cfg.dialConc at a time. At each
// checkpoint it waits for the clients dialled so far, lets the server
// settle for cfg.hold and reads its memory; the time to connect leaves
// those pauses out.
func connectAll(ctx context.Context, r *run, dial *dialer, clients []*client, res *result) {
	cfg := r.cfg
	sem := make(chan struct{}, cfg.dialConc)
	var (
		wg        sync.WaitGroup
		connected atomic.Int64
		took      time.Duration
		next      int
	)
	for _, end := range append(append([]int(nil), cfg.checkpoints...), len(clients)) {
		start := time.Now()
		for ; next < end && ctx.Err() == nil; next++ {
			c := clients[next]
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				t0 := time.Now()
				cctx, ccancel := context.WithTimeout(ctx, cfg.connTimeout)
				defer ccancel()
				if err := dial.connect(cctx, c); err != nil {
					r.connFailed.Add(1)
					r.fail(fmt.Errorf("client %d connect: %w", c.id, err))
					return
				}
				r.connHist.record(time.Since(t0))
				connected.Add(1)
			}()
		}
		wg.Wait()
		took += time.Since(start)
		if end == len(clients) || ctx.Err() != nil {
			break
		}
		sleepCtx(ctx, cfg.hold)
		cp := checkpoint{Clients: end, Connected: int(connected.Load()), ConnectErrors: int(r.connFailed.Load()),
			ConnectSeconds: took.Seconds(), Disconnects: r.disconnect.Load()}
		if len(cfg.pids) > 0 && cp.Connected > 0 {
			if s, err := readProcs(cfg.pids); err == nil {
				cp.ServerRSSKB = s.RSSKB
				cp.RSSPerConnKB = float64(s.RSSKB-res.ServerRSSStartKB) / float64(cp.Connected)
			}
		}
		res.Checkpoints = append(res.Checkpoints, cp)
	}
	res.Connected = int(connected.Load())
	res.ConnectErrors = int(r.connFailed.Load())
	res.ConnectSeconds = took.Seconds()
	res.ConnectRate = float64(res.Connected) / took.Seconds()
	res.HandshakeP50Ms = ms(r.connHist.quantile(0.50))
	res.HandshakeP99Ms = ms(r.connHist.quantile(0.99))
}

// measureTraffic starts the senders, waits out the warm-up, measures for the
// configured window, stops the senders and waits for in-flight deliveries.
func measureTraffic(ctx context.Context, r *run, clients []*client, pids []string, res *result) {
	cfg := r.cfg
	var senders []*client
	for i := 0; i < cfg.senders; i++ {
		c := clients[senderIndex(i, cfg.senders, len(clients), len(cfg.bases))]
		if c.cc != nil {
			senders = append(senders, c)
		}
	}
	if len(senders) == 0 {
		res.Error = "no connected sender"
		return
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if cfg.msgRate > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			openLoop(r, senders, cfg.msgRate, stop)
		}()
	} else {
		for _, s := range senders {
			s.credits = make(chan struct{}, cfg.window)
			for i := 0; i < cfg.window; i++ {
				s.credits <- struct{}{}
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				closedLoop(s, stop)
			}()
		}
	}

	sleepCtx(ctx, cfg.warmup)
	var srv0, self0 procSample
	if len(pids) > 0 {
		srv0, _ = readProcs(pids)
	}
	self0, _ = readProc("self")
	cpus0, _ := readCPUStat()
	sent0 := r.sent.Load()
	r.measuring.Store(true)
	t0 := time.Now()
	peak := srv0.RSSKB
	tick := time.NewTicker(200 * time.Millisecond)
	deadline := time.NewTimer(cfg.duration)
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case <-deadline.C:
			break wait
		case <-tick.C:
			if len(pids) > 0 {
				if s, err := readProcs(pids); err == nil && s.RSSKB > peak {
					peak = s.RSSKB
				}
			}
		}
	}
	tick.Stop()
	r.measuring.Store(false)
	window := time.Since(t0)
	sent1 := r.sent.Load()
	var srv1, self1 procSample
	if len(pids) > 0 {
		srv1, _ = readProcs(pids)
		if srv1.RSSKB > peak {
			peak = srv1.RSSKB
		}
	}
	self1, _ = readProc("self")
	cpus1, _ := readCPUStat()
	close(stop)
	wg.Wait()

	// Drain: wait until every message sent so far reached every client that
	// is still connected. A backlogged server may take a while, so give up
	// only when deliveries stop arriving for a second, or after -drain.
	alive := int64(res.Connected) - r.disconnect.Load()
	expected := r.sent.Load() * uint64(max(alive, 0))
	drainEnd := time.Now().Add(cfg.drain)
	last, lastChange := r.received.Load(), time.Now()
	for last < expected && time.Now().Before(drainEnd) && time.Since(lastChange) < time.Second && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
		if n := r.received.Load(); n != last {
			last, lastChange = n, time.Now()
		}
	}

	res.Senders = len(senders)
	res.WindowSeconds = window.Seconds()
	res.Sent = r.sent.Load()
	res.MsgsPerSec = float64(sent1-sent0) / window.Seconds()
	res.Deliveries = r.inWindow.Load()
	res.DeliveriesPerSec = float64(res.Deliveries) / window.Seconds()
	res.LatencyMs = latencyMs{
		P50: ms(r.latHist.quantile(0.50)),
		P90: ms(r.latHist.quantile(0.90)),
		P99: ms(r.latHist.quantile(0.99)),
		Max: ms(time.Duration(r.latHist.max.Load())),
	}
	res.Expected = expected
	res.Received = r.received.Load()
	if expected > res.Received {
		res.Missing = expected - res.Received
	}
	res.Foreign = r.foreign.Load()
	if len(pids) > 0 {
		res.ServerRSSLoadKB = peak
		res.ServerCPUSeconds = (srv1.CPU - srv0.CPU).Seconds()
		res.ServerCPUUtil = res.ServerCPUSeconds / window.Seconds()
	}
	res.LoadgenCPUUtil = (self1.CPU - self0.CPU).Seconds() / window.Seconds()
	res.CPUTask = busyFractions(cpus0, cpus1)
}

// senderIndex picks the client of sender i of n among clients clients,
// spread evenly, and on node i mod nodes: client k talks to node k mod
// nodes, so the senders take the nodes in turn as the clients do.
func senderIndex(i, n, clients, nodes int) int {
	k := i * clients / n
	k += ((i%nodes - k%nodes) + nodes) % nodes
	if k >= clients {
		k -= nodes
	}
	return k
}

// closedLoop keeps cfg.window messages of one sender in flight: each echo of
// its own message that comes back releases the next send.
func closedLoop(c *client, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-c.credits:
		}
		if err := c.emit(c.r.now()); err != nil {
			c.r.fail(fmt.Errorf("client %d emit: %w", c.id, err))
			return
		}
	}
}

// openLoop emits at a fixed total rate, round robin over the senders. Each
// message is stamped with its scheduled send time, not the actual one, so a
// stalled send shows up as latency instead of silently lowering the rate.
func openLoop(r *run, senders []*client, rate float64, stop <-chan struct{}) {
	interval := time.Duration(float64(time.Second) / rate)
	start := r.now()
	for i := 0; ; i++ {
		due := start + int64(i)*int64(interval)
		if wait := time.Duration(due - r.now()); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-stop:
				t.Stop()
				return
			case <-t.C:
			}
		} else {
			select {
			case <-stop:
				return
			default:
			}
		}
		s := senders[i%len(senders)]
		if err := s.emit(due); err != nil {
			r.fail(fmt.Errorf("client %d emit: %w", s.id, err))
		}
	}
}

func closeAll(clients []*client) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, c := range clients {
		if c.cc == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c.shutdown()
		}()
	}
	wg.Wait()
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
