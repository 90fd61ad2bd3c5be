package integration

// CORS: by default only the server's own origin (and clients that send no
// Origin, which are not browsers) may use the Socket.IO endpoint, over either
// transport; -cors-origin adds an allowlist, whose answers suit credentialed
// browser requests: the exact origin echoed, never "*", with
// Access-Control-Allow-Credentials.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"siogo/internal/testutil"
)

const foreignOrigin = "http://evil.example"

// corsRequest sends one request to the Socket.IO endpoint with the given
// Origin (none when empty) and extra headers, and returns the response with
// its body read.
func corsRequest(t *testing.T, method, endpoint, origin string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, endpoint, nil)
	if err != nil {
		t.Fatal(err)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, endpoint, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// wantRefused checks a 403 with the Engine.IO "Forbidden" error and no CORS
// grant.
func wantRefused(t *testing.T, what string, resp *http.Response, body string) {
	t.Helper()
	var e struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if resp.StatusCode != http.StatusForbidden || json.Unmarshal([]byte(body), &e) != nil || e.Code != 4 {
		t.Errorf("%s: %s %q, want 403 with {\"code\":4,...}", what, resp.Status, body)
	}
	if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" {
		t.Errorf("%s: refused, yet Access-Control-Allow-Origin: %q", what, v)
	}
}

// dialWSWithOrigin attempts a WebSocket handshake and returns its HTTP status.
func dialWSWithOrigin(t *testing.T, base, origin string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := ws.Dialer{Header: ws.HandshakeHeaderHTTP(http.Header{"Origin": {origin}})}
	conn, _, _, err := d.Dial(ctx, testutil.WSURL(testutil.EIOURL(base+"/socket.io/", 4, "websocket", "")))
	if err == nil {
		conn.Close()
		return http.StatusSwitchingProtocols
	}
	var status ws.StatusError
	if errors.As(err, &status) {
		return int(status)
	}
	t.Fatalf("WebSocket handshake with Origin %s: %v", origin, err)
	return 0
}

