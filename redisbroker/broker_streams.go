package redisbroker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"

	"siogo/socketio"
)

// Streams is a socketio.DurableBroker on Redis Streams, wire-compatible with
// the Node.js Redis Streams adapter (@socket.io/redis-streams-adapter 0.3):
// broadcasts and room changes are entries of one stream ("socket.io"),
// whose entry ids are the offsets of connection-state recovery; requests
// that need answers, and the answers, go over publish/subscribe; sessions
// are stored under "sio:session:<pid>".
//
// Every node reads the stream from where it stopped, so a node that was
// away, or a Redis that restarted, loses nothing of what reached the
// stream. Each node hands its own broadcasts to its sockets when it reads
// them back, so that every node delivers in stream order. While Redis is
// unreachable a node delivers its own broadcasts at once and keeps them,
// bounded, to add to the stream in order when Redis is back; after Redis
// restarted without its data, a node adds its last few seconds of entries
// again, which nodes that had read them skip.
type Streams struct {
	c   *Client
	cfg StreamsConfig
	log *slog.Logger
	uid string
	h   socketio.BrokerHandler

	pub *publisher  // ephemeral messages and answers
	sub *subscriber // their channels

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.RWMutex
	nsps map[string]bool

	// The writer's queue: entries waiting for the stream, oldest first,
	// at most cfg.BufferSize of them.
	wmu      sync.Mutex
	seq      uint64
	queue    []*streamEntry
	recent   []*streamEntry // added in the last cfg.RepublishWindow
	wake     chan struct{}
	flushed  chan struct{} // closed when the queue is empty after closing
	closing  bool
	writerUp bool

	// Delivery of own broadcasts to this node's sockets, in order: they
	// come back from the reader, or from a publisher while Redis is away.
	// No lock is held while the handler runs, since what it runs may
	// publish in turn.
	dmu          sync.Mutex
	pending      map[uint64]*socketio.Broadcast // own, not yet delivered
	ownDelivered uint64
	ready        []ownDelivery     // own, to hand to the sockets next
	delivering   bool              // a goroutine is handing ready over
	lastSeq      map[string]uint64 // highest seq delivered, by node uid
	readerUp     bool

	runID string // of the Redis the reader last connected to

	reconnects atomic.Uint64
	dropped    atomic.Uint64
	malformed  atomic.Uint64
	depth      atomic.Int64
	dropLogMu  sync.Mutex
	dropLogged time.Time
}

// StreamsConfig configures a Streams broker. The zero value works.
type StreamsConfig struct {
	// Stream is the stream's key (default "socket.io", as in Node.js).
	Stream string
	// Key prefixes the channels of requests and answers (default
	// "socket.io").
	Key string
	// MaxLen bounds the stream, approximately (default 10000).
	MaxLen int
	// SessionKeyPrefix prefixes the keys of stored sessions (default
	// "sio:session:").
	SessionKeyPrefix string
	// BufferSize bounds the entries kept while Redis is unreachable; a
	// full buffer drops its oldest (default 16384).
	BufferSize int
	// RepublishWindow is how far back a node adds its entries again after
	// Redis restarted without its data (default 5s).
	RepublishWindow time.Duration
	Backoff
}

func (c *StreamsConfig) setDefaults() {
	if c.Stream == "" {
		c.Stream = "socket.io"
	}
	if c.Key == "" {
		c.Key = "socket.io"
	}
	if c.MaxLen <= 0 {
		c.MaxLen = 10000
	}
	if c.SessionKeyPrefix == "" {
		c.SessionKeyPrefix = "sio:session:"
	}
	if c.BufferSize <= 0 {
		c.BufferSize = 16384
	}
	if c.RepublishWindow <= 0 {
		c.RepublishWindow = 5 * time.Second
	}
	c.Backoff.setDefaults()
}

