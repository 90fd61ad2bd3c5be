package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"siogo/internal/testutil"
)

// browserSummary is what testdata/node/browser.js reports: the DOM of every
// tab after the exchange, plus what the page and the network showed about
// the transport each tab used.
type browserSummary struct {
	Mode       string       `json:"mode"`
	OK         bool         `json:"ok"`
	Failures   []string     `json:"failures"`
	Screenshot string       `json:"screenshot"`
	DurationMs int          `json:"durationMs"`
	Tabs       []browserTab `json:"tabs"`
}

type browserTab struct {
	Index           int      `json:"index"`
	Query           string   `json:"query"`
	ID              *int     `json:"id"`
	SocketTransport string   `json:"socketTransport"`
	PageState       string   `json:"pageState"`
	PageTransport   string   `json:"pageTransport"`
	SentVia         string   `json:"sentVia"`
	WebSockets      int      `json:"websockets"`
	PollingRequests int      `json:"pollingRequests"`
	SocketHosts     []string `json:"socketHosts"`
	Lines           []string `json:"lines"`
	Mine            []int    `json:"mine"`
	Input           string   `json:"input"`
	Scroll          struct {
		Top    float64 `json:"top"`
		Client float64 `json:"client"`
		Height float64 `json:"height"`
	} `json:"scroll"`
	ImgInLog       int      `json:"imgInLog"`
	HostileFetches int      `json:"hostileFetches"`
	Dialogs        []string `json:"dialogs"`
	PageErrors     []string `json:"pageErrors"`
}

const (
	browserTabs  = 4
	browserLines = 20 // 4 tabs x (first line + 4 rounds)
	hostileText  = "<img src=x onerror=alert(1)>"
)

// The first line each tab sends, in tab order (see browser.js).
var browserFirstLines = []string{"안녕하세요", "hello from tab 2", hostileText, "반가워요 😀 tab 4"}

var chatLineRe = regexp.MustCompile(`^\[(\d+)님의 말\] (.*)$`)

// TestBrowser opens the chat page in four headless Chromium contexts against
// a fresh chatserver per variant and checks what each tab shows: every line
// from every tab, in order, as text, with the box cleared and the log
// scrolled down, over the transport the variant asks for.
func TestBrowser(t *testing.T) {
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatalf("chromium is not installed at /usr/bin/chromium (make setup installs it): %v", err)
	}
	for _, mode := range []string{"mixed", "polling", "websocket"} {
		t.Run(mode, func(t *testing.T) {
			srv := testutil.Start(t, "chatserver")
			sum := runBrowser(t, srv, mode)
			checkBrowserSummary(t, sum, mode, srv.Addr)
		})
	}
	t.Run("legacy", func(t *testing.T) {
		// The legacy page hard-codes its server URL. Serve a copy and point
		// it at this server's port once the server has one.
		dir := t.TempDir()
		copyLegacyPage(t, dir, "")
		srv := testutil.Start(t, "chatserver", "-static", dir)
		_, port, ok := strings.Cut(srv.Addr, ":")
		if !ok {
			t.Fatalf("server address %q has no port", srv.Addr)
		}
		copyLegacyPage(t, dir, port)
		sum := runBrowser(t, srv, "legacy")
		checkBrowserSummary(t, sum, "legacy", srv.Addr)
	})
}

