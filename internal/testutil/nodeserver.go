package testutil

import (
	"bufio"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// StartNodeServer runs a Node.js server script that prints "listening PORT"
// once it serves on 127.0.0.1, and returns its base URL. The server is
// interrupted when the test ends; its stderr is reported if it exits early.
func StartNodeServer(t testing.TB, script string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := NodeCommand(ctx, t, script, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var stderr strings.Builder
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return stderr.Write(p)
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				select {
				case port <- p:
				default:
				}
			}
		}
	}()
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
		cancel()
		<-exited
	})
	select {
	case p := <-port:
		return "http://127.0.0.1:" + p
	case <-exited:
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("testutil: %s exited: %s", script, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("testutil: %s did not start in 30s", script)
	}
	return ""
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
