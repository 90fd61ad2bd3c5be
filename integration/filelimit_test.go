package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"siogo/internal/testutil"
)

// TestLimitOpenFiles runs a node whose open-file limit is a few hundred. Its
// connection cap follows from the limit, so a full node answers 503 with
// its reason while its clients chat on. Then raw connections that never
// handshake take the descriptors left: the node refuses what comes in with
// 503, counts it, logs it once, and its clients still chat.
func TestLimitOpenFiles(t *testing.T) {
	const files = 256
	srv := testutil.StartWrapped(t, []string{"prlimit", fmt.Sprintf("--nofile=%d:%d", files, files), "--"},
		"chatserver", "-handshake-rate", "0")
	m := regexp.MustCompile(`msg="open-file limit" soft=(\d+) hard=(\d+) max_connections=(\d+)`).FindStringSubmatch(srv.Logs())
	if m == nil {
		t.Fatalf("no open-file limit line in the log:\n%s", srv.Logs())
	}
	maxConns, _ := strconv.Atoi(m[3])
	if m[1] != strconv.Itoa(files) || m[2] != strconv.Itoa(files) || maxConns <= 0 || maxConns >= files {
		t.Fatalf("open-file limit %s/%s, max_connections %d: want %d/%d and a cap below it", m[1], m[2], maxConns, files, files)
	}

	// Fill the node.
	witness := newChatWitness(t, srv.URL(), testutil.ChatOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	endpoint := srv.URL() + "/socket.io/"
	var held []*testutil.EIOClient
	defer func() {
		for _, c := range held {
			c.WS().Close()
		}
	}()
	for len(held) < maxConns-1 {
		c, err := testutil.DialEIO(ctx, endpoint, 4, "websocket", nil)
		if err != nil {
			t.Fatalf("connection %d of %d: %v", len(held)+2, maxConns, err)
		}
		held = append(held, c)
	}
	resp, body := pollingHandshake(t, srv.URL(), nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, fmt.Sprintf("connection limit reached (%d)", maxConns)) {
		t.Fatalf("handshake on a full node: %s %q, want 503 with the reason", resp.Status, body)
	}
	witness.roundTrip(t, "chatting on a full node")

	// Exhaust the descriptors with connections that never speak.
	var raw []net.Conn
	defer func() {
		for _, c := range raw {
			c.Close()
		}
	}()
	refused := 0
	for range files {
		c, err := net.DialTimeout("tcp", srv.Addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, c)
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		buf := make([]byte, 512)
		if n, _ := c.Read(buf); n > 0 {
			if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 503") || !strings.Contains(string(buf[:n]), "out of file descriptors") {
				t.Fatalf("a connection past the descriptors got %q", buf[:n])
			}
			refused++
			if refused == 5 {
				break
			}
		}
	}
	if refused < 5 {
		t.Fatalf("only %d connections were refused with 503 out of %d opened", refused, len(raw))
	}
	witness.roundTrip(t, "chatting with no descriptor left")
	for _, c := range raw {
		c.Close()
	}
	raw = nil
	testutil.Eventually(t, 10*time.Second, func() bool {
		metrics, err := testutil.ScrapeMetrics(context.Background(), srv.URL())
		return err == nil && metrics.Sum("siogo_accept_refused_total") >= 5
	}, "siogo_accept_refused_total to count the refusals")
	if n := strings.Count(srv.Logs(), "out of file descriptors"); n != 1 {
		t.Errorf("the node logged running out of descriptors %d times, want once in the interval:\n%s", n, srv.Logs())
	}
}
