package testutil

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Redis is a redis-server process started for one test, without
// persistence, on a loopback port of its own.
type Redis struct {
	Port int

	t   testing.TB
	dir string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logs bytes.Buffer
}

// StartRedis starts redis-server on a free loopback port and stops it when
// the test ends. The port is found by listening on port 0 and closing; if
// another process takes it before redis-server binds, a new port is tried.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("testutil: redis-server is not installed; run `make setup` (make test does it)")
	}
	r := &Redis{t: t, dir: t.TempDir()}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		if lastErr = r.start(port); lastErr == nil {
			t.Cleanup(r.Kill)
			return r
		}
	}
	t.Fatalf("testutil: cannot start redis-server: %v", lastErr)
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// start runs redis-server on port and waits until it accepts connections.
func (r *Redis) start(port int) error {
	cmd := exec.Command("redis-server",
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", r.dir,
		"--daemonize", "no",
		"--loglevel", "notice",
	)
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	ready := make(chan struct{})
	r.mu.Lock()
	r.cmd, r.done, r.Port = cmd, done, port
	r.logs.Reset()
	r.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			r.mu.Lock()
			r.logs.WriteString(line)
			r.logs.WriteByte('\n')
			r.mu.Unlock()
			if !signalled && strings.Contains(line, "Ready to accept connections") {
				signalled = true
				close(ready)
			}
		}
		io.Copy(io.Discard, pr)
	}()
	go func() {
		cmd.Wait()
		pw.Close()
		close(done)
	}()
	select {
	case <-ready:
		return nil
	case <-done:
		return fmt.Errorf("redis-server on port %d exited:\n%s", port, r.Logs())
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("redis-server on port %d not ready after 15s:\n%s", port, r.Logs())
	}
}

// Addr returns host:port.
func (r *Redis) Addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port))
}

// URL returns the redis:// URL of database 0.
func (r *Redis) URL() string { return "redis://" + r.Addr() + "/0" }

// Logs returns what the current redis-server process logged.
func (r *Redis) Logs() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.logs.String()
}

// Kill ends redis-server at once with SIGKILL, as a crash would. It is safe
// to call when it is already stopped.
func (r *Redis) Kill() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	cmd.Process.Kill()
	<-done
}

// Restart kills redis-server and starts a new, empty one on the same port,
// retrying while the port is still held.
func (r *Redis) Restart() {
	r.t.Helper()
	r.Kill()
	r.StartAgain()
}

// StartAgain starts a new, empty redis-server on the port of the previous
// one, which must have been killed.
func (r *Redis) StartAgain() {
	r.t.Helper()
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = r.start(r.Port); err == nil {
			return
		}
		if !strings.Contains(err.Error(), "in use") {
			break
		}
		time.Sleep(100 * time.Millisecond) // the old socket is being torn down
	}
	r.t.Fatalf("testutil: cannot restart redis-server on port %d: %v", r.Port, err)
}
