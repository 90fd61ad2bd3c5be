package integration

// Compression on the wire: socket.io-client 4.8.4 in Node.js and in
// Chromium chats through a chatserver with HTTP compression (on by default)
// and -per-message-deflate, behind a proxy that records the bytes
// (wiretap_test.go).

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"siogo/internal/testutil"
)

const compressionThreshold = 1024 // the default of both options

func TestCompressionOnTheWire(t *testing.T) {
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatalf("chromium is not installed at /usr/bin/chromium (make setup installs it): %v", err)
	}
	dir := t.TempDir()
	page := `<!doctype html><meta charset="utf-8"><title>compression</title><script src="/socket.io/socket.io.js"></script>`
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := testutil.Start(t, "chatserver", "-per-message-deflate", "-static", dir)
	tap := startWiretap(t, srv.URL())

	// About 1.6 KB: every broadcast is over the threshold, as a frame and
	// as a poll's answer.
	text := strings.Repeat("안녕하세요, compression! ", 60)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := testutil.NodeCommand(ctx, t, "testdata/node/compression-clients.js", "--url", tap.URL(), "--text", text)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var sum struct {
		OK       bool     `json:"ok"`
		Failures []string `json:"failures"`
		Clients  map[string]struct {
			Transport string   `json:"transport"`
			Lines     []string `json:"lines"`
		} `json:"clients"`
		PageErrors []string `json:"pageErrors"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil || runErr != nil || !sum.OK {
		t.Fatalf("compression-clients.js: %v, %v, failures %q\nstderr:\n%s\nserver:\n%s", runErr, err, sum.Failures, stderr.String(), srv.Logs())
	}

	// Every client read every line whole.
	names := []string{"node-xhr", "node-fetch", "node-websocket", "browser-polling", "browser-websocket"}
	var want []string
	for _, n := range names {
		want = append(want, text+" "+n)
	}
	slices.Sort(want)
	for _, n := range names {
		c, ok := sum.Clients[n]
		got := slices.Sorted(slices.Values(c.Lines))
		if !ok || !slices.Equal(got, want) {
			t.Errorf("%s received %d lines, want the %d sent", n, len(c.Lines), len(want))
		}
		wantTransport := "polling"
		if strings.HasSuffix(n, "websocket") {
			wantTransport = "websocket"
		}
		if c.Transport != wantTransport {
			t.Errorf("%s on %q, want %s", n, c.Transport, wantTransport)
		}
	}
	if len(sum.PageErrors) != 0 {
		t.Errorf("page errors: %q", sum.PageErrors)
	}

	checkPollingCompression(t, tap.Exchanges())
	checkWebSocketCompression(t, tap.Exchanges(), tap.Frames())
}

// checkPollingCompression: polling answers over the threshold are gzip for
// the clients that accept it (Chromium's XHR, Node's fetch) and plain for
// the one that does not (xmlhttprequest-ssl); answers under it are plain.
func checkPollingCompression(t *testing.T, exchanges []tappedExchange) {
	t.Helper()
	gzipped := map[string]int{}
	bigPlain := map[string]int{}
	for _, ex := range exchanges {
		if ex.Method != http.MethodGet || !strings.Contains(ex.URI, "transport=polling") || ex.Status != http.StatusOK {
			continue
		}
		client := pollingClient(ex.Request)
		accepts := strings.Contains(ex.Request.Get("Accept-Encoding"), "gzip")
		switch enc := ex.Response.Get("Content-Encoding"); {
		case enc == "gzip" && accepts:
			gzipped[client]++
		case enc != "":
			t.Errorf("%s: answer in %q to Accept-Encoding %q", client, enc, ex.Request.Get("Accept-Encoding"))
		case accepts && ex.WireBytes >= compressionThreshold:
			t.Errorf("%s: %d-byte answer not compressed though it accepts gzip", client, ex.WireBytes)
		case ex.WireBytes >= compressionThreshold:
			bigPlain[client]++
		}
	}
	for _, c := range []string{"chromium", "node fetch"} {
		if gzipped[c] == 0 {
			t.Errorf("%s: no polling answer was gzip (gzip by client: %v)", c, gzipped)
		}
	}
	if bigPlain["node xhr"] == 0 {
		t.Errorf("node xhr: no answer over the threshold went plain to the client that accepts no compression (%v)", bigPlain)
	}
}

// pollingClient names the client that made a polling request.
func pollingClient(h http.Header) string {
	switch ua := h.Get("User-Agent"); {
	case strings.Contains(ua, "HeadlessChrome"):
		return "chromium"
	case h.Get("Accept-Encoding") != "":
		return "node fetch"
	default:
		return "node xhr"
	}
}

// checkWebSocketCompression: both WebSockets agreed on permessage-deflate,
// the server's frames over the threshold have RSV1 set and its frames
// without it are under the threshold, and each client compressed its long
// line.
func checkWebSocketCompression(t *testing.T, exchanges []tappedExchange, frames []tappedFrame) {
	t.Helper()
	upgrades := 0
	for _, ex := range exchanges {
		if ex.Status != http.StatusSwitchingProtocols {
			continue
		}
		upgrades++
		if ext := ex.Response.Get("Sec-WebSocket-Extensions"); !strings.HasPrefix(ext, "permessage-deflate") {
			t.Errorf("%s: upgrade answered with extensions %q", wsClient(ex.Request.Get("User-Agent")), ext)
		}
	}
	if upgrades != 2 {
		t.Errorf("%d WebSocket upgrades, want 2", upgrades)
	}
	type count struct{ compressed, plain int }
	server := map[string]*count{"chromium": {}, "node ws": {}}
	client := map[string]*count{"chromium": {}, "node ws": {}}
	for _, f := range frames {
		c := client
		if f.FromServer {
			c = server
		}
		n := c[wsClient(f.UserAgent)]
		rsv1 := f.Header.Rsv&0x4 != 0
		switch {
		case f.Header.OpCode.IsControl():
			if rsv1 {
				t.Errorf("control frame %+v with RSV1", f)
			}
		case rsv1:
			n.compressed++
		default:
			n.plain++
			if f.FromServer && f.Header.Length >= compressionThreshold {
				t.Errorf("%s: server frame of %d bytes without RSV1", wsClient(f.UserAgent), f.Header.Length)
			}
		}
	}
	for name, n := range server {
		if n.compressed == 0 || n.plain == 0 {
			t.Errorf("server to %s: %d compressed and %d plain frames, want both (long lines compressed, short packets not)", name, n.compressed, n.plain)
		}
	}
	for name, n := range client {
		if n.compressed == 0 {
			t.Errorf("%s sent no compressed frame", name)
		}
	}
}

// wsClient names the client of a WebSocket from its upgrade's User-Agent.
func wsClient(ua string) string {
	if strings.Contains(ua, "HeadlessChrome") {
		return "chromium"
	}
	return "node ws"
}