func TestCORSSameOriginByDefault(t *testing.T) {
	srv := testutil.Start(t, "chatserver")
	endpoint := srv.URL() + "/socket.io/"
	handshake := testutil.EIOURL(endpoint, 4, "polling", "")
	sameOrigin := srv.URL()

	t.Run("foreign origin refused", func(t *testing.T) {
		resp, body := corsRequest(t, http.MethodGet, handshake, foreignOrigin, nil)
		wantRefused(t, "polling handshake", resp, body)
		resp, body = corsRequest(t, http.MethodOptions, handshake, foreignOrigin, map[string]string{
			"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
		wantRefused(t, "preflight", resp, body)
		if got := dialWSWithOrigin(t, srv.URL(), foreignOrigin); got != http.StatusForbidden {
			t.Errorf("WebSocket handshake from %s: status %d, want 403", foreignOrigin, got)
		}
		// An origin that only differs in its port is another origin.
		other := strings.Replace(sameOrigin, srv.Addr, "127.0.0.1:1", 1)
		resp, body = corsRequest(t, http.MethodGet, handshake, other, nil)
		wantRefused(t, "handshake from "+other, resp, body)

		// A session opened without an Origin cannot be driven from a
		// foreign page either.
		c, err := testutil.DialEIO(context.Background(), endpoint, 4, "polling", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, body = corsRequest(t, http.MethodPost, c.PollURL(), foreignOrigin, nil)
		wantRefused(t, "POST to a session", resp, body)
		resp, body = corsRequest(t, http.MethodGet, c.PollURL(), foreignOrigin, nil)
		wantRefused(t, "GET of a session", resp, body)
		// Six refusals above, each counted.
		const refused = `siogo_requests_refused_total{status="403"}`
		if n := fetchMetrics(t, srv.URL()).Sum(refused); n != 6 {
			t.Errorf("%s = %v, want 6", refused, n)
		}
	})

	t.Run("same origin and no origin pass", func(t *testing.T) {
		for _, origin := range []string{sameOrigin, ""} {
			resp, body := corsRequest(t, http.MethodGet, handshake, origin, nil)
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, `0{"sid":`) {
				t.Errorf("handshake with Origin %q: %s %q, want 200 and an open packet", origin, resp.Status, body)
			}
		}
		if got := dialWSWithOrigin(t, srv.URL(), sameOrigin); got != http.StatusSwitchingProtocols {
			t.Errorf("WebSocket handshake from %s: status %d, want 101", sameOrigin, got)
		}
	})

	t.Run("chat from the same origin, refused from another", func(t *testing.T) {
		for _, transport := range []string{"polling", "websocket"} {
			got := make(chan testutil.ChatLine, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := testutil.DialChat(ctx, srv.URL(), testutil.ChatOptions{
				Transport: transport, Header: http.Header{"Origin": {sameOrigin}},
				OnLine: func(l testutil.ChatLine) { got <- l },
			})
			if err != nil {
				t.Fatalf("%s from the same origin: %v", transport, err)
			}
			c.Send("hello from " + transport)
			select {
			case l := <-got:
				if l.Message != "hello from "+transport {
					t.Errorf("%s: got line %+v", transport, l)
				}
			case <-ctx.Done():
				t.Fatalf("%s: no chat line", transport)
			}
			c.Close()
			if _, err := testutil.DialChat(ctx, srv.URL(), testutil.ChatOptions{
				Transport: transport, Header: http.Header{"Origin": {foreignOrigin}},
			}); err == nil || !strings.Contains(err.Error(), "403") {
				t.Errorf("%s from %s: %v, want a 403 refusal", transport, foreignOrigin, err)
			}
		}
	})
}

func TestCORSAllowlist(t *testing.T) {
	const allowed = "http://chat.example:8080"
	srv := testutil.Start(t, "chatserver", "-cors-origin", "http://other.example, "+allowed)
	handshake := testutil.EIOURL(srv.URL()+"/socket.io/", 4, "polling", "")

	t.Run("credentialed preflight", func(t *testing.T) {
		resp, body := corsRequest(t, http.MethodOptions, handshake, allowed, map[string]string{
			"Access-Control-Request-Method":  "POST",
			"Access-Control-Request-Headers": "content-type, x-requested-with",
		})
		if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
			t.Fatalf("preflight: %s %q, want 204", resp.Status, body)
		}
		wantCredentialedGrant(t, "preflight", resp, allowed)
		if m := resp.Header.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "POST") || !strings.Contains(m, "GET") {
			t.Errorf("preflight: Access-Control-Allow-Methods %q, want GET and POST", m)
		}
		h := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
		for _, want := range []string{"content-type", "x-requested-with"} {
			if !strings.Contains(h, want) {
				t.Errorf("preflight: Access-Control-Allow-Headers %q lacks %s", h, want)
			}
		}
	})

	t.Run("credentialed requests", func(t *testing.T) {
		resp, body := corsRequest(t, http.MethodGet, handshake, allowed, map[string]string{"Cookie": "session=abc"})
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, `0{"sid":`) {
			t.Fatalf("handshake from %s: %s %q", allowed, resp.Status, body)
		}
		wantCredentialedGrant(t, "handshake", resp, allowed)
		if got := dialWSWithOrigin(t, srv.URL(), allowed); got != http.StatusSwitchingProtocols {
			t.Errorf("WebSocket handshake from %s: status %d, want 101", allowed, got)
		}
		for _, transport := range []string{"polling", "websocket"} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := testutil.DialChat(ctx, srv.URL(), testutil.ChatOptions{Transport: transport, Header: http.Header{"Origin": {allowed}}})
			if err != nil {
				t.Fatalf("%s chat from %s: %v", transport, allowed, err)
			}
			c.Close()
		}
	})

	t.Run("others still refused", func(t *testing.T) {
		for _, origin := range []string{foreignOrigin, "http://chat.example", "https://chat.example:8080", allowed + ".evil.example"} {
			resp, body := corsRequest(t, http.MethodGet, handshake, origin, nil)
			wantRefused(t, "handshake from "+origin, resp, body)
			if got := dialWSWithOrigin(t, srv.URL(), origin); got != http.StatusForbidden {
				t.Errorf("WebSocket handshake from %s: status %d, want 403", origin, got)
			}
		}
	})
}

