package socketio

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MemoryBroker is the Broker of a single node: there are no other nodes to
// reach, so it hands every broadcast straight back. With a log it is a
// DurableBroker, keeping recent broadcasts and the sessions of disconnected
// sockets in memory for connection-state recovery.
type MemoryBroker struct {
	cfg   MemoryBrokerConfig
	h     BrokerHandler
	epoch string // starts every offset, so that offsets of another run never match

	mu   sync.Mutex
	nsps map[string]*memoryLog

	sessMu   sync.Mutex
	sessions map[string]memorySession
	swept    time.Time
}

// MemoryBrokerConfig bounds a MemoryBroker's log. A zero LogSize keeps no
// log: broadcasts get no offsets and nothing can be replayed.
type MemoryBrokerConfig struct {
	// LogSize is how many broadcasts each namespace's log keeps at most.
	LogSize int
	// LogAge is how long a broadcast stays in the log at most (default:
	// no bound but LogSize).
	LogAge time.Duration
}

type memoryLog struct {
	mu      sync.Mutex
	seq     uint64
	entries []memoryEntry // a ring of cap LogSize
	start   int           // index of the oldest entry
	// Deliveries follow the offsets' order: one goroutine at a time hands
	// them over, without the lock, since what it runs may publish in turn.
	ready      []memoryEntry
	delivering bool
}

// memorySession is a stored session and when to sweep it.
type memorySession struct {
	s    *SavedSession
	drop time.Time
}

type memoryEntry struct {
	seq uint64
	at  time.Time
	b   *Broadcast
}

// NewMemoryBroker returns a broker for a single node.
func NewMemoryBroker(cfg MemoryBrokerConfig) *MemoryBroker {
	return &MemoryBroker{
		cfg:      cfg,
		epoch:    strconv.FormatInt(time.Now().UnixMilli(), 10),
		nsps:     make(map[string]*memoryLog),
		sessions: make(map[string]memorySession),
	}
}

// Open implements Broker.
func (m *MemoryBroker) Open(h BrokerHandler) { m.h = h }

// Subscribe implements Broker.
func (m *MemoryBroker) Subscribe(nsp string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.nsps[nsp] == nil {
		m.nsps[nsp] = &memoryLog{}
	}
	return nil
}

func (m *MemoryBroker) log(nsp string) *memoryLog {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.nsps[nsp]
	if l == nil {
		l = &memoryLog{}
		m.nsps[nsp] = l
	}
	return l
}

// sessionsInProcess marks the broker's sessions as living in this
// process, gone with it: the server stores no session of a live socket.
func (m *MemoryBroker) sessionsInProcess() {}

// Publish implements Broker: the broadcast is logged, when there is a log,
// and handed back at once.
func (m *MemoryBroker) Publish(b *Broadcast) {
	if m.cfg.LogSize <= 0 {
		m.h.HandleBroadcast(b, "")
		return
	}
	l := m.log(b.Namespace)
	l.mu.Lock()
	l.seq++
	now := time.Now()
	e := memoryEntry{seq: l.seq, at: now, b: b}
	if len(l.entries) < m.cfg.LogSize {
		l.entries = append(l.entries, e)
	} else {
		l.entries[l.start] = e
		l.start = (l.start + 1) % len(l.entries)
	}
	if age := m.cfg.LogAge; age > 0 {
		// Entries are in time order: drop expired ones from the oldest
		// on, by clearing them (the ring keeps its size).
		for i := 0; i < len(l.entries); i++ {
			j := (l.start + i) % len(l.entries)
			if l.entries[j].b == nil || now.Sub(l.entries[j].at) <= age {
				break
			}
			l.entries[j] = memoryEntry{}
		}
	}
	l.ready = append(l.ready, e)
	if l.delivering {
		// The goroutine at work delivers this one too, after the
		// ones before it.
		l.mu.Unlock()
		return
	}
	l.delivering = true
	for len(l.ready) > 0 {
		batch := l.ready
		l.ready = nil
		l.mu.Unlock()
		for _, e := range batch {
			m.h.HandleBroadcast(e.b, m.offset(e.seq))
		}
		l.mu.Lock()
	}
	l.delivering = false
	l.mu.Unlock()
}

func (m *MemoryBroker) offset(seq uint64) string {
	return m.epoch + "-" + strconv.FormatUint(seq, 10)
}

func (m *MemoryBroker) parseOffset(offset string) (uint64, bool) {
	epoch, seq, ok := strings.Cut(offset, "-")
	if !ok || epoch != m.epoch {
		return 0, false
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	return n, err == nil
}

// Replay implements DurableBroker.
func (m *MemoryBroker) Replay(ctx context.Context, nsp, offset string, fn func(b *Broadcast, offset string) error) error {
	seq, ok := m.parseOffset(offset)
	if !ok {
		return ErrOffsetUnknown
	}
	l := m.log(nsp)
	l.mu.Lock()
	var missed []memoryEntry
	found := false
	for i := range l.entries {
		e := l.entries[(l.start+i)%len(l.entries)]
		if e.b == nil {
			continue
		}
		switch {
		case e.seq == seq:
			found = true
		case e.seq > seq && found:
			missed = append(missed, e)
		}
	}
	l.mu.Unlock()
	if !found {
		return ErrOffsetUnknown
	}
	for _, e := range missed {
		if err := fn(e.b, m.offset(e.seq)); err != nil {
			return err
		}
	}
	return nil
}

// SaveSessions implements DurableBroker. A session is kept past its expiry
// for as long again as it had to live, a minute at most, so that taking it
// says "expired" rather than "unknown"; then it is swept.
func (m *MemoryBroker) SaveSessions(_ context.Context, sessions []*SavedSession) error {
	now := time.Now()
	m.sessMu.Lock()
	defer m.sessMu.Unlock()
	for _, s := range sessions {
		grace := min(max(s.Expires.Sub(now), 0), time.Minute)
		m.sessions[s.PID] = memorySession{s, s.Expires.Add(grace)}
	}
	if now.Sub(m.swept) > time.Second {
		m.swept = now
		for pid, e := range m.sessions {
			if now.After(e.drop) {
				delete(m.sessions, pid)
			}
		}
	}
	return nil
}

// DropSessions implements DurableBroker.
func (m *MemoryBroker) DropSessions(_ context.Context, pids []string) error {
	m.sessMu.Lock()
	defer m.sessMu.Unlock()
	for _, pid := range pids {
		delete(m.sessions, pid)
	}
	return nil
}

// TakeSession implements DurableBroker.
func (m *MemoryBroker) TakeSession(_ context.Context, pid string) (*SavedSession, error) {
	m.sessMu.Lock()
	defer m.sessMu.Unlock()
	e, ok := m.sessions[pid]
	delete(m.sessions, pid)
	s := e.s
	switch {
	case !ok:
		return nil, ErrSessionUnknown
	case time.Now().After(s.Expires):
		return nil, ErrSessionExpired
	}
	return s, nil
}

// sessionCount returns how many sessions the broker holds.
func (m *MemoryBroker) sessionCount() int {
	m.sessMu.Lock()
	defer m.sessMu.Unlock()
	return len(m.sessions)
}

// Send implements Broker; there is no other node.
func (m *MemoryBroker) Send(*NodeRequest) error { return nil }

// Reply implements Broker; there is no other node.
func (m *MemoryBroker) Reply(string, *NodeReply) error { return nil }

// ServerCount implements Broker: this node alone.
func (m *MemoryBroker) ServerCount(context.Context, string) (int, error) { return 1, nil }

// Close implements Broker.
func (m *MemoryBroker) Close(context.Context) error { return nil }
