package integration

// Resource limits: each test starts the real binary with a small value of
// one limit's flag, trips the limit, and checks the status or disconnect the
// offender gets, the metric that counts it, and that other clients keep
// chatting. (The send-queue bound is proved by TestSlowConsumers.)

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"siogo/internal/testutil"
)

// chatWitness is a client whose chatting shows the server still serves
// everyone else.
type chatWitness struct {
	c     *testutil.ChatClient
	lines chan testutil.ChatLine
}

func newChatWitness(t *testing.T, base string, opts testutil.ChatOptions) *chatWitness {
	t.Helper()
	w := &chatWitness{lines: make(chan testutil.ChatLine, 1024)}
	opts.OnLine = func(l testutil.ChatLine) { w.lines <- l }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := testutil.DialChat(ctx, base, opts)
	if err != nil {
		t.Fatalf("witness client: %v", err)
	}
	w.c = c
	t.Cleanup(func() { c.Close() })
	return w
}

// roundTrip sends a line and waits for the witness to receive it back.
func (w *chatWitness) roundTrip(t *testing.T, text string) {
	t.Helper()
	if err := w.c.Send(text); err != nil {
		t.Fatalf("witness: send %q: %v", text, err)
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l := <-w.lines:
			if l.Message == text {
				return
			}
		case <-w.c.Done():
			t.Fatalf("witness: disconnected (%v) before %q came back", w.c.Err(), text)
		case <-timeout:
			t.Fatalf("witness: %q did not come back within 10s", text)
		}
	}
}

