package main

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
)

// TestPollingPostsCarryEveryPacketOnce sends packets from several goroutines
// while POSTs are in flight and checks that the server side decodes every
// packet exactly once: the send buffer and the body being posted must never
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
				var pkts []string
				if err := splitPayload(eio, body, func(p []byte) { pkts = append(pkts, string(p)) }); err != nil {
					t.Errorf("undecodable POST body %q: %v", body, err)
					http.Error(w, "bad payload", http.StatusBadRequest)
					return
				}
				mu.Lock()
				for _, p := range pkts {
					seen[p]++
				}
				if len(seen) == senders*perSender {
					select {
					case <-done:
					default:
						close(done)
					}
				}
				mu.Unlock()
				_, _ = io.WriteString(w, "ok")
			}))
			defer srv.Close()

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c := &client{r: &run{cfg: &config{eio: eio}}}
			p := &pollConn{c: c, hc: srv.Client(), url: srv.URL, ctx: ctx, stop: cancel, wake: make(chan struct{}, 1)}
			c.t = p
			go p.writeLoop()

			var wg sync.WaitGroup
			for s := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range perSender {
						// Varying lengths, and characters outside ASCII for the
						// UTF-16 length prefix of Engine.IO 3.
						pkt := fmt.Sprintf(`42["serverReceiver","%d.%d.€😀%s"]`, s, i, make([]byte, i%7))
						if err := p.send([]byte(pkt)); err != nil {
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

// TestPollingSendDuringPostLeavesBodyIntact queues a packet while each POST
// is in flight, before the transport reads the body, including after a
// wake-up that found nothing to post. Each body must hold exactly what was
// queued before it was taken.
func TestPollingSendDuringPostLeavesBodyIntact(t *testing.T) {
	var (
		bodies []string
		p      *pollConn
		during []string // packets to queue while the next POST is in flight
	)
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		for _, pkt := range during {
			if err := p.send([]byte(pkt)); err != nil {
				t.Errorf("send: %v", err)
			}
		}
		during = nil
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		bodies = append(bodies, string(b))
		return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader("ok"))}, nil
	})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &client{r: &run{cfg: &config{eio: 4}}}
	p = &pollConn{c: c, hc: hc, url: "http://127.0.0.1:1/", ctx: ctx, stop: cancel, wake: make(chan struct{}, 1)}
	c.t = p

	step := func(queue []string, inFlight []string) {
		t.Helper()
		for _, pkt := range queue {
			if err := p.send([]byte(pkt)); err != nil {
				t.Fatal(err)
			}
		}
		during = inFlight
		if err := p.flush(); err != nil {
			t.Fatal(err)
		}
	}
	// Later packets are shorter than the first body, so a buffer shared by
	// mistake would be overwritten in place rather than reallocated.
	step([]string{"4the-first-packet-is-the-longest"}, nil)
	step(nil, nil) // nothing queued: no POST
	step([]string{"4second"}, []string{"4third"})
	step(nil, []string{"4fourth"})
	step(nil, nil)
	want := []string{"4the-first-packet-is-the-longest", "4second", "4third", "4fourth"}
	if strings.Join(bodies, "|") != strings.Join(want, "|") {
		t.Fatalf("POST bodies %q, want %q", bodies, want)
	}
}
