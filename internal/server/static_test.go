package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// secret marks every file a request must never reach.
const secret = "TOP-SECRET-MARKER"

// pageDir builds a page directory next to things it must not expose:
// dotfiles inside it, a directory outside it, and symlinks that lead out.
func pageDir(t *testing.T) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "page")
	outside = filepath.Join(base, "outside")
	files := map[string]string{
		"page/chatClient.html":  "<html>the chat page</html>",
		"page/chatClient.js":    "console.log('chat')",
		"page/sub/notes.txt":    "public notes",
		"page/sub/.hidden":      secret,
		"page/.env":             secret,
		"page/.git/config":      secret,
		"outside/secret.txt":    secret,
		"outside/chatClient.js": secret,
	}
	for name, content := range files {
		p := filepath.Join(base, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"page/escape":     "../outside/secret.txt",              // relative, out
		"page/escape-abs": filepath.Join(outside, "secret.txt"), // absolute, out
		"page/escdir":     outside,                              // a directory out
		"page/sub/up":     "../../outside",                      // nested, out
		"page/alias.js":   "chatClient.js",                      // stays inside
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(base, name)); err != nil {
			t.Fatal(err)
		}
	}
	return root, outside
}

// rawGet sends a request line exactly as given, with no client-side path
// cleaning, and returns the status, Location and body.
func rawGet(t *testing.T, addr, method, target string) (int, string, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", method, target, addr)
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, target, err)
	}
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// TestStaticHostilePaths: every way out of the page directory, into its
// dotfiles, or into a listing is refused with a clear status, and nothing
// secret is ever served, while the page itself still is.
func TestStaticHostilePaths(t *testing.T) {
	root, outside := pageDir(t)
	s := startServer(t, Config{StaticDir: root})

	for _, c := range []struct {
		target string
		status int
		body   string // expected substring of the body, for 200s
	}{
		{"/", 200, "the chat page"},
		{"/chatClient.html", 200, "the chat page"},
		{"/chatClient.js", 200, "console.log"},
		{"/sub/notes.txt", 200, "public notes"},
		{"/alias.js", 200, "console.log"}, // a symlink that stays inside is fine
	} {
		status, _, body := rawGet(t, s.addr, "GET", c.target)
		if status != c.status || !strings.Contains(body, c.body) {
			t.Errorf("GET %s: %d %q, want %d with %q", c.target, status, body, c.status, c.body)
		}
	}

	for _, c := range []struct {
		name     string
		target   string
		status   int
		location string // for redirects: where the cleaned path points
	}{
		// Parent segments. The router answers a path that is not clean
		// with a redirect to its clean form, which lies inside the page
		// directory and is not found there.
		{"dot-dot", "/../outside/secret.txt", 307, "/outside/secret.txt"},
		{"dot-dot below a directory", "/sub/../../outside/secret.txt", 307, "/outside/secret.txt"},
		{"dot-dot in absolute form", "http://example/../outside/secret.txt", 307, "/outside/secret.txt"},
		{"dot-dot under the socket.io path", "/socket.io/../.env", 307, "/.env"},
		{"dot segment", "/./.env", 307, "/.env"},
		{"encoded dot-dot", "/%2e%2e/outside/secret.txt", 404, ""},
		{"encoded dot-dot and slashes", "/..%2f..%2foutside%2fsecret.txt", 404, ""},
		{"double-encoded dot-dot", "/%252e%252e/outside/secret.txt", 404, ""},
		{"backslashes", "/..\\outside\\secret.txt", 404, ""},
		{"relative request target", "../outside/secret.txt", 400, ""},
		// Absolute paths name nothing inside the page directory.
		{"absolute path", filepath.Join(outside, "secret.txt"), 404, ""},
		{"absolute path, doubled slash", "/" + filepath.Join(outside, "secret.txt"), 307, filepath.Join(outside, "secret.txt")},
		{"absolute path to a file that exists inside too", filepath.Join(outside, "chatClient.js"), 404, ""},
		// Symlinks out of the directory.
		{"relative symlink out", "/escape", 404, ""},
		{"absolute symlink out", "/escape-abs", 404, ""},
		{"symlinked directory out", "/escdir/secret.txt", 404, ""},
		{"nested symlink out", "/sub/up/secret.txt", 404, ""},
		// Dotfiles.
		{"dotfile", "/.env", 404, ""},
		{"dot directory", "/.git/config", 404, ""},
		{"dot directory itself", "/.git/", 404, ""},
		{"nested dotfile", "/sub/.hidden", 404, ""},
		{"encoded dot", "/%2eenv", 404, ""},
		// No listings.
		{"directory", "/sub/", 404, ""},
		{"directory without slash", "/sub", 404, ""},
		// Odd bytes.
		{"NUL byte", "/chatClient.html%00.txt", 404, ""},
		{"not a path", "*", 400, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, loc, body := rawGet(t, s.addr, "GET", c.target)
			if strings.Contains(body, secret) {
				t.Fatalf("GET %s leaked a secret: %d %q", c.target, status, body)
			}
			if status != c.status || loc != c.location {
				t.Fatalf("GET %s: %d (Location %q), want %d (Location %q)", c.target, status, loc, c.status, c.location)
			}
			if strings.Contains(body, "notes.txt") {
				t.Errorf("GET %s lists the directory: %q", c.target, body)
			}
			if status == http.StatusTemporaryRedirect {
				// Following the redirect leads nowhere either.
				status, _, body = rawGet(t, s.addr, "GET", loc)
				if status != http.StatusNotFound || strings.Contains(body, secret) {
					t.Errorf("GET %s (redirected from %s): %d %q, want 404", loc, c.target, status, body)
				}
			}
		})
	}

	// Only reading methods.
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		if status, _, _ := rawGet(t, s.addr, m, "/chatClient.html"); status != http.StatusMethodNotAllowed {
			t.Errorf("%s /chatClient.html: %d, want 405", m, status)
		}
	}
	if status, _, body := rawGet(t, s.addr, "HEAD", "/"); status != 200 || body != "" {
		t.Errorf("HEAD /: %d %q, want 200 with no body", status, body)
	}
	// After all that, the page still serves.
	if status, _, body := rawGet(t, s.addr, "GET", "/"); status != 200 || !strings.Contains(body, "the chat page") {
		t.Errorf("GET / at the end: %d %q", status, body)
	}
}

// TestStaticDirRequiresPage: a page directory without chatClient.html or
// index.html, or one that does not exist, is refused at start-up rather
// than served as an empty site.
func TestStaticDirRequiresPage(t *testing.T) {
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "other.html"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{StaticDir: empty}); err == nil {
		t.Error("a directory without a page was accepted")
	}
	if _, err := New(Config{StaticDir: filepath.Join(empty, "missing")}); err == nil {
		t.Error("a missing directory was accepted")
	}
	// index.html is the fallback page.
	idx := t.TempDir()
	if err := os.WriteFile(filepath.Join(idx, "index.html"), []byte("index page"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, Config{StaticDir: idx})
	if status, _, body := rawGet(t, s.addr, "GET", "/"); status != 200 || body != "index page" {
		t.Errorf("GET / with index.html: %d %q", status, body)
	}
}
