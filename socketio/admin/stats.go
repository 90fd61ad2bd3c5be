package admin

import (
	"cmp"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"siogo/engineio"
	"siogo/socketio"
)

// started stands for the process's start: the uptime the dashboard shows
// counts from it.
var started = time.Now()

// aggregatedEvent is one count of the server stats: how many events of a
// type (and subtype) happened in the second starting at Timestamp.
type aggregatedEvent struct {
	Timestamp int64  `json:"timestamp"` // Unix milliseconds
	Type      string `json:"type"`
	SubType   string `json:"subType,omitempty"`
	Count     int64  `json:"count"`
}

// eventCounts aggregates what happens between two server stats, as the
// reference's EventBuffer does: connections and disconnections (by
// reason) per second, and the events and bytes going in and out, which are
// kept in atomic counters because they are counted on the chat's paths.
type eventCounts struct {
	packetsIn, packetsOut, bytesIn, bytesOut atomic.Int64

	mu          sync.Mutex
	connections []aggregatedEvent
}

func newEventCounts() *eventCounts { return &eventCounts{} }

// add counts one connection event in the current second.
func (c *eventCounts) add(typ, subType string) {
	second := time.Now().Truncate(time.Second).UnixMilli()
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.connections {
		e := &c.connections[i]
		if e.Timestamp == second && e.Type == typ && e.SubType == subType {
			e.Count++
			return
		}
	}
	c.connections = append(c.connections, aggregatedEvent{Timestamp: second, Type: typ, SubType: subType, Count: 1})
}

// take returns what was counted since the last call and starts again. The
// traffic counts are stamped with the current second.
func (c *eventCounts) take() []aggregatedEvent {
	c.mu.Lock()
	out := c.connections
	c.connections = nil
	c.mu.Unlock()
	if out == nil {
		out = []aggregatedEvent{}
	}
	second := time.Now().Truncate(time.Second).UnixMilli()
	for _, t := range []struct {
		typ string
		n   *atomic.Int64
	}{{"packetsIn", &c.packetsIn}, {"packetsOut", &c.packetsOut}, {"bytesIn", &c.bytesIn}, {"bytesOut", &c.bytesOut}} {
		if n := t.n.Swap(0); n > 0 {
			out = append(out, aggregatedEvent{Timestamp: second, Type: t.typ, Count: n})
		}
	}
	return out
}

// countConnections counts the server's connections as they open and
// close.
func (a *Admin) countConnections() {
	a.io.OnConnection(func(*engineio.Session) { a.counts.add("rawConnection", "") })
	a.io.OnConnectionClose(func(_ *engineio.Session, reason string) { a.counts.add("rawDisconnection", reason) })
}

// countTraffic counts the events a namespace's sockets send and receive,
// and their bytes: the JSON of each event and its binary attachments.
func (a *Admin) countTraffic(n *socketio.Namespace) {
	n.OnAny(func(_ *socketio.Socket, m *socketio.Message) {
		// The event as the client sent it: ["name",arg,...].
		size := len(m.Event) + 4
		for _, arg := range m.Args {
			size += len(arg) + 1
		}
		for _, b := range m.Attachments {
			size += len(b)
		}
		a.counts.packetsIn.Add(1)
		a.counts.bytesIn.Add(int64(size))
	})
	n.OnAnyOutgoing(func(e *socketio.OutgoingEvent, to []*socketio.Socket) {
		size := len(e.Data)
		for _, b := range e.Attachments {
			size += len(b)
		}
		a.counts.packetsOut.Add(int64(len(to)))
		a.counts.bytesOut.Add(int64(len(to) * size))
	})
}

// serverStats is what a server reports to every dashboard of the cluster.
type serverStats struct {
	ServerID            string             `json:"serverId"`
	Hostname            string             `json:"hostname"`
	PID                 int                `json:"pid"`
	Uptime              float64            `json:"uptime"` // seconds
	ClientsCount        int                `json:"clientsCount"`
	PollingClientsCount int                `json:"pollingClientsCount"`
	AggregatedEvents    []aggregatedEvent  `json:"aggregatedEvents"`
	Namespaces          []namespaceDetails `json:"namespaces"`
}

type namespaceDetails struct {
	Name         string `json:"name"`
	SocketsCount int    `json:"socketsCount"`
}

// stats takes the server's stats, and the counts since the last ones.
func (a *Admin) stats() serverStats {
	st := serverStats{
		ServerID:            a.serverID,
		Hostname:            a.hostname,
		PID:                 os.Getpid(),
		Uptime:              time.Since(started).Seconds(),
		ClientsCount:        a.io.Engine().SessionCount(),
		PollingClientsCount: a.io.Engine().PollingCount(),
		AggregatedEvents:    a.counts.take(),
	}
	for _, n := range a.io.Namespaces() {
		st.Namespaces = append(st.Namespaces, namespaceDetails{Name: n.Name(), SocketsCount: n.Len()})
	}
	slices.SortFunc(st.Namespaces, func(x, y namespaceDetails) int { return cmp.Compare(x.Name, y.Name) })
	return st
}

// statsLoop sends the server stats to the admin namespace, on every node,
// at once and then every StatsInterval, until Close.
func (a *Admin) statsLoop() {
	defer a.stopped.Done()
	tick := time.NewTicker(a.opts.StatsInterval)
	defer tick.Stop()
	for {
		if err := a.nsp.Emit("server_stats", a.stats()); err != nil {
			a.log.Warn("admin: cannot send the server stats", "err", err)
		}
		select {
		case <-tick.C:
		case <-a.stop:
			return
		}
	}
}
