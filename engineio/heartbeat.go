package engineio

import (
	"sync"
	"time"

	"siogo/internal/eioparser"
)

// Heartbeats run on one timing wheel per server rather than on timers of
// each session's own: a session is an entry in one of the wheel's slots,
// the slot of the tick its next heartbeat event is due in, and one
// goroutine walks the slots as time passes. A session whose event moved
// later (a pong came, or an Engine.IO 3 client pinged) is found early and
// put back into the slot of its new time; nothing is ever moved earlier.
// Events happen up to one tick late: a tick is an eighth of the shorter of
// the ping interval and timeout, one second at most.

// beat is what a session's heartbeat waits for next.
type beat uint8

const (
	beatNone     beat = iota // not started, or over
	beatSendPing             // Engine.IO 4: the next ping is due
	beatPong                 // Engine.IO 4: the pong to the last ping is due
	beatPing                 // Engine.IO 3: the client's next ping is due
)

// wheel is a server's timing wheel of heartbeats.
type wheel struct {
	tick   time.Duration
	origin time.Time // the start of tick 0

	mu      sync.Mutex
	slots   [][]*Session
	next    int64 // the first tick not walked yet
	entries int   // sessions in the slots
	running bool  // the walking goroutine runs
}

func newWheel(cfg *Config) *wheel {
	tick := min(cfg.PingInterval, cfg.PingTimeout) / 8
	tick = max(min(tick, time.Second), time.Millisecond)
	// The slots cover the longest wait, and a tick to spare.
	span := cfg.PingInterval + cfg.PingTimeout
	n := int(span/tick) + 2
	return &wheel{tick: tick, origin: time.Now(), slots: make([][]*Session, n)}
}

// tickOf returns the tick t falls in.
func (w *wheel) tickOf(t time.Time) int64 { return int64(t.Sub(w.origin) / w.tick) }

// add puts s into the slot of its due time; the caller holds s.mu and has
// set s.due. A due time beyond the wheel's span goes to its last slot, to
// be put back from there.
func (w *wheel) add(s *Session) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := max(w.tickOf(s.due), w.next)
	t = min(t, w.next+int64(len(w.slots))-1)
	i := t % int64(len(w.slots))
	w.slots[i] = append(w.slots[i], s)
	w.entries++
	if !w.running {
		w.running = true
		go w.walk()
	}
}

// walk walks the slots as time passes, until the wheel is empty.
func (w *wheel) walk() {
	ticker := time.NewTicker(w.tick)
	defer ticker.Stop()
	var due []*Session
	for now := range ticker.C {
		w.mu.Lock()
		last := w.tickOf(now)
		for ; w.next <= last; w.next++ {
			i := w.next % int64(len(w.slots))
			due = append(due, w.slots[i]...)
			clear(w.slots[i])
			w.slots[i] = w.slots[i][:0]
		}
		w.entries -= len(due)
		if w.entries == 0 && len(due) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		for _, s := range due {
			s.heartbeat(now)
		}
		clear(due)
		due = due[:0]
	}
}

// startHeartbeat arms the heartbeat of a session that has just started;
// the caller holds s.mu.
func (s *Session) startHeartbeatLocked() {
	cfg := &s.srv.cfg
	now := time.Now()
	if s.protocol == 3 {
		// The client pings; expect one every interval.
		s.beat, s.due = beatPing, now.Add(cfg.PingInterval+cfg.PingTimeout)
	} else {
		s.beat, s.due = beatSendPing, now.Add(cfg.PingInterval)
	}
	s.srv.beats.add(s)
}

// heartbeat runs the session's heartbeat event if it is due at now, and
// puts the session back into the wheel for the next one.
func (s *Session) heartbeat(now time.Time) {
	s.mu.Lock()
	if s.closed || s.beat == beatNone {
		s.mu.Unlock()
		return
	}
	if s.due.After(now) {
		// Moved later meanwhile.
		s.srv.beats.add(s)
		s.mu.Unlock()
		return
	}
	switch s.beat {
	case beatSendPing:
		if s.ws != nil {
			s.ws.ShrinkIdleLocked(&s.queue) // before the ping, which starts a small one
		}
		s.beat, s.due = beatPong, now.Add(s.srv.cfg.PingTimeout)
		s.srv.beats.add(s)
		s.mu.Unlock()
		s.send(eioparser.Packet{Type: eioparser.PacketPing})
	default:
		s.beat = beatNone
		s.mu.Unlock()
		s.closeWith("ping timeout", closeDrop)
	}
}

// onHeartbeat handles a ping (EIO3) or pong (EIO4) from the client. A
// heartbeat in the wrong direction closes the session, as the reference
// implementation does.
func (s *Session) onHeartbeat(p eioparser.Packet) {
	cfg := &s.srv.cfg
	if (p.Type == eioparser.PacketPing) != (s.protocol == 3) {
		s.closeWith("invalid heartbeat direction", closeDrop)
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	now := time.Now()
	if s.protocol == 3 {
		s.due = now.Add(cfg.PingInterval + cfg.PingTimeout)
		s.mu.Unlock()
		s.send(eioparser.Packet{Type: eioparser.PacketPong, Data: append([]byte(nil), p.Data...)})
		return
	}
	if s.beat == beatPong {
		// The wheel finds the session at its pong's time, and puts it
		// back for this ping.
		s.beat, s.due = beatSendPing, now.Add(cfg.PingInterval)
	}
	s.mu.Unlock()
}
