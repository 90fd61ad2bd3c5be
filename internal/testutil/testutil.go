package testutil

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"siogo/internal/proc"
)

// RepoRoot returns the directory holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testutil: go.mod not found above the working directory")
		}
		dir = parent
	}
}

var (
	buildMu  sync.Mutex
	built    = map[string]string{}
	buildDir string
)

// Binary builds ./cmd/<name>, or for "examples/<name>" the program of the
// examples module, once per test process (with -race when the test binary
// itself runs under the race detector) and returns its path.
func Binary(t testing.TB, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[name]; ok {
		return p
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "siogo-bin-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	out := filepath.Join(buildDir, strings.ReplaceAll(name, "/", "-"))
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	dir, pkg := RepoRoot(t), "./cmd/"+name
	if example, ok := strings.CutPrefix(name, "examples/"); ok {
		dir, pkg = filepath.Join(dir, "examples"), "./"+example
	}
	args = append(args, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testutil: go build %s: %v\n%s", name, err, b)
	}
	built[name] = out
	return out
}

// Server is a running instance of one of the project's commands. Addr,
// Cmd, URL, Logs, Done and Kill come from proc.Process.
type Server struct {
	*proc.Process
}

// Start runs the program Binary builds for name with args plus "-addr 127.0.0.1:0" (unless args
// already hold -addr), waits for its "msg=listening addr=..." log line, and
// stops it with SIGTERM (then SIGKILL) when the test ends.
func Start(t testing.TB, name string, args ...string) *Server {
	t.Helper()
	return StartWrapped(t, nil, name, args...)
}

// StartWrapped is Start with the program run through wrapper, a command
// that execs it (e.g. prlimit with its options and "--").
func StartWrapped(t testing.TB, wrapper []string, name string, args ...string) *Server {
	t.Helper()
	bin := Binary(t, name)
	hasAddr := false
	for _, a := range args {
		if a == "-addr" || strings.HasPrefix(a, "-addr=") {
			hasAddr = true
		}
	}
	if !hasAddr {
		args = append([]string{"-addr", "127.0.0.1:0"}, args...)
	}
	argv := append(append(append([]string{}, wrapper...), bin), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = RepoRoot(t)
	p, err := proc.Start(context.Background(), cmd, proc.Options{})
	if err != nil {
		t.Fatalf("testutil: %s: %v", name, err)
	}
	s := &Server{p}
	t.Cleanup(func() { s.Stop(t) })
	return s
}

// Stop sends SIGTERM, waits up to 10 s, then kills. It is safe to call twice.
func (s *Server) Stop(t testing.TB) { s.Process.Stop() }

// NodeModules returns the repository's node_modules directory, failing the
// test with the set-up command when it is missing.
func NodeModules(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(RepoRoot(t), "node_modules")
	if _, err := os.Stat(filepath.Join(dir, "socket.io-client")); err != nil {
		t.Fatalf("testutil: %s is missing; run `make setup` (make test does it)", dir)
	}
	return dir
}

// Node runs `node script args...` from the repository root with NODE_PATH set
// to node_modules, and returns its stdout. A non-zero exit fails the test with
// both streams.
func Node(ctx context.Context, t testing.TB, script string, args ...string) []byte {
	t.Helper()
	cmd := NodeCommand(ctx, t, script, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("testutil: node %s %s: %v\nstdout:\n%s\nstderr:\n%s", script, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.Bytes()
}

// NodeCommand prepares `node script args...` without running it.
func NodeCommand(ctx context.Context, t testing.TB, script string, args ...string) *exec.Cmd {
	t.Helper()
	nm := NodeModules(t)
	cmd := exec.CommandContext(ctx, "node", append([]string{script}, args...)...)
	cmd.Dir = RepoRoot(t)
	cmd.Env = append(os.Environ(), "NODE_PATH="+nm)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Eventually polls cond every 20 ms until it holds or the timeout passes.
// It is for waiting on external processes that offer no event to wait on.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("testutil: timed out after %v: %s", timeout, fmt.Sprintf(format, args...))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