// copyLegacyPage copies testdata/legacy-page into dir, replacing the fixed
// port 3000 with port when port is not empty.
func copyLegacyPage(t *testing.T, dir, port string) {
	t.Helper()
	src := filepath.Join(testutil.RepoRoot(t), "testdata", "legacy-page")
	for _, name := range []string{"chatClient.html", "chatClient.js"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if port != "" && name == "chatClient.js" {
			const fixed = "'ws://127.0.0.1:3000'"
			if !bytes.Contains(b, []byte(fixed)) {
				t.Fatalf("legacy chatClient.js no longer connects to %s", fixed)
			}
			b = bytes.ReplaceAll(b, []byte(fixed), []byte("'ws://127.0.0.1:"+port+"'"))
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runBrowser runs the browser scenario against srv and decodes its summary.
// A failing scenario still prints its summary, so its failures are reported.
func runBrowser(t *testing.T, srv *testutil.Server, mode string) browserSummary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	shot := filepath.Join("artifacts", "browser-"+mode+".png")
	cmd := testutil.NodeCommand(ctx, t, "testdata/node/browser.js",
		"--url", srv.URL()+"/", "--mode", mode, "--screenshot", shot)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	runErr := cmd.Run()

	var sum browserSummary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("browser.js %s: no JSON summary (%v, run error %v)\nstdout:\n%s\nstderr:\n%s\nserver logs:\n%s",
			mode, err, runErr, stdout.String(), stderr.String(), srv.Logs())
	}
	if runErr != nil || !sum.OK {
		t.Fatalf("browser.js %s failed (%v):\n  %s\nstderr:\n%s\nserver logs:\n%s",
			mode, runErr, strings.Join(sum.Failures, "\n  "), stderr.String(), srv.Logs())
	}
	t.Logf("%s: scenario took %d ms; screenshot %s", mode, sum.DurationMs, sum.Screenshot)
	return sum
}

// checkBrowserSummary checks the DOM each tab reported, independently of the
// checks the script already made. addr is the server every tab must talk to.
func checkBrowserSummary(t *testing.T, sum browserSummary, mode, addr string) {
	t.Helper()
	if sum.Mode != mode {
		t.Fatalf("summary is for mode %q, want %q", sum.Mode, mode)
	}
	if len(sum.Tabs) != browserTabs {
		t.Fatalf("summary has %d tabs, want %d", len(sum.Tabs), browserTabs)
	}

	// A fresh server numbers clients from 0 in connection order, and the
	// tabs connect one after another.
	ids := make([]int, browserTabs)
	for i, tab := range sum.Tabs {
		if tab.ID == nil {
			t.Fatalf("tab %d: no id found", i)
		}
		if *tab.ID != i {
			t.Errorf("tab %d: clientID %d, want %d (connection order on a fresh server)", i, *tab.ID, i)
		}
		ids[i] = *tab.ID
	}

	want := sum.Tabs[0].Lines
	if len(want) != browserLines {
		t.Fatalf("tab 0 shows %d lines, want %d: %q", len(want), browserLines, want)
	}
	for k, line := range want {
		m := chatLineRe.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("line %d %q is not rendered as [<id>님의 말] <message>", k, line)
			continue
		}
		// Tabs take turns, so line k comes from tab k mod 4.
		if wantID := fmt.Sprint(ids[k%browserTabs]); m[1] != wantID {
			t.Errorf("line %d %q: sender %s, want %s", k, line, m[1], wantID)
		}
		if k < browserTabs && m[2] != browserFirstLines[k] {
			t.Errorf("line %d: message %q, want %q", k, m[2], browserFirstLines[k])
		}
	}

	for i, tab := range sum.Tabs {
		if strings.Join(tab.Lines, "\n") != strings.Join(want, "\n") {
			t.Errorf("tab %d shows %q, tab 0 shows %q", i, tab.Lines, want)
		}
		if tab.Input != "" {
			t.Errorf("tab %d: text box still holds %q", i, tab.Input)
		}
		if tab.Scroll.Height <= tab.Scroll.Client {
			t.Errorf("tab %d: log did not overflow (%v <= %v)", i, tab.Scroll.Height, tab.Scroll.Client)
		}
		if d := tab.Scroll.Top + tab.Scroll.Client - tab.Scroll.Height; d < -2 || d > 2 {
			t.Errorf("tab %d: log not at the bottom: top %v + client %v vs height %v", i, tab.Scroll.Top, tab.Scroll.Client, tab.Scroll.Height)
		}
		if tab.ImgInLog != 0 || tab.HostileFetches != 0 || len(tab.Dialogs) != 0 {
			t.Errorf("tab %d: hostile text became HTML: %d <img>, %d fetches of /x, dialogs %q", i, tab.ImgInLog, tab.HostileFetches, tab.Dialogs)
		}
		if len(tab.SocketHosts) != 1 || tab.SocketHosts[0] != addr {
			t.Errorf("tab %d: Socket.IO traffic went to %q, want only %s", i, tab.SocketHosts, addr)
		}
		if len(tab.PageErrors) != 0 {
			t.Errorf("tab %d: page errors %q", i, tab.PageErrors)
		}
		if mode != "legacy" {
			var own []int
			for k := i; k < browserLines; k += browserTabs {
				own = append(own, k)
			}
			if fmt.Sprint(tab.Mine) != fmt.Sprint(own) {
				t.Errorf("tab %d: lines marked as its own %v, want %v (from the serverReceiver ack)", i, tab.Mine, own)
			}
			if tab.PageState != "connected" {
				t.Errorf("tab %d: page shows state %q", i, tab.PageState)
			}
		}
		checkTransport(t, mode, tab)
	}

	checkPNG(t, sum.Screenshot)
}

// checkTransport checks that each tab used the transport its mode asks for,
// as seen by the page, by the client library and on the network.
func checkTransport(t *testing.T, mode string, tab browserTab) {
	t.Helper()
	if mode == "legacy" {
		if tab.Query != "" {
			t.Errorf("tab %d: legacy page opened with query %q", tab.Index, tab.Query)
		}
		return
	}
	query, want := "", "websocket" // the default starts on polling and upgrades
	switch {
	case mode == "polling", mode == "mixed" && tab.Index == 1:
		query, want = "?transport=polling", "polling"
	case mode == "websocket":
		query = "?transport=websocket"
	}
	if tab.Query != query {
		t.Errorf("tab %d: opened with query %q, want %q", tab.Index, tab.Query, query)
	}
	switch query {
	case "?transport=polling":
		if tab.WebSockets != 0 {
			t.Errorf("tab %d: opened %d WebSockets with polling forced", tab.Index, tab.WebSockets)
		}
	case "?transport=websocket":
		if tab.PollingRequests != 0 {
			t.Errorf("tab %d: made %d polling requests with WebSocket forced", tab.Index, tab.PollingRequests)
		}
	default:
		if tab.PollingRequests == 0 || tab.WebSockets != 1 {
			t.Errorf("tab %d: %d polling requests and %d WebSockets, want a poll then one upgrade", tab.Index, tab.PollingRequests, tab.WebSockets)
		}
	}
	if tab.SocketTransport != want || tab.PageTransport != want || tab.SentVia != want {
		t.Errorf("tab %d (%q): client on %q, page shows %q, line sent over %q; want %q",
			tab.Index, tab.Query, tab.SocketTransport, tab.PageTransport, tab.SentVia, want)
	}
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || len(b) < 1000 {
		t.Errorf("screenshot %s is not a plausible PNG (%d bytes)", path, len(b))
	}
}
