package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"siogo/internal/eioclient"
	"siogo/internal/scrape"
)

// kind is a protocol revision and transport pair; clients take them in turn.
type kind struct {
	protocol  int
	transport string
}

var kinds = []kind{{3, "polling"}, {3, "websocket"}, {4, "polling"}, {4, "websocket"}}

func (k kind) String() string { return fmt.Sprintf("EIO%d %s", k.protocol, k.transport) }

// latencies counts deliveries to the long-lived clients by latency in
// milliseconds; the last bucket holds everything slower.
type latencies [10001]atomic.Int64

func (h *latencies) add(d time.Duration) { h[min(max(int(d.Milliseconds()), 0), len(h)-1)].Add(1) }

func (h *latencies) quantile(q float64) time.Duration {
	var total int64
	for i := range h {
		total += h[i].Load()
	}
	want := int64(float64(total)*q + 0.5)
	var seen int64
	for i := range h {
		if seen += h[i].Load(); seen >= max(want, 1) {
			return time.Duration(i) * time.Millisecond
		}
	}
	return 0
}

type sample struct {
	Node       string        `json:"node,omitempty"`
	At         time.Duration `json:"at_ns"`
	RSS        float64       `json:"rss_bytes"`
	Goroutines float64       `json:"goroutines"`
	Connected  float64       `json:"connected"`
}

// member is a long-lived client. On a cluster it reconnects when its
// connection ends, through a node picked at random as a round-robin
// balancer would, and recovers its session when it can.
type member struct {
	i    int
	kind kind
	tr   *tracker

	mu          sync.Mutex
	c           *eioclient.ChatClient
	node        int // of the current connection
	drops       []drop
	recovered   int // reconnections that recovered the session
	fresh       int // reconnections that got a new session
	attempts    int // failed reconnection attempts
	longestAway time.Duration
}

// drop is the end of one of a member's connections.
type drop struct {
	at   time.Duration // since the load started
	node int
	err  string
}

func (m *member) client() (*eioclient.ChatClient, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.c, m.node
}

// homeNode is the node long-lived client i first connects to: the clients
// take the nodes in turn, four at a time, so that every node has as many
// clients of each kind.
func homeNode(i, nodes int) int { return (i / len(kinds)) % nodes }

// senderMember picks the long-lived client of sender s: spread evenly over
// the clients, and of kind s mod 4 on node s mod nodes, so that the senders
// cover every kind on every node.
func senderMember(s, senders, clients, nodes int) int {
	k := s * clients / senders
	for range clients {
		if k%len(kinds) == s%len(kinds) && homeNode(k, nodes) == s%nodes {
			return k
		}
		k = (k + 1) % clients
	}
	return s * clients / senders
}

// soak is one run.
type soak struct {
	cfg       *config
	cl        *cluster
	start     time.Time // origin of the times carried in the lines
	loadStart time.Time
	lat       latencies
	stopping  atomic.Bool // the load is over: ends of connections are ours
	acks      []*ackLog   // by sender
	members   []*member

	mu          sync.Mutex
	samples     []sample
	sampleErr   error
	restart     *restartReport
	churnIssues []churnIssue
	churnGaps   []*tracker // short-lived clients' trackers with a gap
}

// churnIssue is a short-lived client that failed to connect or was dropped
// before its time.
type churnIssue struct {
	node       int
	start, end time.Duration // since the load started
	what       string
}

func (s *soak) since() time.Duration { return time.Since(s.loadStart) }

