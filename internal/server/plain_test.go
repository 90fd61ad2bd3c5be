package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"siogo/internal/testutil"
)

// TestPlainPathChecked: a plain WebSocket path must be a path, and not one
// of the server's own.
func TestPlainPathChecked(t *testing.T) {
	for _, path := range []string{"demo", "/", "/socket.io", "/socket.io/", "/socket.io/x", "/healthz", "/readyz", "/metrics"} {
		if _, err := New(Config{PlainPath: path}); err == nil {
			t.Errorf("PlainPath %q accepted", path)
		}
	}
	for _, path := range []string{"", "/demo", "/chat/plain", "/{x}", "/GET x"} {
		if _, err := New(Config{PlainPath: path}); err != nil {
			t.Errorf("PlainPath %q: %v", path, err)
		}
	}
}

// TestPlainConnectionCap: plain connections and Engine.IO sessions share the
// node's connection limit, and the plain path is matched exactly, whatever
// it holds.
func TestPlainConnectionCap(t *testing.T) {
	cs := startServer(t, Config{PlainPath: "/GET {x}", Limits: Limits{MaxConnections: 2}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	plainURL := "ws://" + cs.addr + "/GET%20%7Bx%7D"
	handshake := func() int {
		resp, err := http.Get(cs.eio + "?EIO=4&transport=polling")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	first, err := testutil.DialPlain(ctx, plainURL, nil)
	if err != nil {
		t.Fatalf("first plain client: %v", err)
	}
	defer first.Close()
	if status := handshake(); status != http.StatusOK {
		t.Fatalf("Engine.IO handshake with one plain client connected: %d", status)
	}
	// Two connections: the limit.
	_, err = testutil.DialPlain(ctx, plainURL, nil)
	var se ws.StatusError
	if !errors.As(err, &se) || int(se) != http.StatusServiceUnavailable {
		t.Errorf("plain client over the limit: %v, want 503", err)
	}
	if status := handshake(); status != http.StatusServiceUnavailable {
		t.Errorf("Engine.IO handshake over the limit: %d, want 503", status)
	}

	// The first client is still in the chat.
	if err := first.Send("still here"); err != nil {
		t.Fatal(err)
	}
	_, line, err := first.Next(ctx)
	if err != nil || !strings.Contains(string(line), `"message":"still here"`) {
		t.Errorf("line %q, %v", line, err)
	}
}
