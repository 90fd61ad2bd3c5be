package integration

// Slow consumers: clients that stop reading must not slow anyone else down,
// must be disconnected once their send queue bound is reached, and must not
// make the server's memory grow. The test chats among 500 WebSocket clients,
// measures delivery latency without and then with 50 stalled clients, and
// watches the server process from /proc.

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"siogo/internal/testutil"
)

const (
	slowChatters = 500
	slowStalled  = 50
	slowSenders  = 5
	slowRate     = 2 // lines per second per sender
	slowPadding  = 2000
	slowMaxQueue = 32
	slowPhase    = 5 * time.Second
)

// slowReceiver records what one chatting client receives.
type slowReceiver struct {
	mu       sync.Mutex
	last     map[int]int              // sender → last sequence number seen
	gaps     []string                 // out-of-order or missing lines
	lat      map[byte][]time.Duration // phase → latencies
	received atomic.Int64
}

func (r *slowReceiver) onLine(start time.Time) func(testutil.ChatLine) {
	return func(l testutil.ChatLine) {
		now := time.Since(start)
		// "<phase> <sender> <seq> <sent ns> <padding>"
		f := strings.SplitN(l.Message, " ", 5)
		if len(f) < 4 {
			return
		}
		sender, _ := strconv.Atoi(f[1])
		seq, _ := strconv.Atoi(f[2])
		sent, _ := strconv.ParseInt(f[3], 10, 64)
		r.mu.Lock()
		if want := r.last[sender] + 1; seq != want {
			r.gaps = append(r.gaps, fmt.Sprintf("sender %d: got %d, want %d", sender, seq, want))
		}
		r.last[sender] = seq
		r.lat[f[0][0]] = append(r.lat[f[0][0]], now-time.Duration(sent))
		r.mu.Unlock()
		r.received.Add(1)
	}
}

// shrinkSocketBuffers shrinks a client socket's receive buffer and maximum segment
// size, so that a client that stops reading backs up the server's writes
// after a few tens of kilobytes instead of megabytes of loopback buffers.
func shrinkSocketBuffers(_, _ string, c syscall.RawConn) error {
	var err error
	c.Control(func(fd uintptr) {
		if err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048); err != nil {
			return
		}
		err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 536)
	})
	return err
}

// dialChatClients connects n clients, 50 at a time.
func dialChatClients(t *testing.T, base string, n int, opts func(i int) testutil.ChatOptions) []*testutil.ChatClient {
	t.Helper()
	clients := make([]*testutil.ChatClient, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 50)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := testutil.DialChat(ctx, base, opts(i))
			if err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
				return
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, c := range clients {
			c.Close()
		}
	})
	return clients
}

// durationPercentile returns the p-th percentile (0 < p < 100) of ds.
func durationPercentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p/100))]
}

// memWatch samples a server's resident memory (from /proc) and the memory
// its Go runtime holds (from /metrics) until stopped, keeping the peaks.
type memWatch struct {
	rss, goSys float64 // bytes
	stop, done chan struct{}
}

func watchMemory(t *testing.T, srv *testutil.Server) *memWatch {
	w := &memWatch{stop: make(chan struct{}), done: make(chan struct{})}
	sample := func() bool {
		rss, err := testutil.ProcRSS(srv.Cmd.Process.Pid)
		if err != nil {
			return false
		}
		w.rss = max(w.rss, float64(rss))
		w.goSys = max(w.goSys, fetchMetrics(t, srv.URL()).Sum("go_memstats_sys_bytes"))
		return true
	}
	sample()
	go func() {
		defer close(w.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			if !sample() {
				return
			}
		}
	}()
	return w
}

// Peaks stops the watch and returns the highest readings, in bytes.
func (w *memWatch) Peaks() (rss, goSys float64) {
	close(w.stop)
	<-w.done
	return w.rss, w.goSys
}