// A wildcard allowlist still answers credentialed requests with the exact
// origin: browsers reject "*" together with credentials.
func TestCORSWildcardWithCredentials(t *testing.T) {
	srv := testutil.Start(t, "chatserver", "-cors-origin", "*")
	handshake := testutil.EIOURL(srv.URL()+"/socket.io/", 4, "polling", "")
	for _, origin := range []string{"http://a.example", "https://b.example:8443"} {
		resp, body := corsRequest(t, http.MethodOptions, handshake, origin, map[string]string{
			"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
		if resp.StatusCode >= 300 {
			t.Fatalf("preflight from %s: %s %q", origin, resp.Status, body)
		}
		wantCredentialedGrant(t, "preflight from "+origin, resp, origin)
		resp, body = corsRequest(t, http.MethodGet, handshake, origin, map[string]string{"Cookie": "session=abc"})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("handshake from %s: %s %q", origin, resp.Status, body)
		}
		wantCredentialedGrant(t, "handshake from "+origin, resp, origin)
	}
}

// wantCredentialedGrant checks the headers a browser needs to hand a
// credentialed response to the page of origin.
func wantCredentialedGrant(t *testing.T, what string, resp *http.Response, origin string) {
	t.Helper()
	if got := resp.Header.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != origin {
		t.Errorf("%s: Access-Control-Allow-Origin %q, want exactly %q", what, got, origin)
	}
	if got := resp.Header.Get("Access-Control-Allow-Credentials"); got != "true" {
		t.Errorf("%s: Access-Control-Allow-Credentials %q, want true", what, got)
	}
	vary := strings.Join(resp.Header.Values("Vary"), ",")
	if !strings.Contains(vary, "Origin") {
		t.Errorf("%s: Vary %q, want Origin (the answer depends on it)", what, vary)
	}
}

// corsPageHTML is a page that chats with another origin's server, named by
// its ?target=, over the transport in ?transport=, with credentials, and
// leaves the outcome in window.result.
const corsPageHTML = `<!doctype html>
<meta charset="utf-8">
<title>cross-origin chat</title>
<script src="/socket.io/socket.io.js"></script>
<script>
  const q = new URLSearchParams(location.search);
  const socket = io(q.get("target"), { transports: [q.get("transport")], withCredentials: true, reconnection: false, timeout: 5000 });
  socket.on("connect", () => socket.emit("serverReceiver", "hello across origins"));
  socket.on("clientReceiver", (line) => { window.result = { connected: true, line: line.message }; });
  socket.on("connect_error", (err) => { window.result = { connected: false, error: String(err && err.message) }; });
</script>
`

// corsBrowserJS opens each page URL given on the command line in headless
// Chromium and prints, as one JSON array, what each page reported.
const corsBrowserJS = `
const { chromium } = require("playwright-core");
(async () => {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, timeout: 10000,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"] });
  const results = [];
  try {
    for (const url of process.argv.slice(2)) {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(url);
      await page.waitForFunction(() => window.result !== undefined, null, { timeout: 15000 });
      results.push(await page.evaluate(() => window.result));
      await context.close();
    }
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(results) + "\n");
})().catch((err) => { console.error(err); process.exit(1); });
`

// TestCORSInBrowser has a real browser enforce the answers: a page served by
// one server chats with another, with credentials, over each transport. The
// other server lets it in only when its allowlist names the page's origin.
func TestCORSInBrowser(t *testing.T) {
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatalf("chromium is not installed at /usr/bin/chromium (make setup installs it): %v", err)
	}
	pageDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(pageDir, "index.html"), []byte(corsPageHTML), 0o644); err != nil {
		t.Fatal(err)
	}
	page := testutil.Start(t, "chatserver", "-static", pageDir)
	allowing := testutil.Start(t, "chatserver", "-cors-origin", page.URL())
	refusing := testutil.Start(t, "chatserver")

	script := filepath.Join(t.TempDir(), "cors-browser.js")
	if err := os.WriteFile(script, []byte(corsBrowserJS), 0o644); err != nil {
		t.Fatal(err)
	}
	type pageCase struct {
		target    *testutil.Server
		transport string
		allowed   bool
	}
	cases := []pageCase{
		{allowing, "polling", true}, {allowing, "websocket", true},
		{refusing, "polling", false}, {refusing, "websocket", false},
	}
	var urls []string
	for _, c := range cases {
		urls = append(urls, page.URL()+"/?target="+c.target.URL()+"&transport="+c.transport)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var results []struct {
		Connected bool   `json:"connected"`
		Line      string `json:"line"`
		Error     string `json:"error"`
	}
	out := testutil.Node(ctx, t, script, urls...)
	if err := json.Unmarshal(out, &results); err != nil || len(results) != len(cases) {
		t.Fatalf("browser output %q: %v", out, err)
	}
	for i, c := range cases {
		r := results[i]
		what := fmt.Sprintf("page at %s chatting with %s over %s", page.URL(), c.target.URL(), c.transport)
		switch {
		case c.allowed && (!r.Connected || r.Line != "hello across origins"):
			t.Errorf("%s (allowlisted): %+v, want the line back", what, r)
		case !c.allowed && r.Connected:
			t.Errorf("%s (not allowlisted): the browser let the page in: %+v", what, r)
		}
	}
}
