package main

import (
	"context"
	"fmt"
	"strconv"
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

// tracker checks the lines one client receives: from each sender, sequence
// numbers must follow one another.
type tracker struct {
	mu     sync.Mutex
	last   []int64 // by sender: last sequence number seen, 0 for none
	first  []int64 // by sender: first sequence number seen
	lines  int64
	gaps   int64
	sample string // the first gap, for the report
}

func newTracker(senders int) *tracker {
	return &tracker{last: make([]int64, senders), first: make([]int64, senders)}
}

// line is the text of a chat line: "<sender> <seq> <sent, ns since start>".
func formatLine(sender int, seq int64, sent time.Duration) string {
	return strconv.Itoa(sender) + " " + strconv.FormatInt(seq, 10) + " " + strconv.FormatInt(int64(sent), 10)
}

func parseLine(s string) (sender int, seq int64, sent time.Duration, ok bool) {
	a, rest, ok1 := strings.Cut(s, " ")
	b, c, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 {
		return 0, 0, 0, false
	}
	n, err1 := strconv.Atoi(a)
	q, err2 := strconv.ParseInt(b, 10, 64)
	t, err3 := strconv.ParseInt(c, 10, 64)
	return n, q, time.Duration(t), err1 == nil && err2 == nil && err3 == nil
}

func (tr *tracker) observe(sender int, seq int64) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.lines++
	if sender < 0 || sender >= len(tr.last) {
		tr.gap(fmt.Sprintf("line from unknown sender %d", sender))
		return
	}
	switch last := tr.last[sender]; {
	case last == 0:
		tr.first[sender] = seq
	case seq != last+1:
		tr.gap(fmt.Sprintf("sender %d: line %d after %d", sender, seq, last))
	}
	tr.last[sender] = seq
}

func (tr *tracker) gap(what string) {
	if tr.gaps == 0 {
		tr.sample = what
	}
	tr.gaps++
}

// latencies counts deliveries to the long-lived clients by latency in
// milliseconds; the last bucket holds everything slower.
type latencies [10001]atomic.Int64

func (h *latencies) add(d time.Duration) { h[min(int(d.Milliseconds()), len(h)-1)].Add(1) }

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
	At         time.Duration `json:"at_ns"`
	RSS        float64       `json:"rss_bytes"`
	Goroutines float64       `json:"goroutines"`
	Connected  float64       `json:"connected"`
}

