package socketio

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"siogo/engineio"
)

// Connection-state recovery, as socket.io 4.6 defines it: the CONNECT reply
// carries a private session id (pid), every broadcast a recoverable socket
// receives carries its offset in the broker's log as its last argument, and
// a client that comes back with {pid, offset} in its CONNECT auth gets its
// socket back (id, rooms, data) with every broadcast it missed, in order,
// before anything new.
//
// Beyond the reference, a socket's session is stored when it connects and
// again when its rooms change, and its owner refreshes it while it lives,
// so that the session survives the death of its node.

// Recovery configures connection-state recovery.
type Recovery struct {
	// MaxDisconnectionDuration is how long a disconnected socket can be
	// recovered; zero turns recovery off.
	MaxDisconnectionDuration time.Duration
	// SkipMiddlewares connects a recovered socket without running the
	// namespace's middlewares again.
	SkipMiddlewares bool
}

func (r Recovery) enabled() bool { return r.MaxDisconnectionDuration > 0 }

// Recovery outcomes, as Observer.Recovery reports them.
const (
	RecoverySucceeded     = "succeeded"
	RecoveryUnknownPID    = "unknown pid"
	RecoveryExpired       = "expired"
	RecoveryOffsetTooOld  = "offset too old"
	RecoveryBrokerFailure = "broker failure"
)

// recoverableReasons are the disconnections a client comes back from:
// the connection was lost, not ended by either side.
var recoverableReasons = []string{
	"transport close",
	"transport error",
	"ping timeout",
	"server shutting down",
	"forced close",
	"poll connection closed prematurely",
	"data request connection closed prematurely",
	"send queue full",
	"replaced by a recovered connection",
}

