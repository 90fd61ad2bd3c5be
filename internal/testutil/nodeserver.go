package testutil

import (
	"context"
	"testing"
	"time"

	"siogo/internal/proc"
)

// StartNodeServer runs a Node.js server script that prints
// "msg=listening addr=HOST:PORT" once it serves, and returns its base URL.
// The server is stopped with SIGTERM (then SIGKILL) when the test ends.
func StartNodeServer(t testing.TB, script string, args ...string) string {
	t.Helper()
	cmd := NodeCommand(context.Background(), t, script, args...)
	p, err := proc.Start(context.Background(), cmd, proc.Options{Grace: 5 * time.Second})
	if err != nil {
		t.Fatalf("testutil: %s: %v", script, err)
	}
	t.Cleanup(func() { p.Stop() })
	return p.URL()
}
