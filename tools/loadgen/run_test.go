package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"siogo/internal/proc"
)

// These tests run the load generator against the real chat server, built
// from the repository this module sits in.

var (
	buildOnce sync.Once
	chatBin   string
	buildErr  string
)

// chatServer builds cmd/chatserver once per test process.
func chatServer(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := filepath.Abs("../..")
		if err != nil {
			buildErr = err.Error()
			return
		}
		dir, err := os.MkdirTemp("", "loadgen-test-")
		if err != nil {
			buildErr = err.Error()
			return
		}
		chatBin = filepath.Join(dir, "chatserver")
		cmd := exec.Command("go", "build", "-o", chatBin, "./cmd/chatserver")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = err.Error() + "\n" + string(out)
		}
	})
	if buildErr != "" {
		t.Fatalf("building the chat server: %s", buildErr)
	}
	return chatBin
}

// startChat runs the chat server on a free loopback port until the test
// ends, with the abuse limits off as the benchmark runs it.
func startChat(t *testing.T, args ...string) *proc.Process {
	t.Helper()
	argv := append([]string{"-addr", "127.0.0.1:0", "-handshake-rate", "0", "-max-packet-rate", "0"}, args...)
	p, err := proc.Start(context.Background(), exec.Command(chatServer(t), argv...), proc.Options{Wait: 20 * time.Second, Grace: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	return p
}

// runAgainst runs the load generator with args against p and returns its
// result, failing the test on a flag error.
func runAgainst(t *testing.T, p *proc.Process, args ...string) *result {
	t.Helper()
	cfg, err := parseFlags(append([]string{"-url", p.URL(), "-pid", strconv.Itoa(p.Pid()), "-timeout", "1m"}, args...))
	if err != nil {
		t.Fatal(err)
	}
	res := execute(cfg)
	t.Logf("%+v", res)
	return res
}

// TestScaleRun: the phases of a scale run in one go: connecting with
// readings at checkpoints, lines one at a time to everyone, then a line a
// second; every client gets every line and every figure is filled in.
func TestScaleRun(t *testing.T) {
	p := startChat(t)
	const n = 120
	res := runAgainst(t, p, "-clients", strconv.Itoa(n), "-src", "2", "-checkpoints", "40,80", "-hold", "200ms",
		"-one-to-all", "3", "-senders", "1", "-rate", "4", "-warmup", "300ms", "-duration", "1s")
	if res.Error != "" || res.Connected != n || res.ConnectErrors != 0 || res.Errors != 0 || res.Disconnects != 0 {
		t.Fatalf("run: error %q, %d/%d connected, %d connect errors, %d errors (%s), %d disconnects",
			res.Error, res.Connected, n, res.ConnectErrors, res.Errors, res.FirstError, res.Disconnects)
	}
	if len(res.Checkpoints) != 2 {
		t.Fatalf("checkpoints %+v, want readings at 40 and 80", res.Checkpoints)
	}
	for i, c := range res.Checkpoints {
		if want := 40 * (i + 1); c.Clients != want || c.Connected != want || c.ServerRSSKB <= 0 || c.RSSPerConnKB <= 0 ||
			c.ConnectSeconds <= 0 || c.ConnectSeconds > res.ConnectSeconds {
			t.Errorf("checkpoint %d: %+v (all connected in %.3fs)", i, c, res.ConnectSeconds)
		}
	}
	if res.ServerRSSIdleKB <= 0 || res.RSSPerConnKB <= 0 || res.ServerFDsIdle < n {
		t.Errorf("idle reading: RSS %d kB, %.2f kB per connection, %d open files", res.ServerRSSIdleKB, res.RSSPerConnKB, res.ServerFDsIdle)
	}
	o := res.OneToAll
	if o == nil || o.Lines != 3 || o.Receivers != n || o.Received != 3*n || o.Missing != 0 || len(o.LastMs) != 3 {
		t.Fatalf("one-to-all: %+v", o)
	}
	if o.P50Ms <= 0 || o.P50Ms > o.P99Ms || o.P99Ms > o.MaxMs || o.LastMedianMs <= 0 || o.LastMedianMs > o.MaxMs*1.01 {
		t.Errorf("one-to-all figures out of order: %+v", o)
	}
	// The line-a-second phase does not count the one-to-all lines. (The
	// server's CPU time over it may be below /proc's 10 ms tick.)
	if res.Mode != "open" || res.Sent == 0 || res.Missing != 0 || res.Received != res.Sent*n || res.LatencyMs.P99 <= 0 {
		t.Errorf("traffic: mode %s, sent %d, received %d, missing %d, p99 %.2f ms",
			res.Mode, res.Sent, res.Received, res.Missing, res.LatencyMs.P99)
	}
}

// TestIdlePollingSessionsKeepOneConnection: idle polling sessions answer
// heartbeat after heartbeat over the hold and stay connected, and with a
// small idle pool each holds one connection, its pending poll, on the
// server.
func TestIdlePollingSessionsKeepOneConnection(t *testing.T) {
	p := startChat(t, "-ping-interval", "400ms", "-ping-timeout", "3s")
	const n, pool = 100, 4
	res := runAgainst(t, p, "-transport", "polling", "-clients", strconv.Itoa(n), "-senders", "0", "-hold", "2s",
		"-idle-conns", strconv.Itoa(pool))
	if res.Error != "" || res.Connected != n || res.Errors != 0 || res.DisconnectsIdle != 0 {
		t.Fatalf("run: error %q, %d/%d connected, %d errors (%s), %d dropped while idle",
			res.Error, res.Connected, n, res.Errors, res.FirstError, res.DisconnectsIdle)
	}
	// The server's own files (listener, logs, epoll) take about ten.
	if limit := n + pool + 20; res.ServerFDsIdle < n || res.ServerFDsIdle > limit {
		t.Errorf("the server held %d files open for %d idle polling sessions, want %d to %d", res.ServerFDsIdle, n, n, limit)
	}
}

// TestDeflateRun: with -deflate the clients get permessage-deflate from a
// server that offers it and every 2 KB line arrives; a server that does not
// offer it fails the run.
func TestDeflateRun(t *testing.T) {
	on := startChat(t, "-per-message-deflate", "-per-message-deflate-threshold", "1024")
	args := []string{"-deflate", "-clients", "20", "-senders", "2", "-window", "4", "-size", "2048", "-hold", "0s",
		"-warmup", "200ms", "-duration", "500ms"}
	res := runAgainst(t, on, args...)
	if res.Error != "" || res.DeflateAgreed != 20 || res.Deliveries == 0 || res.Missing != 0 || res.Errors != 0 {
		t.Fatalf("run: error %q, deflate on %d of 20, %d deliveries, %d missing, %d errors (%s)",
			res.Error, res.DeflateAgreed, res.Deliveries, res.Missing, res.Errors, res.FirstError)
	}
	off := startChat(t)
	if res := runAgainst(t, off, args...); !strings.Contains(res.Error, "agreed to permessage-deflate on 0 of 20") {
		t.Errorf("a server without permessage-deflate: error %q", res.Error)
	}
}