func pollingHandshake(t *testing.T, base string, local net.IP) (*http.Response, string) {
	t.Helper()
	hc := http.DefaultClient
	if local != nil {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: local}}
		hc = &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	}
	resp, err := hc.Get(testutil.EIOURL(base+"/socket.io/", 4, "polling", ""))
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestLimitMaxConnections(t *testing.T) {
	const limit = 6
	srv := testutil.Start(t, "chatserver", "-max-connections", fmt.Sprint(limit), "-handshake-rate", "0")
	endpoint := srv.URL() + "/socket.io/"
	witness := newChatWitness(t, srv.URL(), testutil.ChatOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var clients []*testutil.ChatClient
	for i := range limit - 2 {
		c, err := testutil.DialChat(ctx, srv.URL(), testutil.ChatOptions{Transport: []string{"polling", "websocket"}[i%2], Protocol: 3 + i%2})
		if err != nil {
			t.Fatalf("client %d of %d: %v", i+2, limit, err)
		}
		clients = append(clients, c)
	}
	// The last place goes to a polling session that will upgrade: an
	// upgrade is not a new connection.
	upgrader, err := testutil.JoinSIO(ctx, endpoint, 4, "polling", nil)
	if err != nil {
		t.Fatalf("client %d of %d: %v", limit, limit, err)
	}

	resp, body := pollingHandshake(t, srv.URL(), nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "connection limit") {
		t.Errorf("polling handshake beyond the limit: %s %q, want 503 connection limit", resp.Status, body)
	}
	if _, err := testutil.DialWS(ctx, testutil.WSURL(testutil.EIOURL(endpoint, 3, "websocket", ""))); !isHTTPStatus(err, http.StatusServiceUnavailable) {
		t.Errorf("WebSocket handshake beyond the limit: %v, want 503", err)
	}
	if _, err := testutil.DialChat(ctx, srv.URL(), testutil.ChatOptions{}); err == nil {
		t.Errorf("chat client beyond the limit connected")
	}
	if err := upgrader.Upgrade(ctx); err != nil {
		t.Errorf("upgrade at the limit: %v", err)
	}
	witness.roundTrip(t, "still chatting at the limit")
	if n := fetchMetrics(t, srv.URL()).Sum(`siogo_requests_refused_total{status="503"}`); n != 3 {
		t.Errorf(`siogo_requests_refused_total{status="503"} = %v, want 3`, n)
	}

	// A place freed is a place taken.
	clients[0].Close()
	testutil.Eventually(t, 10*time.Second, func() bool {
		return fetchMetrics(t, srv.URL()).Sum("siogo_connected_clients") < limit
	}, "the server never counted the closed client out")
	c, err := testutil.DialChat(ctx, srv.URL(), testutil.ChatOptions{})
	if err != nil {
		t.Fatalf("connecting after a client left: %v", err)
	}
	c.Close()
	for _, c := range clients[1:] {
		c.Close()
	}
}

func isHTTPStatus(err error, status int) bool {
	var se ws.StatusError
	return errors.As(err, &se) && int(se) == status
}

func TestLimitHandshakeFlood(t *testing.T) {
	const rate = 5 // per second, with a burst of twice that
	srv := testutil.Start(t, "chatserver", "-handshake-rate", fmt.Sprint(rate))
	witness := newChatWitness(t, srv.URL(), testutil.ChatOptions{})

	// One address floods: after its burst, it is refused.
	var ok, refused int
	for range 60 {
		resp, body := pollingHandshake(t, srv.URL(), nil)
		switch resp.StatusCode {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			refused++
			if !strings.Contains(body, "too many handshakes") {
				t.Errorf("429 body %q", body)
			}
		default:
			t.Fatalf("flood: %s %q", resp.Status, body)
		}
	}
	t.Logf("flood from 127.0.0.1: %d accepted, %d refused", ok, refused)
	if refused == 0 || ok > 2*rate+rate {
		t.Errorf("flood: %d handshakes accepted and %d refused, want about %d accepted (the burst) and the rest refused", ok, refused, 2*rate)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := testutil.DialWS(ctx, testutil.WSURL(testutil.EIOURL(srv.URL()+"/socket.io/", 4, "websocket", ""))); !isHTTPStatus(err, http.StatusTooManyRequests) {
		t.Errorf("WebSocket handshake during the flood: %v, want 429", err)
	}

	// Clients at other addresses, and those already connected, are
	// unaffected.
	other := net.IPv4(127, 0, 0, 2)
	if resp, body := pollingHandshake(t, srv.URL(), other); resp.StatusCode != http.StatusOK {
		t.Errorf("handshake from %v during the flood: %s %q", other, resp.Status, body)
	}
	newcomer := newChatWitness(t, srv.URL(), testutil.ChatOptions{LocalAddr: other, Transport: "polling"})
	newcomer.roundTrip(t, "hello from another address")
	witness.roundTrip(t, "still chatting during the flood")
	if n := fetchMetrics(t, srv.URL()).Sum(`siogo_requests_refused_total{status="429"}`); n != float64(refused+1) {
		t.Errorf(`siogo_requests_refused_total{status="429"} = %v, want %d`, n, refused+1)
	}
}

func TestLimitMaxPayload(t *testing.T) {
	const limit = 1000
	srv := testutil.Start(t, "chatserver", "-max-payload", fmt.Sprint(limit))
	endpoint := srv.URL() + "/socket.io/"
	witness := newChatWitness(t, srv.URL(), testutil.ChatOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Within the limit: delivered.
	witness.roundTrip(t, strings.Repeat("a", limit-100))

	t.Run("polling POST", func(t *testing.T) {
		c, err := testutil.JoinSIO(ctx, endpoint, 4, "polling", nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.Open.MaxPayload != limit {
			t.Errorf("handshake announces maxPayload %d, want %d", c.Open.MaxPayload, limit)
		}
		body := []byte(`42["serverReceiver","` + strings.Repeat("b", limit) + `"]`)
		resp, answer, err := c.Post(ctx, "", body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("POST of %d bytes: %s %q, want 413", len(body), resp.Status, answer)
		}
		const refused = `siogo_requests_refused_total{status="413"}`
		if n := fetchMetrics(t, srv.URL()).Sum(refused); n != 1 {
			t.Errorf("%s = %v, want 1", refused, n)
		}
	})

	t.Run("WebSocket message", func(t *testing.T) {
		c, err := testutil.JoinSIO(ctx, endpoint, 4, "websocket", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WS().WriteText([]byte(`42["serverReceiver","` + strings.Repeat("c", limit) + `"]`)); err != nil {
			t.Fatal(err)
		}
		for {
			_, _, err := c.WS().ReadMessage(ctx)
			var closed wsutil.ClosedError
			if errors.As(err, &closed) {
				if closed.Code != ws.StatusMessageTooBig {
					t.Errorf("close frame %d %q, want 1009", closed.Code, closed.Reason)
				}
				break
			}
			if err != nil {
				t.Fatalf("want a close frame 1009, got %v", err)
			}
		}
		testutil.Eventually(t, 5*time.Second, func() bool {
			return fetchMetrics(t, srv.URL()).Sum(`siogo_sessions_closed_total{reason="message too big"}`) == 1
		}, `siogo_sessions_closed_total{reason="message too big"} is not 1`)
	})

	witness.roundTrip(t, "still chatting after the oversized payloads")
}

func TestLimitPacketRate(t *testing.T) {
	const rate = 20
	srv := testutil.Start(t, "chatserver", "-max-packet-rate", fmt.Sprint(rate))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	witness := newChatWitness(t, srv.URL(), testutil.ChatOptions{Transport: "polling", Protocol: 3})

	// A client sending within the rate for a while stays.
	polite := newChatWitness(t, srv.URL(), testutil.ChatOptions{})
	tick := time.NewTicker(time.Second / (rate / 2))
	for i := range rate {
		<-tick.C
		if err := polite.c.Send(fmt.Sprintf("polite %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	tick.Stop()
	polite.roundTrip(t, "polite done")

	// Clients flooding, over either transport, are cut off once past their
	// one-second burst.
	for _, transport := range []string{"websocket", "polling"} {
		before := fetchMetrics(t, srv.URL())
		flooder, err := testutil.DialChat(ctx, srv.URL(), testutil.ChatOptions{Transport: transport})
		if err != nil {
			t.Fatal(err)
		}
		sent := 0
	flood:
		for sent < 10*rate {
			select {
			case <-flooder.Done():
				break flood
			default:
			}
			if flooder.Send(fmt.Sprintf("flood %d", sent)) != nil {
				break
			}
			sent++
		}
		select {
		case <-flooder.Done():
		case <-ctx.Done():
			t.Fatalf("%s flooder still connected after sending %d lines", transport, sent)
		}
		if sent <= rate {
			t.Errorf("%s flooder cut off after %d lines, within its burst of %d", transport, sent, rate)
		}
		if errors.Is(flooder.Err(), testutil.ErrChatClosedByClient) {
			t.Errorf("%s flooder: ended by itself, not by the server", transport)
		}
		after := fetchMetrics(t, srv.URL())
		const closed = `siogo_sessions_closed_total{reason="packet rate limit exceeded"}`
		if d := after.Sum(closed) - before.Sum(closed); d != 1 {
			t.Errorf("%s flooder: %s grew by %v, want 1", transport, closed, d)
		}
		if d := after.Sum("siogo_packet_rate_drops_total") - before.Sum("siogo_packet_rate_drops_total"); d != 1 {
			t.Errorf("%s flooder: siogo_packet_rate_drops_total grew by %v, want 1", transport, d)
		}
	}
	polite.roundTrip(t, "polite still here")
	witness.roundTrip(t, "witness still here")
}

// Slowloris: connections that send their request headers a byte at a time,
// or nothing at all, are closed once the header timeout passes, and do not
// keep the server from serving others.
func TestLimitSlowloris(t *testing.T) {
	const timeout = time.Second
	const conns = 100
	srv := testutil.Start(t, "chatserver", "-read-header-timeout", timeout.String(), "-handshake-rate", "0")
	witness := newChatWitness(t, srv.URL(), testutil.ChatOptions{Transport: "polling"})
	request := []byte("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: " + srv.Addr + "\r\nUser-Agent: slow\r\nX-Padding: " +
		strings.Repeat("z", 200) + "\r\n\r\n")

	type result struct {
		sent    int
		elapsed time.Duration
		err     error
	}
	results := make(chan result, conns)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", srv.Addr)
			if err != nil {
				results <- result{err: err}
				return
			}
			defer conn.Close()
			start := time.Now()
			closed := make(chan struct{})
			go func() {
				// The server ends the connection, maybe with an error
				// response first.
				io.Copy(io.Discard, conn)
				close(closed)
			}()
			sent := 0
			if i%10 != 0 { // every tenth connection stays silent
				tick := time.NewTicker(50 * time.Millisecond)
				defer tick.Stop()
			dribble:
				for sent < len(request) {
					select {
					case <-closed:
						break dribble
					case <-tick.C:
					}
					if _, err := conn.Write(request[sent : sent+1]); err != nil {
						break
					}
					sent++
				}
			}
			select {
			case <-closed:
			case <-time.After(10 * timeout):
				results <- result{sent: sent, err: errors.New("still open")}
				return
			}
			results <- result{sent: sent, elapsed: time.Since(start)}
		}()
	}

	// While they hang on, the chat goes on.
	allCut := make(chan struct{})
	go func() {
		wg.Wait()
		close(allCut)
	}()
	rounds := 0
	for tick := time.NewTicker(100 * time.Millisecond); ; <-tick.C {
		select {
		case <-allCut:
		default:
			witness.roundTrip(t, fmt.Sprintf("chatting through slowloris %d", rounds))
			rounds++
			continue
		}
		tick.Stop()
		break
	}
	close(results)
	var longest time.Duration
	for r := range results {
		if r.err != nil {
			t.Errorf("slow connection (%d header bytes sent): %v", r.sent, r.err)
			continue
		}
		if r.sent >= len(request) {
			t.Errorf("a connection sent its whole request (%d bytes in %v) before being cut off", r.sent, r.elapsed)
		}
		if r.elapsed < timeout*9/10 {
			t.Errorf("a connection was cut off after %v, before the %v header timeout", r.elapsed, timeout)
		}
		longest = max(longest, r.elapsed)
	}
	t.Logf("%d slow connections cut off, the last after %v; %d chat round trips meanwhile", conns, longest, rounds)
	if longest > 3*timeout {
		t.Errorf("slow connections held for up to %v, want them cut off near the %v header timeout", longest, timeout)
	}
	witness.roundTrip(t, "chatting after slowloris")
	// The silent ones end as "new", the dribbling ones as "active".
	m := fetchMetrics(t, srv.URL())
	const silent, dribbling = `siogo_http_connections_closed_total{state="new"}`, `siogo_http_connections_closed_total{state="active"}`
	if n := m.Sum(silent) + m.Sum(dribbling); n < conns {
		t.Errorf("%s + %s = %v, want at least the %d slow connections", silent, dribbling, n, conns)
	}
}

// An idle keep-alive connection is closed after the idle timeout.
func TestLimitIdleTimeout(t *testing.T) {
	const idle = time.Second
	srv := testutil.Start(t, "chatserver", "-idle-timeout", idle.String())
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: "+srv.Addr+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil || !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 200")) {
		t.Fatalf("GET /healthz: %q %v", buf[:n], err)
	}
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(10 * idle))
	if n, err := conn.Read(buf); err != io.EOF {
		t.Fatalf("idle keep-alive connection: read %q %v, want the server to close it", buf[:n], err)
	}
	if d := time.Since(start); d < idle*9/10 || d > 3*idle {
		t.Errorf("idle connection closed after %v, want about %v", d, idle)
	}
	// The server counts the close once it has closed the connection, so
	// the count may follow the client's EOF by a moment.
	const closed = `siogo_http_connections_closed_total{state="idle"}`
	testutil.Eventually(t, 5*time.Second, func() bool { return fetchMetrics(t, srv.URL()).Sum(closed) >= 1 },
		"%s to count the idle connection", closed)
}
