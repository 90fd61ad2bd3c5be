package integration

// JSONP polling: socket.io-client 1.4.8 and 2.5.0 with forceJSONP in
// headless Chromium chat with socket.io-client 4.8.4 over WebSocket in
// Node.js (testdata/node/jsonp-browser.js), and JSONP sessions meet the
// same limits as XHR polling, counted in the same metrics.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"siogo/internal/testutil"
)

type jsonpLine struct {
	ClientID int    `json:"clientID"`
	Message  string `json:"message"`
}

type jsonpRequest struct {
	Kind        string `json:"kind"`
	Method      string `json:"method"`
	J           string `json:"j"`
	Transport   string `json:"transport"`
	Status      int    `json:"status"`
	ContentType string `json:"contentType"`
}

type jsonpSummary struct {
	OK       bool     `json:"ok"`
	Failures []string `json:"failures"`
	Browser  struct {
		Ack       jsonpLine   `json:"ack"`
		Lines     []jsonpLine `json:"lines"`
		Transport string      `json:"transport"`
	} `json:"browser"`
	Node struct {
		Ack   jsonpLine   `json:"ack"`
		Lines []jsonpLine `json:"lines"`
	} `json:"node"`
	Binary *struct {
		Label    string `json:"label"`
		Sent     []int  `json:"sent"`
		Received []int  `json:"received"`
		Kind     string `json:"kind"`
	} `json:"binary"`
	BinaryRequests []jsonpRequest `json:"binaryRequests"`
	Foreign        *struct {
		Connected bool   `json:"connected"`
		Error     string `json:"error"`
	} `json:"foreign"`
	Requests   []jsonpRequest `json:"requests"`
	PageErrors []string       `json:"pageErrors"`
}