func run(ctx context.Context, cfg *config, cl *cluster) (*summary, error) {
	s := &soak{cfg: cfg, cl: cl, start: time.Now()}
	s.loadStart = s.start
	sum := &summary{Config: cfg.export()}
	for range cfg.senders {
		s.acks = append(s.acks, newAckLog())
	}

	// Ramp-up: the long-lived clients.
	if err := s.rampUp(ctx); err != nil {
		return nil, err
	}
	defer func() {
		s.stopping.Store(true)
		for _, m := range s.members {
			if c, _ := m.client(); c != nil {
				c.Close()
			}
		}
	}()
	sum.RampUp = time.Since(s.start).Round(time.Millisecond).String()
	fmt.Printf("soak: %d clients connected to %d node(s) in %s; running for %v\n", cfg.clients, len(cl.nodes), sum.RampUp, cfg.duration)

	s.loadStart = time.Now()
	runCtx, stopLoad := context.WithTimeout(ctx, cfg.duration)
	defer stopLoad()
	// The reconnections run until the lines have drained.
	keepCtx, stopKeeping := context.WithCancel(ctx)
	defer stopKeeping()
	var keepers sync.WaitGroup
	if len(cl.nodes) > 1 {
		for _, m := range s.members {
			keepers.Add(1)
			go func() {
				defer keepers.Done()
				s.keep(keepCtx, m)
			}()
		}
	}

	var wg sync.WaitGroup
	spawn := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	for _, n := range cl.nodes {
		spawn(func() { s.sampleNode(runCtx, n) })
	}
	var sendErrs atomic.Int64
	for snd := range cfg.senders {
		spawn(func() { s.send(runCtx, snd, &sendErrs) })
	}
	var churn churnCounts
	if cfg.churn > 0 {
		spawn(func() { s.churn(runCtx, ctx, &churn) })
	}
	if cfg.restarts() {
		spawn(func() {
			select {
			case <-runCtx.Done():
				return
			case <-time.After(cfg.restartAt):
			}
			s.restartNode(ctx)
		})
	}

	<-runCtx.Done()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	wg.Wait()
	loadTime := s.since()

	// Drain: every acknowledged line reaches every long-lived client.
	drainStart := time.Now()
	for !s.caughtUp() && time.Since(drainStart) < cfg.drain && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	sum.Recoveries = s.serverRecoveries(ctx)
	s.stopping.Store(true)
	stopKeeping()
	keepers.Wait()

	sum.LoadTime = loadTime.Round(time.Millisecond).String()
	sum.SendErrors = sendErrs.Load()
	s.verdict(sum)
	churn.fill(sum)
	sum.LatencyP50 = s.lat.quantile(0.50).String()
	sum.LatencyP99 = s.lat.quantile(0.99).String()
	sum.LatencyMax = s.lat.quantile(1).String()
	sum.judge(cfg, loadTime, len(cl.nodes))
	return sum, nil
}

// restartNode restarts the node -restart-node names and reports how it went.
func (s *soak) restartNode(ctx context.Context) {
	i := s.cfg.restartNode - 1
	fmt.Printf("soak: restarting %s at %s\n", s.cl.nodes[i].name(), s.since().Round(time.Second))
	r := s.cl.restart(ctx, i, s.since)
	s.mu.Lock()
	s.restart = r
	s.mu.Unlock()
	if r.Error != "" {
		fmt.Printf("soak: restart: %s\n", r.Error)
		return
	}
	fmt.Printf("soak: %s exited %s after SIGTERM and was ready again %s later\n", r.Node,
		(r.ExitedAt - r.SIGTERMAt).Round(time.Millisecond), (r.ReadyAt - r.ExitedAt).Round(time.Millisecond))
}

func (s *soak) rampUp(ctx context.Context) error {
	cfg := s.cfg
	s.members = make([]*member, cfg.clients)
	sem := make(chan struct{}, cfg.dialConc)
	var wg sync.WaitGroup
	var dialErr atomic.Value
	for i := range s.members {
		m := &member{i: i, kind: kinds[i%len(kinds)], tr: newTracker(cfg.senders), node: homeNode(i, len(s.cl.nodes))}
		s.members[i] = m
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			c, err := eioclient.DialChat(dctx, s.cl.nodes[m.node].url, eioclient.ChatOptions{
				Protocol: m.kind.protocol, Transport: m.kind.transport,
				OnLine: func(l eioclient.ChatLine) {
					sender, seq, sent, ok := parseLine(l.Message)
					if !ok {
						return
					}
					s.lat.add(time.Since(s.start) - sent)
					m.tr.observe(sender, seq)
				}})
			if err != nil {
				dialErr.CompareAndSwap(nil, fmt.Errorf("client %d (%v) to %s: %w", i, m.kind, s.cl.nodes[m.node].name(), err))
				return
			}
			m.mu.Lock()
			m.c = c
			m.mu.Unlock()
		}()
	}
	wg.Wait()
	if err, _ := dialErr.Load().(error); err != nil {
		for _, m := range s.members {
			if c, _ := m.client(); c != nil {
				c.Close()
			}
		}
		return err
	}
	return nil
}

