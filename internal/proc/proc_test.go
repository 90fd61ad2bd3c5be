package proc

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// shell runs a POSIX shell script as the program under test.
func shell(script string) *exec.Cmd { return exec.Command("sh", "-c", script) }

func TestStartAndStop(t *testing.T) {
	p, err := Start(context.Background(), shell(`
		trap 'echo stopping; exit 0' TERM
		echo starting >&2
		echo 'time=x level=INFO msg=listening addr=127.0.0.1:4321'
		while :; do sleep 0.05; done`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Addr != "127.0.0.1:4321" || p.URL() != "http://127.0.0.1:4321" {
		t.Fatalf("Addr %q, URL %q", p.Addr, p.URL())
	}
	if p.Exited() {
		t.Fatal("Exited before Stop")
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if code := p.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d, want 0 after SIGTERM", code)
	}
	if logs := p.Logs(); !strings.Contains(logs, "starting\n") || !strings.HasSuffix(logs, "stopping\n") {
		t.Errorf("Logs = %q, want stderr and stdout up to the last line", logs)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestStopKillsWhatIgnoresSIGTERM(t *testing.T) {
	p, err := Start(context.Background(), shell(`
		trap '' TERM
		echo msg=listening addr=127.0.0.1:1
		while :; do sleep 0.05; done`), Options{Grace: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err == nil {
		t.Error("Stop reported no error for a program it had to kill")
	}
	if ws := p.Cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signal() != syscall.SIGKILL {
		t.Errorf("program ended with %v, want SIGKILL", p.Cmd.ProcessState)
	}
}

func TestStartFailures(t *testing.T) {
	_, err := Start(context.Background(), shell(`echo cannot bind >&2; exit 3`), Options{})
	if err == nil || !strings.Contains(err.Error(), "exited before listening") || !strings.Contains(err.Error(), "cannot bind") {
		t.Errorf("early exit: %v", err)
	}
	_, err = Start(context.Background(), shell(`echo still thinking; exec sleep 10`), Options{Wait: 200 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "did not report its address") || !strings.Contains(err.Error(), "still thinking") {
		t.Errorf("no listening line: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err = Start(ctx, shell(`exec sleep 10`), Options{}); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("cancelled context: %v", err)
	}
	if _, err = Start(context.Background(), exec.Command("/nonexistent/program"), Options{}); err == nil {
		t.Error("a missing program started")
	}
}

// TestGroupStopsChildren: a wrapper's child holds the output pipe; with
// Group it stops with the wrapper.
func TestGroupStopsChildren(t *testing.T) {
	p, err := Start(context.Background(), shell(`
		sleep 30 &
		echo child=$!
		echo msg=listening addr=127.0.0.1:1
		wait`), Options{Group: true, Grace: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, after, _ := strings.Cut(p.Logs(), "child=")
	child, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(after, "\n", 2)[0]))
	if err != nil {
		t.Fatalf("no child pid in %q", p.Logs())
	}
	start := time.Now()
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("Stop took %v: the child kept the pipe open", d)
	}
	if err := syscall.Kill(child, 0); err == nil {
		// The child may linger a moment as a zombie before init reaps it;
		// its state then says so.
		if !isZombie(child) {
			t.Errorf("child %d still running after Stop", child)
		}
	}
}

func isZombie(pid int) bool {
	b, err := exec.Command("ps", "-o", "stat=", "-p", strconv.Itoa(pid)).Output()
	return err != nil || strings.HasPrefix(strings.TrimSpace(string(b)), "Z")
}

func TestKeep(t *testing.T) {
	p, err := Start(context.Background(), shell(`
		for i in 1 2 3 4 5 6 7 8 9; do echo line$i; done
		echo msg=listening addr=127.0.0.1:1
		exec sleep 30`), Options{Keep: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	if got := p.Logs(); got != "line8\nline9\nmsg=listening addr=127.0.0.1:1\n" {
		t.Errorf("Logs = %q, want the last 3 lines", got)
	}
	if got := p.Tail(1); got != "msg=listening addr=127.0.0.1:1\n" {
		t.Errorf("Tail(1) = %q", got)
	}
}

func TestStartRedis(t *testing.T) {
	p, err := StartRedis(context.Background(), RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if !strings.HasPrefix(p.RedisURL(), "redis://127.0.0.1:") {
		t.Errorf("RedisURL %q", p.RedisURL())
	}
	conn, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, 7)
	if _, err := io.ReadFull(conn, reply); err != nil || string(reply) != "+PONG\r\n" {
		t.Fatalf("PING answered %q, %v", reply, err)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
}

func TestWaitOK(t *testing.T) {
	var ready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || !ready.Load() {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready")
	}))
	defer srv.Close()
	p, err := Start(context.Background(), shell(`
		echo 'msg=listening addr=`+strings.TrimPrefix(srv.URL, "http://")+`'
		while :; do sleep 0.05; done`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if err := p.WaitOK(context.Background(), "/readyz", 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("WaitOK on a 503: %v", err)
	}
	time.AfterFunc(200*time.Millisecond, func() { ready.Store(true) })
	if err := p.WaitOK(context.Background(), "/readyz", 10*time.Second); err != nil {
		t.Fatal(err)
	}
}