func run(ctx context.Context, cfg *config) (*summary, error) {
	start := time.Now()
	var lat latencies
	sum := &summary{Config: cfg.export()}

	// Ramp-up: the long-lived clients.
	steady := make([]*eioclient.ChatClient, cfg.clients)
	trackers := make([]*tracker, cfg.clients)
	sem := make(chan struct{}, cfg.dialConc)
	var wg sync.WaitGroup
	var dialErr atomic.Value
	for i := range steady {
		tr := newTracker(cfg.senders)
		trackers[i] = tr
		k := kinds[i%len(kinds)]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			c, err := eioclient.DialChat(dctx, cfg.url, eioclient.ChatOptions{Protocol: k.protocol, Transport: k.transport,
				OnLine: func(l eioclient.ChatLine) {
					sender, seq, sent, ok := parseLine(l.Message)
					if !ok {
						return
					}
					lat.add(time.Since(start) - sent)
					tr.observe(sender, seq)
				}})
			if err != nil {
				dialErr.CompareAndSwap(nil, fmt.Errorf("client %d (%v): %w", i, k, err))
				return
			}
			steady[i] = c
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range steady {
			if c != nil {
				c.Close()
			}
		}
	}()
	if err, _ := dialErr.Load().(error); err != nil {
		return nil, err
	}
	sum.RampUp = time.Since(start).Round(time.Millisecond).String()
	fmt.Printf("soak: %d clients connected in %s; running for %v\n", cfg.clients, sum.RampUp, cfg.duration)

	loadStart := time.Now()
	runCtx, stopLoad := context.WithTimeout(ctx, cfg.duration)
	defer stopLoad()

	// The server's memory and goroutines, every sample interval.
	var samples []sample
	var sampleErr error
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(cfg.sample)
		defer tick.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-tick.C:
			}
			m, err := scrape.Fetch(runCtx, cfg.url)
			if err != nil {
				if runCtx.Err() == nil {
					sampleErr = err
				}
				return
			}
			samples = append(samples, sample{At: time.Since(loadStart), RSS: m.Sum("process_resident_memory_bytes"),
				Goroutines: m.Sum("go_goroutines"), Connected: m.Sum("siogo_connected_clients")})
		}
	}()

	// The senders: spread over the clients, so over every kind, each at
	// its share of the rate. The server acknowledges a line once it has
	// queued it for every connected client.
	sent := make([]atomic.Int64, cfg.senders)
	acked := make([]atomic.Int64, cfg.senders)
	var sendErrs atomic.Int64
	var senders sync.WaitGroup
	for s := range cfg.senders {
		c := steady[s*cfg.clients/cfg.senders]
		senders.Add(1)
		go func() {
			defer senders.Done()
			interval := time.Duration(float64(time.Second) * float64(cfg.senders) / cfg.rate)
			// Senders start spread over one interval.
			select {
			case <-runCtx.Done():
				return
			case <-time.After(interval * time.Duration(s) / time.Duration(cfg.senders)):
			}
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for seq := int64(1); ; seq++ {
				select {
				case <-runCtx.Done():
					return
				case <-tick.C:
				}
				err := c.SendAck(formatLine(s, seq, time.Since(start)), func(int64) {
					for {
						a := acked[s].Load()
						if a >= seq || acked[s].CompareAndSwap(a, seq) {
							return
						}
					}
				})
				if err != nil {
					sendErrs.Add(1)
					return
				}
				sent[s].Store(seq)
			}
		}()
	}

	// Churn: short-lived clients arriving at a steady pace, each checking
	// the lines it sees while connected.
	var churn sync.WaitGroup
	var churnOK, churnFailed, churnDropped, churnGaps, churnLines atomic.Int64
	var churnSample atomic.Value
	if cfg.churn > 0 {
		tick := time.NewTicker(time.Second / time.Duration(cfg.churn))
		churn.Add(1)
		go func() {
			defer churn.Done()
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-runCtx.Done():
					return
				case <-tick.C:
				}
				k := kinds[n%len(kinds)]
				churn.Add(1)
				go func() {
					defer churn.Done()
					tr := newTracker(cfg.senders)
					dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					defer cancel()
					c, err := eioclient.DialChat(dctx, cfg.url, eioclient.ChatOptions{Protocol: k.protocol, Transport: k.transport,
						OnLine: func(l eioclient.ChatLine) {
							if sender, seq, _, ok := parseLine(l.Message); ok {
								tr.observe(sender, seq)
							}
						}})
					if err != nil {
						churnFailed.Add(1)
						churnSample.CompareAndSwap(nil, fmt.Sprintf("connect (%v): %v", k, err))
						return
					}
					churnOK.Add(1)
					select {
					case <-c.Done():
					case <-time.After(cfg.churnLife):
					}
					if err := c.Err(); err != nil {
						churnDropped.Add(1)
						churnSample.CompareAndSwap(nil, fmt.Sprintf("disconnected (%v): %v", k, err))
					}
					c.Close()
					tr.mu.Lock()
					churnGaps.Add(tr.gaps)
					churnLines.Add(tr.lines)
					if tr.gaps > 0 {
						churnSample.CompareAndSwap(nil, fmt.Sprintf("lines out of sequence (%v): %s", k, tr.sample))
					}
					tr.mu.Unlock()
				}()
			}
		}()
	}

	<-runCtx.Done()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	senders.Wait()
	churn.Wait()
	<-sampled
	loadTime := time.Since(loadStart)

	// Drain: every acknowledged line reaches every long-lived client.
	missing := func() (lost int64) {
		for _, tr := range trackers {
			tr.mu.Lock()
			for s := range acked {
				lost += max(0, acked[s].Load()-tr.last[s])
			}
			tr.mu.Unlock()
		}
		return lost
	}
	drainStart := time.Now()
	for missing() > 0 && time.Since(drainStart) < cfg.drain {
		time.Sleep(50 * time.Millisecond)
	}

	// The verdict.
	var totalSent, totalAcked int64
	for s := range sent {
		totalSent += sent[s].Load()
		totalAcked += acked[s].Load()
	}
	sum.LoadTime = loadTime.Round(time.Millisecond).String()
	sum.LinesSent, sum.LinesAcked = totalSent, totalAcked
	sum.Lost = missing()
	for i, tr := range trackers {
		tr.mu.Lock()
		sum.Deliveries += tr.lines
		sum.OutOfOrder += tr.gaps
		if tr.gaps > 0 && sum.FirstProblem == "" {
			sum.FirstProblem = fmt.Sprintf("client %d: %s", i, tr.sample)
		}
		for s := range tr.first {
			if tr.first[s] > 1 {
				sum.Lost += tr.first[s] - 1
				if sum.FirstProblem == "" {
					sum.FirstProblem = fmt.Sprintf("client %d: first line from sender %d was %d", i, s, tr.first[s])
				}
			}
		}
		tr.mu.Unlock()
		if err := steady[i].Err(); err != nil {
			sum.SteadyDisconnected++
			if sum.FirstProblem == "" {
				sum.FirstProblem = fmt.Sprintf("client %d (%v) disconnected: %v", i, kinds[i%len(kinds)], err)
			}
		}
	}
	sum.SendErrors = sendErrs.Load()
	sum.ChurnConnects, sum.ChurnFailed, sum.ChurnDropped = churnOK.Load(), churnFailed.Load(), churnDropped.Load()
	sum.ChurnOutOfOrder, sum.ChurnDeliveries = churnGaps.Load(), churnLines.Load()
	if s, ok := churnSample.Load().(string); ok {
		sum.ChurnProblem = s
	}
	sum.LatencyP50 = lat.quantile(0.50).String()
	sum.LatencyP99 = lat.quantile(0.99).String()
	sum.LatencyMax = lat.quantile(1).String()
	sum.Samples = samples
	if sampleErr != nil {
		sum.fail("reading /metrics: %v", sampleErr)
	}
	sum.judge(cfg, loadTime)
	return sum, nil
}