// keep reconnects m each time its connection ends, until ctx is done, as
// socket.io-client does: after a delay of about a second, doubling up to
// five, with half of it random.
func (s *soak) keep(ctx context.Context, m *member) {
	for {
		c, node := m.client()
		select {
		case <-c.Done():
		case <-ctx.Done():
			return
		}
		if s.stopping.Load() {
			return
		}
		away := time.Now()
		m.mu.Lock()
		m.drops = append(m.drops, drop{at: s.since(), node: node, err: c.Err().Error()})
		m.mu.Unlock()
		for attempt := 0; ; attempt++ {
			delay := min(time.Second<<attempt, 5*time.Second)
			delay = delay/2 + rand.N(delay)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			k := rand.IntN(len(s.cl.nodes))
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			nc, err := c.Reconnect(dctx, s.cl.nodes[k].url)
			cancel()
			m.mu.Lock()
			if err != nil {
				m.attempts++
				m.mu.Unlock()
				continue
			}
			m.c, m.node = nc, k
			if nc.Recovered() {
				m.recovered++
			} else {
				m.fresh++
			}
			m.longestAway = max(m.longestAway, time.Since(away))
			m.mu.Unlock()
			break
		}
	}
}

// send emits sender snd's lines at its share of the rate until ctx is
// done. Lines are numbered from 1; a number is used once its line was
// handed to the connection, even if the connection then failed, so a line
// the server never took shows as a gap that no ack covers.
func (s *soak) send(ctx context.Context, snd int, errs *atomic.Int64) {
	cfg := s.cfg
	m := s.members[senderMember(snd, cfg.senders, cfg.clients, len(s.cl.nodes))]
	acks := s.acks[snd]
	interval := time.Duration(float64(time.Second) * float64(cfg.senders) / cfg.rate)
	// Senders start spread over one interval.
	select {
	case <-ctx.Done():
		return
	case <-time.After(interval * time.Duration(snd) / time.Duration(cfg.senders)):
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for seq := int64(1); ; {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		c, _ := m.client()
		if c.Err() != nil {
			continue // reconnecting
		}
		q := seq
		err := c.SendAck(formatLine(snd, q, time.Since(s.start)), func(id int64) { acks.ack(q, id) })
		acks.setSent(q)
		seq++
		if err != nil {
			errs.Add(1)
		}
	}
}

// churnCounts are the short-lived clients' totals.
type churnCounts struct {
	ok, lines atomic.Int64
}

func (cc *churnCounts) fill(sum *summary) {
	sum.ChurnConnects, sum.ChurnDeliveries = cc.ok.Load(), cc.lines.Load()
}

// churn starts short-lived clients at a steady pace until runCtx is done,
// each on the next node that is up, and waits for them. Each checks the
// lines it sees while connected.
func (s *soak) churn(runCtx, ctx context.Context, counts *churnCounts) {
	cfg := s.cfg
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(time.Second / time.Duration(cfg.churn))
	defer tick.Stop()
	next := 0
	for n := 0; ; n++ {
		select {
		case <-runCtx.Done():
			return
		case <-tick.C:
		}
		k := kinds[n%len(kinds)]
		node := -1
		for range s.cl.nodes {
			next = (next + 1) % len(s.cl.nodes)
			if s.cl.nodes[next].up.Load() {
				node = next
				break
			}
		}
		if node < 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := newTracker(cfg.senders)
			start := s.since()
			issue := func(what string) {
				s.mu.Lock()
				s.churnIssues = append(s.churnIssues, churnIssue{node: node, start: start, end: s.since(), what: what})
				s.mu.Unlock()
			}
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			c, err := eioclient.DialChat(dctx, s.cl.nodes[node].url, eioclient.ChatOptions{Protocol: k.protocol, Transport: k.transport,
				OnLine: func(l eioclient.ChatLine) {
					if sender, seq, _, ok := parseLine(l.Message); ok {
						tr.observe(sender, seq)
					}
				}})
			if err != nil {
				issue(fmt.Sprintf("connect (%v): %v", k, err))
				return
			}
			counts.ok.Add(1)
			select {
			case <-c.Done():
			case <-time.After(cfg.churnLife):
			}
			if err := c.Err(); err != nil {
				issue(fmt.Sprintf("disconnected (%v): %v", k, err))
			}
			c.Close()
			tr.mu.Lock()
			counts.lines.Add(tr.lines)
			problem := len(tr.gaps) > 0 || tr.twice > 0
			tr.mu.Unlock()
			if problem {
				s.mu.Lock()
				s.churnGaps = append(s.churnGaps, tr)
				s.mu.Unlock()
			}
		}()
	}
}

