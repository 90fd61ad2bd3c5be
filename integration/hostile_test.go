package integration

// Hostile input against the real chatserver binary, with its default limits:
// misbehaving clients at every protocol level keep arriving while real
// socket.io clients (4.x and 2.x) chat through it, and a -static page
// directory is probed for ways out. The binary must close each bad session,
// deliver every chat line, never serve what lies outside the page, and
// never crash.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"siogo/internal/testutil"
)

const hostileMaxPayload = 10000

// hostilePageDir is a page directory with a secret beside it and ways out
// of it.
func hostilePageDir(t *testing.T) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "page")
	outside = filepath.Join(base, "outside")
	for name, content := range map[string]string{
		"page/chatClient.html": "<html>the chat page</html>",
		"page/.env":            "SECRET=" + secretMarker,
		"page/.git/config":     secretMarker,
		"page/sub/notes.txt":   "notes",
		"outside/secret.txt":   secretMarker,
	} {
		p := filepath.Join(base, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{
		"page/escape":   "../outside/secret.txt",
		"page/escape2":  filepath.Join(outside, "secret.txt"),
		"page/outdir":   outside,
		"page/sub/back": "../../outside",
	} {
		if err := os.Symlink(target, filepath.Join(base, name)); err != nil {
			t.Fatal(err)
		}
	}
	return root, outside
}

const secretMarker = "TOP-SECRET-MARKER"

// rawRequest sends one request line as it is (no client-side cleaning).
func rawRequest(t *testing.T, addr, target string) (int, string, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, addr)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

func TestBinaryUnderHostileTraffic(t *testing.T) {
	testutil.NodeModules(t)
	root, outside := hostilePageDir(t)
	srv := testutil.Start(t, "chatserver", "-static", root, "-max-payload", fmt.Sprint(hostileMaxPayload), "-log-level", "debug")
	endpoint := srv.URL() + "/socket.io/"

	// Misbehaving clients arrive one every 25 ms, below the default
	// handshake rate per address (100/s), which the real clients share.
	cases := testutil.HostileCases(hostileMaxPayload)
	var failures []string
	hostileDone := make(chan struct{})
	go func() {
		defer close(hostileDone)
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for _, hc := range cases {
			<-tick.C
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := hc.Run(ctx, endpoint); err != nil {
				failures = append(failures, fmt.Sprintf("%s: %v", hc.Name, err))
			}
			cancel()
		}
	}()

	// Real clients chat in rounds until every misbehaving client has run.
	servers := matrixServers{chat: srv.URL(), conformance: srv.URL()}
	rounds := 0
	for done := false; !done; rounds++ {
		select {
		case <-hostileDone:
			done = true
		default:
		}
		t.Run(fmt.Sprintf("round %d", rounds), func(t *testing.T) {
			checkBurst(t, runMatrix(t, servers, matrixRun{scenario: "burst", gens: []int{4}, modes: []string{"default"}}))
			checkChat(t, runMatrix(t, servers, matrixRun{scenario: "chat", gens: []int{4, 2}, modes: []string{"websocket", "polling"}}))
			checkBurst(t, runMatrix(t, servers, matrixRun{scenario: "burst", gens: []int{2}, modes: []string{"default"}}))
		})
	}
	for _, f := range failures {
		t.Errorf("hostile client %s", f)
	}
	t.Logf("%d misbehaving clients ran during %d rounds of chat", len(cases), rounds)

	t.Run("static", func(t *testing.T) {
		for _, target := range []string{
			"/../outside/secret.txt", "/%2e%2e/outside/secret.txt", "/..%2f..%2foutside%2fsecret.txt",
			"/sub/../../outside/secret.txt", filepath.Join(outside, "secret.txt"), "/" + filepath.Join(outside, "secret.txt"),
			"/escape", "/escape2", "/outdir/secret.txt", "/sub/back/secret.txt",
			"/.env", "/.git/config", "/socket.io/../.env", "/sub/", "/sub",
		} {
			status, loc, body := rawRequest(t, srv.Addr, target)
			if status == http.StatusTemporaryRedirect || status == http.StatusMovedPermanently {
				status, _, body = rawRequest(t, srv.Addr, loc)
			}
			if status < 400 || strings.Contains(body, secretMarker) || strings.Contains(body, "notes.txt") {
				t.Errorf("GET %s: %d %q, want a 4xx and nothing from outside the page", target, status, body)
			}
		}
		if status, _, body := rawRequest(t, srv.Addr, "/"); status != 200 || !strings.Contains(body, "the chat page") {
			t.Errorf("GET /: %d %q", status, body)
		}
	})

	select {
	case <-srv.Done():
		t.Fatalf("the server exited:\n%s", srv.Logs())
	default:
	}
	if logs := srv.Logs(); strings.Contains(logs, "panic") || strings.Contains(logs, "DATA RACE") {
		t.Errorf("the server logged a panic or a race:\n%s", logs)
	}
}
