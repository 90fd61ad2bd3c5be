package eioclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"siogo/internal/eioparser"
)

// pollingClient is a chat client past its handshake, posting to u.
func pollingClient(t *testing.T, protocol int, hc *http.Client, u string) *ChatClient {
	c := &ChatClient{opts: ChatOptions{Protocol: protocol, Transport: "polling"}, hc: hc, pollURL: u,
		acks: map[int64]func(int64){}, done: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	t.Cleanup(c.cancel)
	return c
}

// TestPollingPostsCarryEveryPacketOnce sends packets from several goroutines
// while POSTs are in flight and checks that the server decodes every packet
// exactly once: the batch being filled and the body being posted must never
// share memory.
func TestPollingPostsCarryEveryPacketOnce(t *testing.T) {
	for _, eio := range []int{3, 4} {
		t.Run(fmt.Sprintf("eio%d", eio), func(t *testing.T) {
			const senders, perSender = 4, 500
			var (
				mu   sync.Mutex
				seen = map[string]int{}
				done = make(chan struct{})
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				body, err := io.ReadAll(req.Body)
				if err != nil || req.Method != http.MethodPost {
					http.Error(w, "bad request", http.StatusBadRequest)
					return
				}
				var pkts []eioparser.Packet
				if eio == 3 {
					pkts, err = eioparser.DecodePayloadV3Text(body)
				} else {
					pkts, err = eioparser.DecodePayloadV4(body)
				}
				if err != nil {
					t.Errorf("undecodable POST body %q: %v", body, err)
					http.Error(w, "bad payload", http.StatusBadRequest)
					return
				}
				mu.Lock()
				for _, p := range pkts {
					seen[p.Type.String()+string(p.Data)]++
				}
				if len(seen) == senders*perSender {
					select {
					case <-done:
					default:
						close(done)
					}
				}
				mu.Unlock()
				io.WriteString(w, "ok")
			}))
			defer srv.Close()
			c := pollingClient(t, eio, srv.Client(), srv.URL)

			var wg sync.WaitGroup
			for s := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var pkt []byte
					for i := range perSender {
						// Varying lengths, and characters outside ASCII for the
						// UTF-16 length prefix of Engine.IO 3; the buffer is
						// reused, as the load generator does.
						pkt = fmt.Appendf(pkt[:0], `42["serverReceiver","%d.%d.€😀%s"]`, s, i, make([]byte, i%7))
						if err := c.SendPacket(pkt); err != nil {
							t.Errorf("send: %v", err)
							return
						}
					}
				}()
			}
			wg.Wait()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				mu.Lock()
				t.Fatalf("server decoded %d distinct packets, want %d", len(seen), senders*perSender)
			}
			mu.Lock()
			defer mu.Unlock()
			for pkt, n := range seen {
				if n != 1 {
					t.Errorf("packet %q arrived %d times", pkt, n)
				}
			}
		})
	}
}

// roundTripFunc lets a test act at the exact moment a POST is in flight.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestPollingSendDuringPostLeavesBodyIntact queues packets while a POST is
// in flight, before the transport reads its body. Each body must hold
// exactly what was queued before it was taken.
func TestPollingSendDuringPostLeavesBodyIntact(t *testing.T) {
	var (
		c      *ChatClient
		bodies = make(chan string, 10)
		during = map[int][]string{ // packets to queue while POST n is in flight
			0: {"4second", "4third"},
			1: {"4fourth"},
		}
		posts int
	)
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		for _, pkt := range during[posts] {
			if err := c.SendPacket([]byte(pkt)); err != nil {
				t.Errorf("send: %v", err)
			}
		}
		posts++
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		bodies <- string(b)
		return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader("ok"))}, nil
	})}
	c = pollingClient(t, 4, hc, "http://127.0.0.1:1/")
	// Later packets are shorter than the first body, so a buffer shared by
	// mistake would be overwritten in place rather than reallocated.
	if err := c.SendPacket([]byte("4the-first-packet-is-the-longest")); err != nil {
		t.Fatal(err)
	}
	want := []string{"4the-first-packet-is-the-longest", "4second\x1e4third", "4fourth"}
	for i, w := range want {
		select {
		case got := <-bodies:
			if got != w {
				t.Fatalf("POST %d carried %q, want %q", i, got, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("POST %d never came", i)
		}
	}
}
