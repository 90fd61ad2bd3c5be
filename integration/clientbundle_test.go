package integration

// A chatserver built the way Go users build it, `go build ./cmd/chatserver`
// on a clean clone, has no client bundle: make bundle never ran. These
// tests build exactly that, from a copy of the files git would put in a
// clone (the bundle's files are ignored by git), and check that the binary
// says so and that -client-bundle makes it whole.

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"siogo/internal/testutil"
)

var (
	cleanBuildOnce sync.Once
	cleanBuildPath string
	cleanBuildErr  string
)

// cleanCloneBinary builds ./cmd/chatserver from a copy of the repository
// holding only what git tracks or would track, so without the bundle files
// make bundle copies in, and returns the binary's path.
func cleanCloneBinary(t *testing.T) string {
	t.Helper()
	cleanBuildOnce.Do(func() {
		root := testutil.RepoRoot(t)
		dir, err := os.MkdirTemp("", "siogo-clean-")
		if err != nil {
			cleanBuildErr = err.Error()
			return
		}
		ls := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
		ls.Dir = root
		out, err := ls.Output()
		if err != nil {
			cleanBuildErr = "git ls-files: " + err.Error()
			return
		}
		for name := range strings.SplitSeq(strings.TrimRight(string(out), "\x00"), "\x00") {
			if strings.HasPrefix(name, "node_modules/") {
				continue
			}
			src := filepath.Join(root, name)
			st, err := os.Lstat(src)
			if err != nil || !st.Mode().IsRegular() {
				continue // deleted in the work tree, or a link
			}
			b, err := os.ReadFile(src)
			if err == nil {
				err = os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
			}
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, name), b, 0o644)
			}
			if err != nil {
				cleanBuildErr = err.Error()
				return
			}
		}
		if entries, _ := os.ReadDir(filepath.Join(dir, "internal/clientbundle/dist")); len(entries) != 1 {
			cleanBuildErr = "the clean copy's internal/clientbundle/dist holds more than .keep"
			return
		}
		cleanBuildPath = filepath.Join(dir, "chatserver")
		build := exec.Command("go", "build", "-trimpath", "-o", cleanBuildPath, "./cmd/chatserver")
		build.Dir = dir
		build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
		if b, err := build.CombinedOutput(); err != nil {
			cleanBuildErr = "go build: " + err.Error() + "\n" + string(b)
		}
	})
	if cleanBuildErr != "" {
		t.Fatalf("building chatserver from a clean copy: %s", cleanBuildErr)
	}
	return cleanBuildPath
}

// bareServer is a chatserver process started from any binary.
type bareServer struct {
	url  string
	mu   sync.Mutex
	logs bytes.Buffer
	exit chan error
}

func (s *bareServer) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

var listeningRe = regexp.MustCompile(`msg=listening addr=(\S+)`)

