package cluster

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"time"
)

// A long poll forwarded to the owner depends on the node that forwarded it.
// The Engine.IO server closes a session whose pending poll loses its
// connection (for a direct client, that means the client left). For a
// forwarded poll it may only mean that the node in the middle died or was
// drained, and the balancer is already retrying the poll elsewhere. So the
// owner runs a forwarded poll detached from its connection, holds its answer,
// and gives it to the next poll of the same session, whichever way that one
// arrives. A poll nobody claims is dropped after handoffGrace; its session,
// if the client is really gone, ends by the heartbeat.

// handoffGrace is how long the answer of an abandoned poll waits for the
// client's next poll. The balancer retries at once, so a few seconds are
// plenty.
const handoffGrace = 10 * time.Second

type heldPoll struct {
	done chan struct{} // closed when the engine has answered into resp
	resp bufferedResponse
	// waiter is closed when a newer poll takes over; guarded by Node.mu.
	waiter chan struct{}
	// abandoned is set once the waiter's connection went away; guarded
	// by Node.mu.
	abandoned bool
}

// serveLocalPoll serves a polling GET for one of this node's sessions.
func (n *Node) serveLocalPoll(next http.Handler, w http.ResponseWriter, r *http.Request, sid string) {
	n.mu.Lock()
	if hp := n.held[sid]; hp != nil {
		// The client polls again while its previous poll is still held:
		// that poll's carrier went away. Take its answer over.
		prev, mine := hp.waiter, make(chan struct{})
		hp.waiter = mine
		hp.abandoned = false
		n.mu.Unlock()
		close(prev)
		n.obs.PollHandedOff()
		n.log.Debug("cluster: poll taken over", "sid", sid)
		n.awaitPoll(w, r, sid, hp, mine)
		return
	}
	if r.Header.Get(HeaderForwardedBy) == "" {
		n.mu.Unlock()
		next.ServeHTTP(w, r)
		return
	}
	mine := make(chan struct{})
	hp := &heldPoll{done: make(chan struct{}), waiter: mine}
	n.held[sid] = hp
	n.mu.Unlock()
	detached := r.WithContext(context.WithoutCancel(r.Context()))
	go func() {
		defer close(hp.done)
		next.ServeHTTP(&hp.resp, detached)
	}()
	n.awaitPoll(w, r, sid, hp, mine)
}

// awaitPoll answers r with the held poll's answer once it is ready, unless a
// newer poll takes over first or r's connection goes away.
func (n *Node) awaitPoll(w http.ResponseWriter, r *http.Request, sid string, hp *heldPoll, mine chan struct{}) {
	select {
	case <-hp.done:
	case <-mine:
		writeNoop(w, r)
		return
	case <-r.Context().Done():
		n.abandon(sid, hp, mine)
		return
	}
	n.mu.Lock()
	if hp.waiter != mine {
		// Taken over just as the answer came: the newer poll gets it.
		n.mu.Unlock()
		writeNoop(w, r)
		return
	}
	if n.held[sid] == hp {
		delete(n.held, sid)
	}
	n.mu.Unlock()
	hp.resp.writeTo(w)
}

// abandon keeps an unanswered poll for the client's next poll, and forgets
// it handoffGrace after the engine answered if nobody claimed it.
func (n *Node) abandon(sid string, hp *heldPoll, mine chan struct{}) {
	n.mu.Lock()
	if hp.waiter == mine {
		hp.abandoned = true
	}
	n.mu.Unlock()
	go func() {
		select {
		case <-hp.done:
		case <-mine:
			return
		}
		t := time.NewTimer(handoffGrace)
		defer t.Stop()
		select {
		case <-t.C:
		case <-mine:
			return
		}
		n.mu.Lock()
		if n.held[sid] == hp && hp.waiter == mine {
			delete(n.held, sid)
			n.log.Debug("cluster: dropped an unclaimed poll", "sid", sid)
		}
		n.mu.Unlock()
	}()
}

// writeNoop answers a poll that lost its answer to a newer one with a noop
// packet, which clients ignore. Clients never poll twice at once, so this
// only happens when a balancer gave up on a poll that was still running.
func writeNoop(w http.ResponseWriter, r *http.Request) {
	body := "6"
	if r.URL.Query().Get("EIO") == "3" {
		body = "1:6"
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(body))
}

// bufferedResponse records what the engine answers to a held poll.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header {
	if b.header == nil {
		b.header = make(http.Header)
	}
	return b.header
}

func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

func (b *bufferedResponse) writeTo(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range b.header {
		h[k] = v
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	w.Write(b.body.Bytes())
}