// sampleNode reads the node's memory and goroutines from its /metrics every
// sample interval until ctx is done. A node that is restarting is skipped.
func (s *soak) sampleNode(ctx context.Context, n *node) {
	tick := time.NewTicker(s.cfg.sample)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !n.up.Load() {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := scrape.Fetch(sctx, n.url)
		cancel()
		s.mu.Lock()
		switch {
		case err == nil:
			s.samples = append(s.samples, sample{Node: n.id, At: s.since(), RSS: m.Sum("process_resident_memory_bytes"),
				Goroutines: m.Sum("go_goroutines"), Connected: m.Sum("siogo_connected_clients")})
		case ctx.Err() == nil && n.up.Load() && s.sampleErr == nil:
			s.sampleErr = fmt.Errorf("%s: %w", n.name(), err)
		}
		s.mu.Unlock()
	}
}

// caughtUp reports whether every long-lived client has every line
// acknowledged so far.
func (s *soak) caughtUp() bool {
	for _, m := range s.members {
		if !m.tr.caughtUp(s.acks) {
			return false
		}
	}
	return true
}

// serverRecoveries adds up the nodes' recovery counters by result.
func (s *soak) serverRecoveries(ctx context.Context) map[string]float64 {
	out := map[string]float64{}
	for _, n := range s.cl.nodes {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := scrape.Fetch(sctx, n.url)
		cancel()
		if err != nil {
			continue
		}
		for series, v := range m {
			if result, ok := labelValue(series, "siogo_recoveries_total", "result"); ok {
				out[result] += v
			}
		}
		out["replayed packets"] += m.Sum("siogo_recovery_replayed_packets_total")
	}
	return out
}

// labelValue reads the value of a series' only label, e.g. "succeeded"
// from `siogo_recoveries_total{result="succeeded"}`.
func labelValue(series, name, label string) (string, bool) {
	v, ok := strings.CutPrefix(series, name+"{"+label+`="`)
	if !ok {
		return "", false
	}
	return strings.CutSuffix(v, `"}`)
}