// newPID returns a private session id.
func newPID() string {
	var b [15]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// recoveryAuth reads pid and offset from a CONNECT payload.
func recoveryAuth(auth json.RawMessage) (pid, offset string, ok bool) {
	var a struct {
		PID    *string `json:"pid"`
		Offset *string `json:"offset"`
	}
	if json.Unmarshal(auth, &a) != nil || a.PID == nil || a.Offset == nil || *a.PID == "" {
		return "", "", false
	}
	return *a.PID, *a.Offset, true
}

// withOffset returns frames whose event carries offset as its last
// argument.
func withOffset(data json.RawMessage, attachments [][]byte, nsp, offset string) []engineio.Message {
	data = bytes.TrimRight(data, " \t\r\n")
	quoted, _ := json.Marshal(offset)
	out := make([]byte, 0, len(data)+len(quoted)+1)
	out = append(out, data[:len(data)-1]...)
	if len(data) > 2 {
		out = append(out, ',')
	}
	out = append(out, quoted...)
	out = append(out, ']')
	return (&packet{Type: packetEvent, Namespace: nsp, Data: out, Attachments: attachments}).Frames()
}

// reaches reports whether a broadcast selected by opts reaches a socket in
// rooms, as the reference decides which logged packets a session missed.
func reaches(opts BroadcastOptions, rooms []Room) bool {
	included := len(opts.Rooms) == 0
	for _, r := range rooms {
		if slices.Contains(opts.Except, r) {
			return false
		}
		if !included && slices.Contains(opts.Rooms, r) {
			included = true
		}
	}
	return included
}

// missed is a broadcast replayed to a recovering socket.
type missed struct {
	b      *Broadcast
	offset string
}

// replay reads what a session missed since offset: the broadcasts of the
// namespace that reach the session's rooms, and the offset of the last
// entry read (offset itself when there was none).
func (n *Namespace) replay(ctx context.Context, offset string, rooms []Room) ([]missed, string, error) {
	var out []missed
	last := offset
	err := n.srv.durable.Replay(ctx, n.name, offset, func(b *Broadcast, off string) error {
		if reaches(b.Opts, rooms) {
			out = append(out, missed{b, off})
		}
		last = off
		return nil
	})
	return out, last, err
}

// restore brings a recovered socket up to date: the broadcasts it missed
// since offset (first, read before the socket was registered), then those
// logged meanwhile, then those that reached it while it was being
// restored, each once and in order. The socket buffers what it is delivered
// from its registration on, so nothing falls between the log and the live
// broadcasts. A node may read the log ahead of its own deliveries (the
// Streams broker reads Redis on one connection and replays from another),
// so what reaches the socket later with an offset it has had already is
// dropped too (see Socket.floor).
func (n *Namespace) restore(s *Socket, first []missed, last string) {
	ctx, cancel := context.WithTimeout(context.Background(), n.srv.opts.RequestTimeout)
	defer cancel()
	second, end, err := n.replay(ctx, last, s.Rooms())
	if err != nil {
		n.srv.log.Warn("socketio: cannot read the rest of a recovered socket's log", "nsp", n.name, "sid", s.id, "err", err)
		end = last
	}
	sent := 0
	floor := ""
	for _, m := range append(first, second...) {
		if floor != "" && !offsetAfter(m.offset, floor) {
			continue
		}
		floor = m.offset
		sent++
		s.client.conn.Send(withOffset(m.b.Data, m.b.Attachments, n.name, m.offset)...)
	}
	if floor == "" || offsetAfter(end, floor) {
		floor = end
	}
	s.mu.Lock()
	for _, p := range s.pending {
		if p.offset != "" && !offsetAfter(p.offset, floor) {
			continue
		}
		s.client.conn.Send(p.frames...)
	}
	s.pending = nil
	if floor != "" {
		s.floor.Store(&floor)
	}
	s.replaying.Store(false)
	s.mu.Unlock()
	n.srv.opts.Observer.Replayed(sent)
}

// offsetAfter reports whether offset a comes after b in a log. Offsets are
// "<int>-<int>", as Redis stream ids are, ordered by the first number, then
// the second; an offset of another form comes after anything.
func offsetAfter(a, b string) bool {
	am, as, ok1 := splitOffset(a)
	bm, bs, ok2 := splitOffset(b)
	if !ok1 || !ok2 {
		return true
	}
	return am > bm || am == bm && as > bs
}

func splitOffset(o string) (uint64, uint64, bool) {
	ms, seq, ok := strings.Cut(o, "-")
	if !ok {
		return 0, 0, false
	}
	m, err1 := strconv.ParseUint(ms, 10, 64)
	n, err2 := strconv.ParseUint(seq, 10, 64)
	return m, n, err1 == nil && err2 == nil
}

// pendingDelivery is a broadcast that reached a socket while it was being
// restored.
type pendingDelivery struct {
	frames []engineio.Message
	offset string
}

// sessionKeeper stores the sessions of recoverable sockets in the broker:
// when they connect and when their rooms change, at refresh intervals while
// they live, and when they disconnect. Writes go out in order, in batches,
// from one goroutine, so connecting never waits for the broker. With a
// broker whose sessions live in this process (MemoryBroker), a live
// socket's session would die with the node anyway: only what a socket
// leaves when it disconnects is stored.
type sessionKeeper struct {
	srv    *Server
	broker DurableBroker
	window time.Duration
	local  bool // the broker's sessions die with the node

	mu     sync.Mutex
	live   map[*Socket]struct{}
	queue  []keeperOp
	wake   chan struct{}
	closed bool
	done   chan struct{}
	// queued counts the operations ever queued, written those written;
	// writes wakes who waits for written to catch up.
	queued, written uint64
	writes          chan struct{}
}

// keeperOp saves a session, or drops it when drop is set.
type keeperOp struct {
	s    *Socket // save its current state
	snap *SavedSession
	drop string
}

func newSessionKeeper(srv *Server, b DurableBroker, window time.Duration) *sessionKeeper {
	k := &sessionKeeper{
		srv:    srv,
		broker: b,
		window: window,
		local:  isLocal(b),
		live:   make(map[*Socket]struct{}),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		writes: make(chan struct{}),
	}
	go k.run()
	return k
}

func (k *sessionKeeper) push(op keeperOp) {
	k.mu.Lock()
	if !k.closed {
		k.queue = append(k.queue, op)
		k.queued++
	}
	k.mu.Unlock()
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// localSessions is implemented by brokers whose sessions live in this
// process.
type localSessions interface{ sessionsInProcess() }

func isLocal(b DurableBroker) bool {
	_, ok := b.(localSessions)
	return ok
}

// connected starts keeping a socket's session.
func (k *sessionKeeper) connected(s *Socket) {
	if k.local {
		return
	}
	k.mu.Lock()
	k.live[s] = struct{}{}
	k.mu.Unlock()
	k.push(keeperOp{s: s})
}

// changed saves a socket's session again, its rooms or data having changed.
func (k *sessionKeeper) changed(s *Socket) {
	k.mu.Lock()
	_, ok := k.live[s]
	k.mu.Unlock()
	if ok {
		k.push(keeperOp{s: s})
	}
}

// disconnected stores a socket's last state, rooms taken before it left
// them, or drops its session when the client is not coming back.
func (k *sessionKeeper) disconnected(s *Socket, rooms []Room, reason string) {
	k.mu.Lock()
	delete(k.live, s)
	k.mu.Unlock()
	if slices.Contains(recoverableReasons, reason) {
		k.push(keeperOp{snap: s.snapshot(rooms, time.Now().Add(k.window))})
		return
	}
	k.push(keeperOp{drop: s.pid})
}

// refreshFraction says how often the sessions of live sockets are stored
// again: refreshFraction times per recovery window.
const refreshFraction = 3

func (k *sessionKeeper) run() {
	defer close(k.done)
	refresh := time.NewTicker(k.window / refreshFraction)
	defer refresh.Stop()
	if k.local {
		refresh.Stop() // there are no live sessions to refresh
	}
	for {
		select {
		case <-k.wake:
		case <-refresh.C:
			k.mu.Lock()
			for s := range k.live {
				k.queue = append(k.queue, keeperOp{s: s})
			}
			k.mu.Unlock()
		}
		if !k.drain() {
			return
		}
	}
}

// drain writes what is queued; it reports false once the keeper is closed
// and empty.
func (k *sessionKeeper) drain() bool {
	for {
		k.mu.Lock()
		ops := k.queue
		k.queue = nil
		closed := k.closed
		upTo := k.queued
		if len(ops) == 0 {
			k.mu.Unlock()
			return !closed
		}
		k.mu.Unlock()
		k.write(ops)
		k.mu.Lock()
		k.written = upTo
		close(k.writes)
		k.writes = make(chan struct{})
		k.mu.Unlock()
	}
}

// sync waits until what was queued before it is written, so that a client
// coming back to this node finds the session its socket left.
func (k *sessionKeeper) sync(ctx context.Context) {
	k.mu.Lock()
	target := k.queued
	for k.written < target && !k.closed {
		writes := k.writes
		k.mu.Unlock()
		select {
		case <-writes:
		case <-ctx.Done():
			return
		}
		k.mu.Lock()
	}
	k.mu.Unlock()
}

// maxSessionBatch bounds the sessions of one write.
const maxSessionBatch = 512

// write sends ops to the broker, in order, saving runs of saves in one
// batch.
func (k *sessionKeeper) write(ops []keeperOp) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	expires := time.Now().Add(k.window)
	var saves []*SavedSession
	var drops []string
	flush := func() {
		if len(saves) > 0 {
			if err := k.broker.SaveSessions(ctx, saves); err != nil {
				k.srv.log.Warn("socketio: cannot store sessions", "count", len(saves), "err", err)
			}
			saves = saves[:0]
		}
		if len(drops) > 0 {
			if err := k.broker.DropSessions(ctx, drops); err != nil {
				k.srv.log.Warn("socketio: cannot drop sessions", "count", len(drops), "err", err)
			}
			drops = drops[:0]
		}
	}
	for _, op := range ops {
		switch {
		case op.drop != "":
			if len(saves) > 0 {
				flush()
			}
			drops = append(drops, op.drop)
		case op.snap != nil:
			if len(drops) > 0 {
				flush()
			}
			saves = append(saves, op.snap)
		default:
			if !op.s.Connected() {
				continue // its last state is queued by disconnected
			}
			if len(drops) > 0 {
				flush()
			}
			saves = append(saves, op.s.snapshot(op.s.Rooms(), expires))
		}
		if len(saves)+len(drops) >= maxSessionBatch {
			flush()
		}
	}
	flush()
}

// close writes what is still queued, waiting until ctx ends at most.
func (k *sessionKeeper) close(ctx context.Context) {
	k.mu.Lock()
	k.closed = true
	k.mu.Unlock()
	select {
	case k.wake <- struct{}{}:
	default:
	}
	select {
	case <-k.done:
	case <-ctx.Done():
	}
}

// snapshot is the socket's session as it stands.
func (s *Socket) snapshot(rooms []Room, expires time.Time) *SavedSession {
	data := json.RawMessage("{}")
	if v := s.Data(); v != nil {
		if b, err := json.Marshal(v); err == nil {
			data = b
		}
	}
	return &SavedSession{PID: s.pid, SID: s.id, Rooms: rooms, Data: data, Expires: expires}
}

// tryRecover takes the session pid names and reads what it missed since
// offset. It returns nil when the session cannot be recovered, and says
// why to the observer.
func (n *Namespace) tryRecover(pid, offset string) (*SavedSession, []missed, string) {
	ctx, cancel := context.WithTimeout(context.Background(), n.srv.opts.RequestTimeout)
	defer cancel()
	obs := n.srv.opts.Observer
	n.srv.keeper.sync(ctx)
	session, err := n.srv.durable.TakeSession(ctx, pid)
	if err != nil {
		obs.Recovery(recoverErr(err))
		return nil, nil, ""
	}
	first, last, err := n.replay(ctx, offset, session.Rooms)
	if err != nil {
		obs.Recovery(recoverErr(err))
		return nil, nil, ""
	}
	obs.Recovery(RecoverySucceeded)
	return session, first, last
}

// recoverErr says why a session could not be recovered.
func recoverErr(err error) string {
	switch {
	case errors.Is(err, ErrSessionUnknown):
		return RecoveryUnknownPID
	case errors.Is(err, ErrSessionExpired):
		return RecoveryExpired
	case errors.Is(err, ErrOffsetUnknown):
		return RecoveryOffsetTooOld
	}
	return RecoveryBrokerFailure
}