// Read sizes: entries per XREAD and per XRANGE of a replay, and how long an
// XREAD blocks.
const (
	readCount   = 256
	replayCount = 1000
	readBlock   = 5 * time.Second
	writeBatch  = 512
)

// NewStreams returns a broker on c. It starts when the Socket.IO server
// opens it.
func NewStreams(c *Client, cfg StreamsConfig) *Streams {
	cfg.setDefaults()
	var id [8]byte
	rand.Read(id[:])
	b := &Streams{
		c:       c,
		cfg:     cfg,
		log:     c.log,
		uid:     hex.EncodeToString(id[:]),
		nsps:    make(map[string]bool),
		wake:    make(chan struct{}, 1),
		flushed: make(chan struct{}),
		// Until a write fails, own broadcasts wait to be read back.
		writerUp: true,
		pending:  make(map[uint64]*socketio.Broadcast),
		lastSeq:  make(map[string]uint64),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.sub = newSubscriber(c, cfg.Backoff, b.dispatch)
	return b
}

// UID returns the node's id on the bus.
func (b *Streams) UID() string { return b.uid }

// Open implements socketio.Broker.
func (b *Streams) Open(h socketio.BrokerHandler) {
	b.h = h
	b.pub = newPublisher(b.c)
	b.wg.Add(3)
	go func() {
		defer b.wg.Done()
		b.sub.run(b.ctx, "streams "+b.uid)
	}()
	go func() {
		defer b.wg.Done()
		b.runReader()
	}()
	go func() {
		defer b.wg.Done()
		b.runWriter()
	}()
}

func (b *Streams) channel(nsp string) string { return b.cfg.Key + "#" + nsp + "#" }

// Subscribe implements socketio.Broker.
func (b *Streams) Subscribe(nsp string) error {
	b.mu.Lock()
	b.nsps[nsp] = true
	b.mu.Unlock()
	b.sub.add([]string{b.channel(nsp), b.channel(nsp) + b.uid + "#"}, nil)
	return nil
}

func (b *Streams) serves(nsp string) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.nsps[nsp]
}

// Publish implements socketio.Broker: the broadcast goes into the stream,
// and comes back to this node's sockets when the reader reads it, or at
// once while Redis is away.
func (b *Streams) Publish(bc *socketio.Broadcast) {
	b.enqueue(msgBroadcast, bc.Namespace, broadcastData(bc), bc.Attachments, bc)
}