// verdict counts, at the end, what every client received against what the
// server acknowledged, and how the connections fared.
func (s *soak) verdict(sum *summary) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.acks {
		sent, acked, _, _ := a.counts()
		sum.LinesSent += sent
		sum.LinesAcked += acked
	}
	restart := s.restart
	sum.Samples = s.samples
	if s.sampleErr != nil {
		sum.fail("reading /metrics: %v", s.sampleErr)
	}
	if restart != nil {
		sum.Restart = restart
		if restart.Error != "" {
			sum.fail("restart of %s: %s", restart.Node, restart.Error)
		}
	}
	// byRestart tells whether a connection to node that ended at t was
	// ended by the restart: from its SIGTERM until a little after its exit.
	byRestart := func(node int, t time.Duration) bool {
		return restart != nil && node == restart.index && t >= restart.SIGTERMAt && t <= restart.ExitedAt+5*time.Second
	}

	var aways []time.Duration
	for _, m := range s.members {
		m.mu.Lock()
		c := m.c
		drops := slices.Clone(m.drops)
		recovered, fresh, attempts, away := m.recovered, m.fresh, m.attempts, m.longestAway
		m.mu.Unlock()
		m.tr.mu.Lock()
		sum.Deliveries += m.tr.lines
		sum.OutOfOrder += m.tr.twice
		if m.tr.twice > 0 && sum.FirstProblem == "" {
			sum.FirstProblem = fmt.Sprintf("client %d (%v): %s", m.i, m.kind, m.tr.sample)
		}
		m.tr.mu.Unlock()

		unexpected := 0
		for _, d := range drops {
			if !byRestart(d.node, d.at) {
				unexpected++
				if sum.FirstProblem == "" {
					sum.FirstProblem = fmt.Sprintf("client %d (%v) of %s disconnected at %s: %s", m.i, m.kind,
						s.cl.nodes[d.node].name(), d.at.Round(time.Millisecond), d.err)
				}
			}
		}
		if len(drops) > 0 {
			sum.Reconnect.Dropped++
			if unexpected == 0 {
				sum.Reconnect.ByRestart++
			}
			aways = append(aways, away)
		}
		sum.Reconnect.Unexpected += unexpected
		sum.Reconnect.FailedAttempts += attempts
		eio3Reconnected := m.kind.protocol == 3 && len(drops) > 0
		if m.kind.protocol == 4 {
			sum.Reconnect.Recovered += recovered
			sum.Reconnect.NotRecovered += fresh
		} else {
			sum.Reconnect.EIO3Fresh += fresh
		}
		if err := c.Err(); err != nil {
			sum.SteadyDisconnected++
			if sum.FirstProblem == "" {
				sum.FirstProblem = fmt.Sprintf("client %d (%v) not connected at the end: %v", m.i, m.kind, err)
			}
		}

		lost, unacked, first := m.tr.missing(s.acks, true)
		sum.UnackedMissing += unacked
		switch {
		case eio3Reconnected && lost > 0:
			// Engine.IO 3 clients cannot recover: what was said while
			// they were away is gone for them, as for socket.io 1.x/2.x.
			sum.Reconnect.EIO3WithGap++
			sum.Reconnect.EIO3Missed += lost
		case lost > 0:
			sum.Lost += lost
			sum.LostClients++
			if sum.FirstProblem == "" {
				sum.FirstProblem = fmt.Sprintf("client %d (%v): %s", m.i, m.kind, first)
			}
		}
	}
	if len(aways) > 0 {
		slices.Sort(aways)
		sum.Reconnect.AwayP50 = aways[len(aways)/2].Round(time.Millisecond).String()
		sum.Reconnect.AwayMax = aways[len(aways)-1].Round(time.Millisecond).String()
	}

	// Senders: each keeps its clientID, unless it is an Engine.IO 3
	// client that had to reconnect.
	for snd, a := range s.acks {
		m := s.members[senderMember(snd, s.cfg.senders, s.cfg.clients, len(s.cl.nodes))]
		_, _, changes, change := a.counts()
		m.mu.Lock()
		dropped := len(m.drops) > 0
		m.mu.Unlock()
		if dropped {
			sum.Reconnect.SendersDropped++
		}
		switch {
		case changes == 0:
		case m.kind.protocol == 3 && dropped:
			sum.Reconnect.EIO3SendersNewID++
		default:
			sum.SenderIDChanges++
			if sum.FirstProblem == "" {
				sum.FirstProblem = fmt.Sprintf("sender %d (client %d, %v): %s", snd, m.i, m.kind, change)
			}
		}
	}

	// Short-lived clients: those on the restarted node during its restart
	// are excused from failing or being dropped; none may have a gap in
	// acknowledged lines.
	for _, ci := range s.churnIssues {
		if restart != nil && ci.node == restart.index && ci.end >= restart.SIGTERMAt && ci.start <= restart.ReadyAt+5*time.Second {
			sum.ChurnByRestart++
			continue
		}
		sum.ChurnFailed++
		if sum.ChurnProblem == "" {
			sum.ChurnProblem = fmt.Sprintf("%s, on %s at %s", ci.what, s.cl.nodes[ci.node].name(), ci.start.Round(time.Millisecond))
		}
	}
	for _, tr := range s.churnGaps {
		lost, unacked, first := tr.missing(s.acks, false)
		sum.UnackedMissing += unacked
		sum.ChurnLost += lost
		tr.mu.Lock()
		sum.ChurnOutOfOrder += tr.twice
		if sum.ChurnProblem == "" && (lost > 0 || tr.twice > 0) {
			sum.ChurnProblem = first + tr.sample
		}
		tr.mu.Unlock()
	}
}