// TestJSONPBrowser: each JSONP client chats with a 4.x WebSocket client on
// the chat server, with text that JSONP must escape and unescape (quotes,
// a backslash before an n, a newline, </script>, and for 2.x Korean, an
// emoji and U+2028); 2.x also round-trips a binary attachment through the
// conformance server; and a page of another origin is refused. Run with
// -matrix.server=node to see the reference do the same (the binary and
// foreign-origin parts need our binaries).
func TestJSONPBrowser(t *testing.T) {
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatalf("chromium is not installed at /usr/bin/chromium (make setup installs it): %v", err)
	}
	ours := *matrixServerFlag == "go"
	chat := startMatrixServer(t, "chatserver")
	var conformance, foreignPage string
	if ours {
		// JSONP cannot keep up with the conformance server's 300 ms
		// heartbeat: every send waits for the previous form to load.
		conformance = testutil.Start(t, "conformance", "-ping-interval", "25s", "-ping-timeout", "20s").URL()
		dir := t.TempDir()
		page := `<!doctype html><meta charset="utf-8"><title>another origin</title>`
		if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
		foreignPage = testutil.Start(t, "chatserver", "-static", dir).URL() + "/"
	}
	// socket.io-client 1.x UTF-8-encodes text a second time over polling,
	// JSONP included, and the reference does not undo it either (see
	// matrix-client.js): its lines stay ASCII.
	tricky := "say \"hi\" \\ C:\\new\nline two </script><!--"
	for _, c := range []struct {
		generation    int
		text, wsText  string
		binary, other bool
	}{
		{1, "1.4.8 over JSONP: " + tricky, "4.x over WebSocket: hello, 1.4.8", false, false},
		{2, "2.5.0 over JSONP: 안녕하세요 😀 " + tricky + " \u2028 \u2029", "4.x over WebSocket: 반가워요 😀", ours, ours},
	} {
		t.Run(fmt.Sprintf("socket.io-client %d.x", c.generation), func(t *testing.T) {
			args := []string{"--chat", chat, "--generation", fmt.Sprint(c.generation), "--text", c.text, "--ws-text", c.wsText}
			if c.binary {
				args = append(args, "--conformance", conformance)
			}
			var refusedBefore float64
			if c.other {
				args = append(args, "--foreign", foreignPage)
				refusedBefore = scrape(t, chat).Sum(`siogo_requests_refused_total{status="403"}`)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			cmd := testutil.NodeCommand(ctx, t, "testdata/node/jsonp-browser.js", args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			runErr := cmd.Run()
			var sum jsonpSummary
			if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil || runErr != nil || !sum.OK {
				t.Fatalf("jsonp-browser.js: %v, %v, failures %q\nstdout:\n%s\nstderr:\n%s", runErr, err, sum.Failures, stdout.String(), stderr.String())
			}

			// Both clients saw both lines, in the order they were sent,
			// under the ids their acks gave them.
			b, n := sum.Browser.Ack.ClientID, sum.Node.Ack.ClientID
			want := []jsonpLine{{b, c.text}, {n, c.wsText}}
			if b == n {
				t.Errorf("both clients got clientID %d", b)
			}
			if fmt.Sprint(sum.Browser.Lines) != fmt.Sprint(want) {
				t.Errorf("JSONP client received %+v, want %+v", sum.Browser.Lines, want)
			}
			if fmt.Sprint(sum.Node.Lines) != fmt.Sprint(want) {
				t.Errorf("4.x client received %+v, want %+v", sum.Node.Lines, want)
			}
			if sum.Browser.Transport != "polling" || len(sum.PageErrors) != 0 {
				t.Errorf("JSONP client on %q, page errors %q", sum.Browser.Transport, sum.PageErrors)
			}
			checkJSONPRequests(t, "chat", sum.Requests, ours)

			if c.binary {
				bin := sum.Binary
				if bin == nil || bin.Label != "binary over JSONP" || bin.Kind != "[object ArrayBuffer]" ||
					len(bin.Sent) != 300 || fmt.Sprint(bin.Received) != fmt.Sprint(bin.Sent) {
					t.Errorf("binary echo: %+v", bin)
				}
				checkJSONPRequests(t, "binary", sum.BinaryRequests, ours)
			}
			if c.other {
				if sum.Foreign == nil || sum.Foreign.Connected {
					t.Errorf("a page of another origin connected over JSONP: %+v", sum.Foreign)
				}
				if got := scrape(t, chat).Sum(`siogo_requests_refused_total{status="403"}`); got <= refusedBefore {
					t.Errorf("no refusal counted for the other origin's JSONP poll (%v before, %v after)", refusedBefore, got)
				}
			}
		})
	}
}

// checkJSONPRequests checks that a session used JSONP only: script tags for
// the polls, answered with scripts, and form posts into an iframe.
func checkJSONPRequests(t *testing.T, what string, reqs []jsonpRequest, ours bool) {
	t.Helper()
	posts := 0
	for _, r := range reqs {
		switch {
		case r.J != "0" || r.Transport != "polling" || r.Status != http.StatusOK:
			t.Errorf("%s: request %+v, want a JSONP poll (j=0) answered 200", what, r)
		case r.Method == http.MethodGet && r.Kind == "script":
			if ours && r.ContentType != "text/javascript; charset=UTF-8" {
				t.Errorf("%s: poll answered as %q", what, r.ContentType)
			}
		case r.Method == http.MethodPost && r.Kind == "document":
			posts++
		default:
			t.Errorf("%s: request %+v is neither a script poll nor a form post", what, r)
		}
	}
	if posts == 0 || len(reqs) < 3 {
		t.Errorf("%s: %d requests, %d posts: %+v", what, len(reqs), posts, reqs)
	}
}

// sidInJSONP finds the sid in a JSONP handshake script.
var sidInJSONP = regexp.MustCompile(`sid\\":\\"([A-Za-z0-9_.-]+)\\"`)

func scrape(t *testing.T, base string) testutil.Metrics {
	t.Helper()
	m, err := testutil.ScrapeMetrics(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestJSONPLimits: against the chat server, a hostile j never reaches an
// answer, and a JSONP session meets the payload limit, the packet rate and
// the origin check of XHR polling, each refusal counted where the XHR one
// is.
func TestJSONPLimits(t *testing.T) {
	srv := testutil.Start(t, "chatserver", "-max-payload", "300", "-max-packet-rate", "5")
	endpoint := srv.URL() + "/socket.io/"
	for _, j := range []string{"", "abc", "1);alert(document.cookie);//", "<script>", "99999999999999999999", "٣"} {
		resp, body := corsRequest(t, http.MethodGet, endpoint+"?EIO=3&transport=polling&j="+url.QueryEscape(j), "", nil)
		if resp.StatusCode != http.StatusBadRequest || (j != "" && strings.Contains(body, j)) || strings.Contains(body, "___eio") {
			t.Errorf("j=%q: %d %q, want 400 without it", j, resp.StatusCode, body)
		}
	}
	if n := scrape(t, srv.URL()).Sum("siogo_sessions_opened_total"); n != 0 {
		t.Errorf("%v sessions opened by refused handshakes", n)
	}

	open := func() string {
		resp, body := corsRequest(t, http.MethodGet, endpoint+"?EIO=3&transport=polling&j=0", "", nil)
		m := sidInJSONP.FindStringSubmatch(body)
		if resp.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("JSONP handshake: %d %q", resp.StatusCode, body)
		}
		return m[1]
	}
	post := func(sid, origin, payload string) int {
		req, err := http.NewRequest(http.MethodPost, endpoint+"?EIO=3&transport=polling&j=0&sid="+sid, strings.NewReader("d="+url.QueryEscape(payload)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	before := scrape(t, srv.URL())

	// Over the payload limit: 413, as for XHR.
	sid := open()
	if got := post(sid, "", "301:4"+strings.Repeat("x", 300)); got != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized JSONP POST: %d, want 413", got)
	}
	// From another origin: 403.
	if got := post(sid, foreignOrigin, "1:2"); got != http.StatusForbidden {
		t.Errorf("JSONP POST from %s: %d, want 403", foreignOrigin, got)
	}
	// Faster than the packet rate: disconnected.
	if got := post(sid, "", strings.Repeat("1:2", 20)); got != http.StatusOK {
		t.Errorf("burst POST: %d", got)
	}
	// The session is gone, as after an XHR client's burst.
	resp, body := corsRequest(t, http.MethodGet, endpoint+"?EIO=3&transport=polling&j=0&sid="+sid, "", nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Session ID unknown") {
		t.Errorf("poll after the burst: %d %q, want 400 Session ID unknown", resp.StatusCode, body)
	}

	after := scrape(t, srv.URL())
	for _, series := range []string{
		`siogo_requests_refused_total{status="413"}`,
		`siogo_requests_refused_total{status="403"}`,
		"siogo_packet_rate_drops_total",
		`siogo_sessions_closed_total{reason="packet rate limit exceeded"}`,
	} {
		if d := after.Sum(series) - before.Sum(series); d != 1 {
			t.Errorf("%s grew by %v, want 1", series, d)
		}
	}
}