// enqueue queues an entry for the stream. An own broadcast waits to be
// read back, unless Redis is away.
func (b *Streams) enqueue(typ int, nsp string, data []byte, attachments [][]byte, bc *socketio.Broadcast) {
	b.wmu.Lock()
	b.seq++
	seq := b.seq
	fields, err := entryFields(b.uid, nsp, typ, data, attachments, seq)
	if err != nil {
		b.wmu.Unlock()
		b.drop(1, err)
		return
	}
	e := &streamEntry{seq: seq, fields: fields, b: bc}
	if bc != nil {
		b.dmu.Lock()
		b.pending[seq] = bc
		b.dmu.Unlock()
	}
	if len(b.queue) >= b.cfg.BufferSize {
		b.queue[0] = nil
		b.queue = b.queue[1:]
		b.drop(1, errors.New("buffer full"))
	}
	b.queue = append(b.queue, e)
	b.depth.Store(int64(len(b.queue)))
	up := b.writerUp
	b.wmu.Unlock()
	if !up || !b.isReaderUp() {
		b.deliverPending()
	}
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// drop counts entries lost to a full buffer, logging at most once every
// few seconds.
func (b *Streams) drop(n int, err error) {
	total := b.dropped.Add(uint64(n))
	b.dropLogMu.Lock()
	defer b.dropLogMu.Unlock()
	if time.Since(b.dropLogged) >= 5*time.Second {
		b.dropLogged = time.Now()
		b.log.Warn("redisbroker: dropping the oldest messages kept for the stream", "err", err, "dropped_total", total)
	}
}

func (b *Streams) isReaderUp() bool {
	b.dmu.Lock()
	defer b.dmu.Unlock()
	return b.readerUp
}

// deliverPending hands this node's broadcasts that wait for the stream to
// its sockets at once, in order, without offsets: Redis is away, and local
// clients must not wait for it.
func (b *Streams) deliverPending() {
	b.dmu.Lock()
	for len(b.pending) > 0 {
		next := b.ownDelivered + 1
		bc, ok := b.pending[next]
		b.ownDelivered = next
		if !ok {
			continue // not a broadcast, or dropped
		}
		delete(b.pending, next)
		b.ready = append(b.ready, ownDelivery{bc, ""})
	}
	b.deliverReadyLocked()
}

// ownDelivery is an own broadcast on its way to this node's sockets, with
// its stream entry's id ("" when it never reached the stream).
type ownDelivery struct {
	bc *socketio.Broadcast
	id string
}

// deliverReadyLocked hands the ready broadcasts to the sockets, in order,
// and unlocks b.dmu. One goroutine does this at a time: a caller that
// finds another at work leaves its broadcasts to it and returns, so a
// handler that publishes does not wait for itself.
func (b *Streams) deliverReadyLocked() {
	if b.delivering {
		b.dmu.Unlock()
		return
	}
	b.delivering = true
	for len(b.ready) > 0 {
		batch := b.ready
		b.ready = nil
		b.dmu.Unlock()
		for _, d := range batch {
			b.h.HandleBroadcast(d.bc, d.id)
		}
		b.dmu.Lock()
	}
	b.delivering = false
	b.dmu.Unlock()
}

// runWriter adds queued entries to the stream, pipelining what has piled
// up, and keeps them while Redis is away.
func (b *Streams) runWriter() {
	backoff := b.cfg.MinBackoff
	for {
		b.wmu.Lock()
		batch := b.queue[:min(len(b.queue), writeBatch)]
		closing := b.closing
		if len(batch) == 0 && closing {
			close(b.flushed)
			b.wmu.Unlock()
			return
		}
		b.wmu.Unlock()
		if len(batch) == 0 {
			select {
			case <-b.wake:
			case <-b.ctx.Done():
				return
			}
			continue
		}
		done, err := b.xadd(batch)
		b.wmu.Lock()
		// The queue may have dropped its oldest meanwhile: take off what
		// was written, if it is still at the head.
		now := time.Now()
		for i := 0; i < done && len(b.queue) > 0 && b.queue[0] == batch[i]; i++ {
			b.queue[0].at = now
			b.recent = append(b.recent, b.queue[0])
			b.queue[0] = nil
			b.queue = b.queue[1:]
		}
		b.trimRecentLocked(now)
		b.depth.Store(int64(len(b.queue)))
		wasUp := b.writerUp
		b.writerUp = err == nil
		b.wmu.Unlock()
		if err == nil {
			backoff = b.cfg.MinBackoff
			if !wasUp {
				b.log.Info("redisbroker: adding to the stream again", "broker", "streams "+b.uid)
			}
			continue
		}
		if wasUp {
			b.log.Warn("redisbroker: cannot add to the stream; keeping messages until Redis is back", "err", err)
		}
		b.deliverPending()
		if b.ctx.Err() != nil {
			return
		}
		if !sleep(b.ctx, jitter(backoff)) {
			return
		}
		backoff = min(2*backoff, b.cfg.MaxBackoff)
	}
}

func (b *Streams) trimRecentLocked(now time.Time) {
	i := 0
	for i < len(b.recent) && now.Sub(b.recent[i].at) > b.cfg.RepublishWindow {
		b.recent[i] = nil
		i++
	}
	b.recent = b.recent[i:]
}

// xadd writes entries in one round trip and returns how many were added.
func (b *Streams) xadd(batch []*streamEntry) (int, error) {
	maxLen := strconv.Itoa(b.cfg.MaxLen)
	return b.c.pipeline(b.ctx, len(batch), func(conn redis.Conn, i int) error {
		args := append([]any{b.cfg.Stream, "MAXLEN", "~", maxLen, "*"}, batch[i].fields...)
		return conn.Send("XADD", args...)
	}, func(err error) { b.drop(1, err) }) // refused, e.g. a wrong type at the key
}

// republish adds the entries of the last moments again, after Redis came
// back without its data: nodes that had read them skip them by their seq.
func (b *Streams) republish() {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.trimRecentLocked(time.Now())
	if len(b.recent) == 0 {
		return
	}
	b.log.Info("redisbroker: Redis restarted; adding the last entries again", "entries", len(b.recent))
	b.queue = append(append([]*streamEntry{}, b.recent...), b.queue...)
	b.recent = nil
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// runReader reads the stream from where it stopped, reconnecting whenever
// Redis goes away.
func (b *Streams) runReader() {
	backoff := b.cfg.MinBackoff
	last := ""
	everUp := false
	for b.ctx.Err() == nil {
		err := b.readOnce(&last, func() {
			backoff = b.cfg.MinBackoff
			if everUp {
				b.reconnects.Add(1)
				b.log.Info("redisbroker: stream reader reconnected", "broker", "streams "+b.uid, "reconnects", b.reconnects.Load())
				b.c.reconnected()
			}
			everUp = true
		})
		b.setReaderUp(false)
		if b.ctx.Err() != nil {
			return
		}
		b.c.lost()
		b.deliverPending()
		wait := jitter(backoff)
		b.log.Warn("redisbroker: stream reader lost Redis; reconnecting", "err", err, "retry_in", wait.Round(time.Millisecond))
		if !sleep(b.ctx, wait) {
			return
		}
		backoff = min(2*backoff, b.cfg.MaxBackoff)
	}
}

func (b *Streams) setReaderUp(up bool) {
	b.dmu.Lock()
	b.readerUp = up
	b.dmu.Unlock()
}

// readOnce runs one reader connection until it fails.
func (b *Streams) readOnce(last *string, onUp func()) error {
	conn, err := b.c.dialWaiting(b.ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-b.ctx.Done():
			conn.Close()
		case <-stop:
		}
	}()
	info, err := redis.String(conn.Do("INFO", "server"))
	if err != nil {
		return err
	}
	runID := infoField(info, "run_id")
	switch {
	case *last == "":
		// First start: from the end of the stream as it is now, so that
		// this node's own entries, all later, come back.
		*last, err = lastEntryID(conn, b.cfg.Stream)
		if err != nil {
			return err
		}
	case b.runID != "" && runID != b.runID:
		// Redis restarted without the stream: read the new one from
		// its start, and add what the others may have missed again.
		*last = "0-0"
		b.republish()
	}
	b.runID = runID
	b.setReaderUp(true)
	onUp()
	for {
		reply, err := redis.Values(redis.DoWithTimeout(conn, readBlock+ioTimeout, "XREAD", "BLOCK", readBlock.Milliseconds(), "COUNT", readCount, "STREAMS", b.cfg.Stream, *last))
		if errors.Is(err, redis.ErrNil) {
			continue
		}
		if err != nil {
			return err
		}
		entries, err := streamEntries(reply)
		if err != nil {
			return err
		}
		for _, raw := range entries {
			*last = raw.id
			b.handleEntry(raw.id, raw.fields)
		}
	}
}

// infoField reads one "name:value" line of an INFO reply.
func infoField(info, name string) string {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// lastEntryID returns the id of a stream's last entry, "0-0" for none.
func lastEntryID(conn redis.Conn, stream string) (string, error) {
	reply, err := redis.Values(conn.Do("XREVRANGE", stream, "+", "-", "COUNT", 1))
	if err != nil {
		return "", err
	}
	entries, err := rangeEntries(reply)
	if err != nil || len(entries) == 0 {
		return "0-0", err
	}
	return entries[0].id, nil
}

type rawEntry struct {
	id     string
	fields []string
}

// streamEntries reads an XREAD reply for one stream.
func streamEntries(reply []any) ([]rawEntry, error) {
	if len(reply) == 0 {
		return nil, nil
	}
	stream, err := redis.Values(reply[0], nil)
	if err != nil || len(stream) != 2 {
		return nil, fmt.Errorf("redisbroker: unexpected XREAD reply")
	}
	entries, err := redis.Values(stream[1], nil)
	if err != nil {
		return nil, err
	}
	return rangeEntries(entries)
}

// rangeEntries reads the entries of an XRANGE reply.
func rangeEntries(reply []any) ([]rawEntry, error) {
	out := make([]rawEntry, 0, len(reply))
	for _, r := range reply {
		parts, err := redis.Values(r, nil)
		if err != nil || len(parts) != 2 {
			return nil, fmt.Errorf("redisbroker: unexpected stream entry")
		}
		id, err := redis.String(parts[0], nil)
		if err != nil {
			return nil, err
		}
		fields, err := redis.Strings(parts[1], nil)
		if err != nil {
			return nil, err
		}
		out = append(out, rawEntry{id, fields})
	}
	return out, nil
}

// handleEntry delivers one entry read from the stream.
func (b *Streams) handleEntry(id string, fields []string) {
	e, err := parseEntry(id, fields)
	if err != nil {
		b.skip(id, err)
		return
	}
	if !b.serves(e.nsp) {
		return
	}
	b.dmu.Lock()
	if e.uid == b.uid {
		if e.seq <= b.ownDelivered {
			b.dmu.Unlock()
			return // delivered while Redis was away, or read twice
		}
		b.ownDelivered = e.seq
		if bc := b.pending[e.seq]; bc != nil {
			delete(b.pending, e.seq)
			b.ready = append(b.ready, ownDelivery{bc, id})
		}
		b.deliverReadyLocked()
		return
	}
	if e.seq > 0 {
		if e.seq <= b.lastSeq[e.uid] {
			b.dmu.Unlock()
			return // added again after a Redis restart
		}
		b.lastSeq[e.uid] = e.seq
	}
	b.dmu.Unlock()
	switch e.typ {
	case msgBroadcast:
		bc, err := e.broadcast()
		if err != nil {
			b.skip(id, err)
			return
		}
		b.h.HandleBroadcast(bc, id)
	case msgSocketsJoin, msgSocketsLeave, msgDisconnectSockets:
		m, err := e.request()
		if err != nil {
			b.skip(id, err)
			return
		}
		b.h.HandleRequest(m)
	}
}

func (b *Streams) skip(where string, err error) {
	b.malformed.Add(1)
	b.log.Warn("redisbroker: skipping message", "at", where, "err", err)
}

// Send implements socketio.Broker: socketsJoin, socketsLeave and
// disconnectSockets go into the stream; fetchSockets and server-side
// events over publish/subscribe. allRooms has no message in this protocol.
func (b *Streams) Send(m *socketio.NodeRequest) error {
	switch m.Type {
	case socketio.RequestSocketsJoin, socketio.RequestSocketsLeave, socketio.RequestDisconnectSockets:
		typ := map[socketio.RequestType]int{
			socketio.RequestSocketsJoin:       msgSocketsJoin,
			socketio.RequestSocketsLeave:      msgSocketsLeave,
			socketio.RequestDisconnectSockets: msgDisconnectSockets,
		}[m.Type]
		b.enqueue(typ, m.Namespace, selectionData(m), nil, nil)
		return nil
	case socketio.RequestAllRooms:
		return errors.New("redisbroker: the streams protocol has no allRooms request")
	}
	cm, err := ephemeral(b.uid, m)
	if err != nil {
		return err
	}
	payload, err := encodeClusterMessage(cm)
	if err != nil {
		return err
	}
	b.pub.publish(b.channel(m.Namespace), payload)
	return nil
}

// Reply implements socketio.Broker.
func (b *Streams) Reply(to string, r *socketio.NodeReply) error {
	cm, err := answer(b.uid, r)
	if err != nil {
		return err
	}
	payload, err := encodeClusterMessage(cm)
	if err != nil {
		return err
	}
	b.pub.publish(b.channel(r.Namespace)+to+"#", payload)
	return nil
}

// ServerCount implements socketio.Broker: the subscribers of the
// namespace's channel.
func (b *Streams) ServerCount(ctx context.Context, nsp string) (int, error) {
	return numSub(ctx, b.c, b.channel(nsp))
}

// dispatch handles a message of the namespace channels.
func (b *Streams) dispatch(msg redis.Message) {
	cm, err := decodeClusterMessage(msg.Data)
	if err != nil {
		b.skip(msg.Channel, err)
		return
	}
	if cm.UID == b.uid || !b.serves(cm.Nsp) {
		return
	}
	if strings.HasSuffix(msg.Channel, "#"+b.uid+"#") {
		r, err := cm.nodeReply()
		if err != nil {
			b.skip(msg.Channel, err)
			return
		}
		if r != nil {
			b.h.HandleReply(r)
		}
		return
	}
	m, err := cm.nodeRequest()
	if err != nil {
		b.skip(msg.Channel, err)
		return
	}
	if m != nil {
		b.h.HandleRequest(m)
	}
}

var offsetPattern = regexp.MustCompile(`^[0-9]+-[0-9]+$`)

// nextID returns the smallest entry id after id.
func nextID(id string) string {
	ms, seq, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseUint(seq, 10, 64)
	return ms + "-" + strconv.FormatUint(n+1, 10)
}

// Replay implements socketio.DurableBroker: the offset must still be in the
// stream; the broadcasts of nsp after it are read in chunks.
func (b *Streams) Replay(ctx context.Context, nsp, offset string, fn func(*socketio.Broadcast, string) error) error {
	if !offsetPattern.MatchString(offset) {
		return socketio.ErrOffsetUnknown
	}
	return b.c.do(ctx, func(conn redis.Conn) error {
		found, err := redis.Values(redis.DoContext(conn, ctx, "XRANGE", b.cfg.Stream, offset, offset))
		if err != nil {
			return err
		}
		if len(found) == 0 {
			return socketio.ErrOffsetUnknown
		}
		start := nextID(offset)
		// Entries keep coming while this reads: stop after a stream's
		// worth.
		for read := 0; read <= b.cfg.MaxLen; {
			reply, err := redis.Values(redis.DoContext(conn, ctx, "XRANGE", b.cfg.Stream, start, "+", "COUNT", replayCount))
			if err != nil {
				return err
			}
			entries, err := rangeEntries(reply)
			if err != nil {
				return err
			}
			if len(entries) == 0 {
				return nil
			}
			for _, raw := range entries {
				start = nextID(raw.id)
				read++
				e, err := parseEntry(raw.id, raw.fields)
				if err != nil || e.nsp != nsp || e.typ != msgBroadcast {
					continue
				}
				bc, err := e.broadcast()
				if err != nil {
					continue
				}
				if err := fn(bc, raw.id); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// sessionGrace is how long a session is kept past its expiry, so that
// taking it says "expired" rather than "unknown": as long as the recovery
// window, at most a minute.
func sessionGrace(expires time.Time) time.Duration {
	return min(max(time.Until(expires), 0), time.Minute)
}

// SaveSessions implements socketio.DurableBroker.
func (b *Streams) SaveSessions(ctx context.Context, sessions []*socketio.SavedSession) error {
	return b.c.do(ctx, func(conn redis.Conn) error {
		for _, s := range sessions {
			value, err := encodeSession(s)
			if err != nil {
				return err
			}
			ttl := time.Until(s.Expires) + sessionGrace(s.Expires)
			if err := conn.Send("SET", b.cfg.SessionKeyPrefix+s.PID, value, "PX", ttl.Milliseconds()); err != nil {
				return err
			}
		}
		return receiveAll(conn, len(sessions))
	})
}

// DropSessions implements socketio.DurableBroker.
func (b *Streams) DropSessions(ctx context.Context, pids []string) error {
	return b.c.do(ctx, func(conn redis.Conn) error {
		for _, pid := range pids {
			if err := conn.Send("DEL", b.cfg.SessionKeyPrefix+pid); err != nil {
				return err
			}
		}
		return receiveAll(conn, len(pids))
	})
}

// receiveAll flushes pipelined commands and reads their n replies.
func receiveAll(conn redis.Conn, n int) error {
	if err := conn.Flush(); err != nil {
		return err
	}
	var first error
	for range n {
		if _, err := conn.Receive(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// TakeSession implements socketio.DurableBroker, as the Node.js adapter
// does: GET and DEL in one transaction.
func (b *Streams) TakeSession(ctx context.Context, pid string) (*socketio.SavedSession, error) {
	var value []byte
	err := b.c.do(ctx, func(conn redis.Conn) error {
		key := b.cfg.SessionKeyPrefix + pid
		conn.Send("MULTI")
		conn.Send("GET", key)
		conn.Send("DEL", key)
		reply, err := redis.Values(redis.DoContext(conn, ctx, "EXEC"))
		if err != nil {
			return err
		}
		if len(reply) > 0 && reply[0] != nil {
			value, err = redis.Bytes(reply[0], nil)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if value == nil {
		return nil, socketio.ErrSessionUnknown
	}
	s, err := decodeSession(value)
	if err != nil {
		return nil, err
	}
	if !s.Expires.IsZero() && time.Now().After(s.Expires) {
		return nil, socketio.ErrSessionExpired
	}
	return s, nil
}

// Close implements socketio.Broker: it adds what is still queued to the
// stream and publishes what is queued for the channels, waiting until ctx
// ends at most, then stops.
func (b *Streams) Close(ctx context.Context) error {
	b.wmu.Lock()
	already := b.closing
	b.closing = true
	b.wmu.Unlock()
	if already {
		return nil
	}
	select {
	case b.wake <- struct{}{}:
	default:
	}
	select {
	case <-b.flushed:
	case <-ctx.Done():
	}
	if b.pub != nil {
		b.pub.close(ctx)
	}
	b.cancel()
	b.wg.Wait()
	return nil
}

// Metric names under which the Streams counters are meant to be exported.
const (
	MetricBuffered      = "siogo_redis_stream_buffered"
	MetricBufferDropped = "siogo_redis_stream_buffer_dropped_total"
)

// Buffered returns how many entries wait to be added to the stream (metric
// MetricBuffered).
func (b *Streams) Buffered() int64 { return b.depth.Load() }

// BufferDropped returns how many entries a full buffer dropped (metric
// MetricBufferDropped).
func (b *Streams) BufferDropped() uint64 { return b.dropped.Load() }

// Reconnects returns how many times the stream reader reconnected after
// losing Redis (metric MetricReconnects).
func (b *Streams) Reconnects() uint64 { return b.reconnects.Load() }

// Malformed returns how many messages were skipped as malformed (metric
// MetricMalformed).
func (b *Streams) Malformed() uint64 { return b.malformed.Load() }

// Ready reports whether the node takes part in the cluster: the stream is
// read, the channels are subscribed, and Redis answers PING.
func (b *Streams) Ready(ctx context.Context) error {
	if !b.isReaderUp() {
		return errors.New("redis stream reader not connected")
	}
	if !b.sub.subscribed.Load() {
		return errors.New("redis subscriber not connected")
	}
	if err := b.c.Ping(ctx); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}