func TestSlowConsumers(t *testing.T) {
	srv := testutil.Start(t, "chatserver",
		"-max-queue", strconv.Itoa(slowMaxQueue),
		// Heartbeats stay out of the way: only the queue bound (or the
		// server's 10 s write timeout) may disconnect a stalled client.
		"-ping-interval", "5m", "-ping-timeout", "1m",
		"-handshake-rate", "0", "-max-packet-rate", "0")
	start := time.Now()

	receivers := make([]*slowReceiver, slowChatters)
	for i := range receivers {
		receivers[i] = &slowReceiver{last: map[int]int{}, lat: map[byte][]time.Duration{}}
	}
	chatters := dialChatClients(t, srv.URL(), slowChatters, func(i int) testutil.ChatOptions {
		return testutil.ChatOptions{OnLine: receivers[i].onLine(start)}
	})

	var sent atomic.Int64
	seqs := make([]int, slowSenders)
	padding := strings.Repeat("x", slowPadding)
	// chat runs the senders until stop is closed, then waits until every
	// chatter has received every line sent so far.
	chat := func(phase byte, stop <-chan struct{}) {
		t.Helper()
		var wg sync.WaitGroup
		for s := range slowSenders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Senders are spread over the second so the load is even.
				time.Sleep(time.Duration(s) * time.Second / slowRate / slowSenders)
				tick := time.NewTicker(time.Second / slowRate)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					seqs[s]++
					msg := fmt.Sprintf("%c %d %d %d %s", phase, s, seqs[s], time.Since(start), padding)
					if err := chatters[s].Send(msg); err != nil {
						t.Errorf("sender %d: %v", s, err)
						return
					}
					sent.Add(1)
				}
			}()
		}
		wg.Wait()
		want := sent.Load()
		for i, r := range receivers {
			testutil.Eventually(t, 30*time.Second, func() bool { return r.received.Load() >= want },
				"chatter %d received %d of %d lines (ended: %v)", i, r.received.Load(), want, chatters[i].Err())
		}
	}
	chatFor := func(phase byte, d time.Duration) {
		stop := make(chan struct{})
		time.AfterFunc(d, func() { close(stop) })
		chat(phase, stop)
	}
	latencies := func(phase byte) []time.Duration {
		var all []time.Duration
		for _, r := range receivers {
			r.mu.Lock()
			all = append(all, r.lat[phase]...)
			r.mu.Unlock()
		}
		return all
	}
	// idleGoroutines waits for the writers of the last phase to exit (they
	// linger a second for more traffic) and returns the server's count.
	idleGoroutines := func(atMost float64) float64 {
		var n float64
		testutil.Eventually(t, 10*time.Second, func() bool {
			n = fetchMetrics(t, srv.URL()).Sum("go_goroutines")
			return n <= atMost
		}, "server goroutines: %v, want at most %v", n, atMost)
		return n
	}

	// Warm-up, unmeasured: buffers, pools and heaps reach their working
	// size. Then the baseline: everyone reads.
	chatFor('w', 2*time.Second)
	baseWatch := watchMemory(t, srv)
	chatFor('b', slowPhase)
	baseRSS, baseSys := baseWatch.Peaks()
	baseGoroutines := idleGoroutines(math.Inf(1))
	before := fetchMetrics(t, srv.URL())

	// Stalled: 50 more clients connect and never read again. The chat goes
	// on until the server has dropped them all, and a second after.
	stallWatch := watchMemory(t, srv)
	stalled := dialChatClients(t, srv.URL(), slowStalled, func(int) testutil.ChatOptions {
		return testutil.ChatOptions{NoRead: true, Control: shrinkSocketBuffers}
	})
	if n := fetchMetrics(t, srv.URL()).Sum("siogo_connected_clients"); n != slowChatters+slowStalled {
		t.Fatalf("server counts %v connected clients, want %d", n, slowChatters+slowStalled)
	}
	stallStart := time.Now()
	stop := make(chan struct{})
	chatDone := make(chan struct{})
	go func() {
		defer close(chatDone)
		chat('s', stop)
	}()
	gone := time.Duration(-1)
	for tick := time.NewTicker(100 * time.Millisecond); gone < 0 && time.Since(stallStart) < 2*slowDisconnectBound; <-tick.C {
		if fetchMetrics(t, srv.URL()).Sum("siogo_connected_clients") <= slowChatters {
			gone = time.Since(stallStart)
		}
	}
	if gone >= 0 {
		time.Sleep(time.Second) // chat on a little without the stalled clients
	}
	close(stop)
	<-chatDone
	stallRSS, stallSys := stallWatch.Peaks()
	stall := latencies('s')
	after := fetchMetrics(t, srv.URL())

	// Baseline again, so that a change in the machine's load during the
	// test is not taken for the stalled clients' doing.
	chatFor('a', slowPhase)
	base := latencies('b')
	base2 := latencies('a')

	basePct := max(durationPercentile(base, 99), durationPercentile(base2, 99))
	stallPct := durationPercentile(stall, 99)
	t.Logf("baseline: %d deliveries, p50 %v p99 %v; after: %d deliveries, p50 %v p99 %v; peak RSS %.0f MB, Go runtime %.0f MB",
		len(base), durationPercentile(base, 50), durationPercentile(base, 99), len(base2), durationPercentile(base2, 50), durationPercentile(base2, 99), baseRSS/mb, baseSys/mb)
	t.Logf("stalled:  %d deliveries, p50 %v p99 %v, peak RSS %.0f MB, Go runtime %.0f MB, stalled clients gone after %v",
		len(stall), durationPercentile(stall, 50), stallPct, stallRSS/mb, stallSys/mb, gone)

	if gone < 0 || gone > slowDisconnectBound {
		t.Errorf("stalled clients still connected after %v (server counts %v clients), want all gone within %v",
			time.Since(stallStart).Round(time.Millisecond), after.Sum("siogo_connected_clients"), slowDisconnectBound)
	}
	if d := after.Sum("siogo_send_queue_drops_total") - before.Sum("siogo_send_queue_drops_total"); d != slowStalled {
		t.Errorf("siogo_send_queue_drops_total grew by %v, want %d", d, slowStalled)
	}
	if stallPct > 2*basePct {
		t.Errorf("p99 latency with stalled clients %v, want under twice the baseline's %v", stallPct, basePct)
	}
	// A stalled client costs the server a bounded queue, a blocked writer
	// and its buffer: far below the 1 MB each allowed here, both in what
	// the Go runtime holds and in resident memory. Under the race detector
	// the resident memory also holds the detector's shadow memory and
	// history, which grow with every allocation, so the allowance for RSS
	// takes its documented overhead of up to 10 times.
	allowed := float64(slowStalled) * mb
	if d := stallSys - baseSys; d > allowed {
		t.Errorf("the server's Go runtime grew by %.0f MB with stalled clients, want under %.0f MB", d/mb, allowed/mb)
	}
	if testutil.RaceEnabled() {
		allowed *= 10
	}
	if d := stallRSS - baseRSS; d > allowed {
		t.Errorf("server RSS peaked at %.0f MB with stalled clients, %.0f MB without; want growth under %.0f MB",
			stallRSS/mb, baseRSS/mb, allowed/mb)
	}
	// No writer stays blocked on a dropped client.
	idleGoroutines(baseGoroutines + 5)
	for i, r := range receivers {
		r.mu.Lock()
		if len(r.gaps) > 0 {
			t.Errorf("chatter %d lost or reordered lines: %v", i, r.gaps[:min(5, len(r.gaps))])
		}
		r.mu.Unlock()
		if err := chatters[i].Err(); err != nil {
			t.Errorf("chatter %d was disconnected: %v", i, err)
		}
	}

	// The stalled clients, reading at last, find their sessions ended
	// partway: the server dropped what it could not deliver.
	total := sent.Load()
	var wg sync.WaitGroup
	for i, c := range stalled {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			lines, err := c.Drain(ctx)
			if ctx.Err() != nil {
				t.Errorf("stalled client %d: session still open after reading %d lines", i, lines)
			} else if int64(lines) >= total {
				t.Errorf("stalled client %d read all %d lines (%v); it was never cut off", i, lines, err)
			}
		}()
	}
	wg.Wait()
}

// fetchMetrics scrapes the server's /metrics, failing the test on error.
func fetchMetrics(t *testing.T, base string) testutil.Metrics {
	t.Helper()
	m, err := testutil.ScrapeMetrics(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

const mb = 1 << 20

// slowDisconnectBound is how long a stalled client may stay connected: the
// time to fill the kernel's socket buffers (about 45 kB with the client's
// small buffers: 2 s at 10 lines of 2 kB a second), then either the send
// queue bound (32 lines, 3 s at this rate) or the server's 10 s write
// timeout, whichever comes first, plus generous scheduling slack.
const slowDisconnectBound = 15 * time.Second
