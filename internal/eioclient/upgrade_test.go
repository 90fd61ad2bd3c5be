package eioclient_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"siogo/internal/eioclient"
	"siogo/internal/scrape"
	"siogo/internal/server"
	"siogo/internal/testutil"
)

// TestUpgrade moves polling clients of both protocol revisions to
// WebSocket on the real chat server: a line said while the client's polling
// is paused, and one the client itself says then, reach everyone once and
// in order, the client ends on WebSocket, and it closes as a WebSocket
// client does.
func TestUpgrade(t *testing.T) {
	for _, protocol := range []int{3, 4} {
		t.Run(fmt.Sprintf("EIO%d", protocol), func(t *testing.T) {
			base, _ := startNode(t, server.Config{})
			a := join(t, base, protocol, "polling")
			b := join(t, base, 4, "websocket")
			a.say(t, "before")
			a.expect(t, "before")
			b.expect(t, "before")

			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			err := a.c.Upgrade(ctx, func() {
				if got := a.c.Transport(); got != "polling" {
					t.Errorf("transport %q while paused, want polling", got)
				}
				b.say(t, "during")
				if err := a.c.Send("held"); err != nil {
					t.Error(err)
				}
				b.expect(t, "during")
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := a.c.Transport(); got != "websocket" || a.c.Conn() == nil {
				t.Fatalf("transport %q after the upgrade (connection %v), want websocket", got, a.c.Conn())
			}
			a.expect(t, "during", "held")
			b.expect(t, "held")
			a.say(t, "after")
			a.expect(t, "after")
			b.expect(t, "after")
			if err := a.c.Upgrade(ctx, nil); err == nil {
				t.Error("a second upgrade succeeded")
			}

			m, err := scrape.Fetch(ctx, base)
			if err != nil {
				t.Fatal(err)
			}
			if n := m.Sum("siogo_upgrades_total"); n != 1 {
				t.Errorf("the server counts %v upgrades, want 1", n)
			}
			// A close frame: the server's answer may end the session
			// before Close itself does.
			a.c.Close()
			if err := a.c.Err(); !errors.Is(err, eioclient.ErrChatClosedByClient) && !errors.Is(err, eioclient.ErrChatClosedByServer) {
				t.Errorf("closed with %v", err)
			}
			testutil.Eventually(t, waitTimeout, func() bool { return connected(t, base) == 1 }, "the server to see the upgraded client go")
		})
	}
}
