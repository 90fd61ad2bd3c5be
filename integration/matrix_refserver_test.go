package integration

import (
	"bufio"
	"context"
	"io"
	"regexp"
	"testing"
	"time"

	"siogo/internal/testutil"
)

var refListening = regexp.MustCompile(`msg=listening addr=(\S+)`)

// startRefServer runs testdata/node/refserver.js on a kernel-chosen port
// and returns its base URL; the process ends with the test.
func startRefServer(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := testutil.NodeCommand(ctx, t, "testdata/node/refserver.js", append([]string{"0"}, args...)...)
	stdout, pw := io.Pipe()
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		t.Fatalf("start refserver: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		pw.Close()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := refListening.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
				break
			}
		}
		// Keep draining so the server never blocks on a full pipe.
		for sc.Scan() {
		}
	}()
	select {
	case a := <-addr:
		return "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("refserver did not report its address in 30s")
		return ""
	}
}