// startBare runs bin with args on a port the kernel picks and waits for it
// to listen; a process that exits first is returned with its exit error.
func startBare(t *testing.T, bin string, env []string, args ...string) (*bareServer, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &bareServer{exit: make(chan error, 1)}
	addr := make(chan string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.mu.Lock()
			s.logs.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			if m := listeningRe.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	go func() {
		err := cmd.Wait()
		pw.Close()
		<-scanned // every line is in the logs once the exit is known
		s.exit <- err
	}()
	t.Cleanup(func() {
		cancel()
		<-s.exit
	})
	select {
	case a := <-addr:
		s.url = "http://" + a
		return s, nil
	case err := <-s.exit:
		s.exit <- err
		return s, err
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start in 30 s:\n%s", bin, s.Logs())
		return nil, nil
	}
}

func get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestClientBundleMissing: the clean build starts, says once and loudly
// that the bundle is missing and how to fix it, answers /readyz with 503
// and that reason while /healthz stays 200, and still serves Socket.IO.
func TestClientBundleMissing(t *testing.T) {
	srv, err := startBare(t, cleanCloneBinary(t), nil)
	if err != nil {
		t.Fatalf("clean build exited: %v\n%s", err, srv.Logs())
	}
	var warnings []string
	for line := range strings.SplitSeq(srv.Logs(), "\n") {
		if strings.Contains(line, "level=WARN") {
			warnings = append(warnings, line)
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "client bundle not embedded") || !strings.Contains(warnings[0], "make bundle") {
		t.Errorf("start-up warnings %q, want one naming the missing bundle and make bundle", warnings)
	}

	resp, body := get(t, srv.url+"/readyz")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "not ready: socket.io client bundle not embedded") {
		t.Errorf("/readyz: %d %q, want 503 naming the missing bundle", resp.StatusCode, body)
	}
	if resp, body := get(t, srv.url+"/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %d %q, want 200", resp.StatusCode, body)
	}
	resp, body = get(t, srv.url+"/socket.io/socket.io.js")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "make bundle") {
		t.Errorf("/socket.io/socket.io.js: %d %q, want 404 saying how to get it", resp.StatusCode, body)
	}
	if resp, body := get(t, srv.url+"/socket.io/?EIO=4&transport=polling"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, `0{"sid"`) {
		t.Errorf("handshake: %d %q", resp.StatusCode, body)
	}

	// The usual build, with make bundle, is ready.
	full := testutil.Start(t, "chatserver")
	if resp, body := get(t, full.URL()+"/readyz"); resp.StatusCode != http.StatusOK || body != "ready\n" {
		t.Errorf("/readyz of the bundled build: %d %q (make bundle must run before the tests)", resp.StatusCode, body)
	}
	if strings.Contains(full.Logs(), "level=WARN") {
		t.Errorf("the bundled build warned:\n%s", full.Logs())
	}
}

// TestClientBundleDir: the clean build with -client-bundle (or
// CHAT_CLIENT_BUNDLE) pointing at the installed socket.io-client serves its
// files byte for byte, is ready, and does not warn; a directory without the
// bundle stops it at start.
func TestClientBundleDir(t *testing.T) {
	bin := cleanCloneBinary(t)
	dist := filepath.Join(testutil.NodeModules(t), "socket.io-client", "dist")
	for _, c := range []struct {
		name string
		env  []string
		args []string
	}{
		{"flag", nil, []string{"-client-bundle", dist}},
		{"environment", []string{"CHAT_CLIENT_BUNDLE=" + dist}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, err := startBare(t, bin, c.env, c.args...)
			if err != nil {
				t.Fatalf("exited: %v\n%s", err, srv.Logs())
			}
			if strings.Contains(srv.Logs(), "level=WARN") {
				t.Errorf("warned with a bundle directory:\n%s", srv.Logs())
			}
			if resp, body := get(t, srv.url+"/readyz"); resp.StatusCode != http.StatusOK || body != "ready\n" {
				t.Errorf("/readyz: %d %q, want 200 ready", resp.StatusCode, body)
			}
			for _, name := range []string{"socket.io.js", "socket.io.min.js", "socket.io.js.map"} {
				want, err := os.ReadFile(filepath.Join(dist, name))
				if err != nil {
					t.Fatal(err)
				}
				resp, body := get(t, srv.url+"/socket.io/"+name)
				if resp.StatusCode != http.StatusOK || body != string(want) {
					t.Errorf("/socket.io/%s: %d, %d bytes, want 200 and the %d bytes of %s", name, resp.StatusCode, len(body), len(want), name)
				}
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/") {
					t.Errorf("/socket.io/%s: Content-Type %q", name, ct)
				}
			}
		})
	}
	t.Run("no bundle in the directory", func(t *testing.T) {
		empty := t.TempDir()
		srv, err := startBare(t, bin, nil, "-client-bundle", empty)
		if err == nil {
			t.Fatalf("started with an empty -client-bundle directory:\n%s", srv.Logs())
		}
		if !strings.Contains(srv.Logs(), "no socket.io.js in "+empty) {
			t.Errorf("exit message does not name the problem:\n%s", srv.Logs())
		}
	})
}
