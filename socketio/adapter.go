package socketio

import (
	"sync"
)

// SocketID identifies a socket within its namespace.
type SocketID string

// Room names a group of sockets within a namespace. Every socket is in the
// room named by its own id.
type Room string

// BroadcastOptions selects the recipients of a broadcast: the sockets in any
// of Rooms (every socket when Rooms is empty) that are in none of Except.
// Local keeps the broadcast on this node.
type BroadcastOptions struct {
	Rooms  []Room
	Except []Room
	Local  bool
}

// Adapter keeps the room membership of one namespace and delivers its
// broadcasts. The in-memory adapter serves a single node; a cluster adapter
// also forwards broadcasts to the other nodes. Implementations are safe for
// concurrent use.
type Adapter interface {
	// Join adds the socket to the rooms.
	Join(id SocketID, rooms ...Room)
	// Leave removes the socket from the room.
	Leave(id SocketID, room Room)
	// LeaveAll removes the socket from every room.
	LeaveAll(id SocketID)
	// Rooms returns the rooms the socket is in.
	Rooms(id SocketID) []Room
	// Broadcast delivers the packet to the selected sockets.
	Broadcast(p *Packet, opts BroadcastOptions) error
	// Close releases the adapter's resources.
	Close() error
}

// AdapterFactory creates the adapter of a namespace.
type AdapterFactory func(nsp *Namespace) Adapter

// MemoryAdapter is the single-node Adapter. Cluster adapters embed it for
// local delivery.
type MemoryAdapter struct {
	nsp *Namespace

	// fanout serialises broadcasts so that every recipient sees them in
	// the same order. Send only appends to a queue, so holding it is short.
	fanout  sync.Mutex
	targets []*Socket // the recipients of the current broadcast, reused

	mu    sync.RWMutex
	rooms map[Room]map[SocketID]struct{}
	sids  map[SocketID]map[Room]struct{}
}

// NewMemoryAdapter returns an empty in-memory adapter for nsp.
func NewMemoryAdapter(nsp *Namespace) *MemoryAdapter {
	return &MemoryAdapter{
		nsp:   nsp,
		rooms: make(map[Room]map[SocketID]struct{}),
		sids:  make(map[SocketID]map[Room]struct{}),
	}
}

// Join implements Adapter.
func (a *MemoryAdapter) Join(id SocketID, rooms ...Room) {
	a.mu.Lock()
	defer a.mu.Unlock()
	mine := a.sids[id]
	if mine == nil {
		mine = make(map[Room]struct{}, len(rooms))
		a.sids[id] = mine
	}
	for _, r := range rooms {
		mine[r] = struct{}{}
		members := a.rooms[r]
		if members == nil {
			members = make(map[SocketID]struct{})
			a.rooms[r] = members
		}
		members[id] = struct{}{}
	}
}

// Leave implements Adapter.
func (a *MemoryAdapter) Leave(id SocketID, room Room) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.sids[id], room)
	a.leaveLocked(id, room)
}

func (a *MemoryAdapter) leaveLocked(id SocketID, room Room) {
	if members := a.rooms[room]; members != nil {
		delete(members, id)
		if len(members) == 0 {
			delete(a.rooms, room)
		}
	}
}

// LeaveAll implements Adapter.
func (a *MemoryAdapter) LeaveAll(id SocketID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for r := range a.sids[id] {
		a.leaveLocked(id, r)
	}
	delete(a.sids, id)
}

// Rooms implements Adapter.
func (a *MemoryAdapter) Rooms(id SocketID) []Room {
	a.mu.RLock()
	defer a.mu.RUnlock()
	rooms := make([]Room, 0, len(a.sids[id]))
	for r := range a.sids[id] {
		rooms = append(rooms, r)
	}
	return rooms
}

// AllRooms returns every room with at least one local member.
func (a *MemoryAdapter) AllRooms() []Room {
	a.mu.RLock()
	defer a.mu.RUnlock()
	rooms := make([]Room, 0, len(a.rooms))
	for r := range a.rooms {
		rooms = append(rooms, r)
	}
	return rooms
}

// HasRoom reports whether a local socket is in room.
func (a *MemoryAdapter) HasRoom(room Room) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return len(a.rooms[room]) > 0
}

// Close implements Adapter.
func (a *MemoryAdapter) Close() error { return nil }

// Broadcast implements Adapter: the packet is encoded once and the same
// frames are queued on every selected local socket.
func (a *MemoryAdapter) Broadcast(p *Packet, opts BroadcastOptions) error {
	frames := p.Frames()
	a.fanout.Lock()
	a.targets = a.Select(opts, a.targets[:0])
	for _, s := range a.targets {
		s.client.conn.Send(frames...)
	}
	n := len(a.targets)
	clear(a.targets)
	a.fanout.Unlock()
	a.nsp.srv.opts.Observer.Broadcast(n)
	return nil
}

// Select appends the local sockets chosen by opts to dst. Sending happens
// after the locks are released, so a session closing on a full queue cannot
// deadlock with the adapter.
func (a *MemoryAdapter) Select(opts BroadcastOptions, dst []*Socket) []*Socket {
	a.mu.RLock()
	defer a.mu.RUnlock()
	excluded := func(id SocketID) bool {
		for _, r := range opts.Except {
			if _, ok := a.rooms[r][id]; ok {
				return true
			}
		}
		return false
	}
	if len(opts.Rooms) == 0 {
		a.nsp.mu.RLock()
		for id, s := range a.nsp.sockets {
			if len(opts.Except) == 0 || !excluded(id) {
				dst = append(dst, s)
			}
		}
		a.nsp.mu.RUnlock()
		return dst
	}
	var seen map[SocketID]struct{}
	if len(opts.Rooms) > 1 {
		seen = make(map[SocketID]struct{})
	}
	a.nsp.mu.RLock()
	defer a.nsp.mu.RUnlock()
	for _, r := range opts.Rooms {
		for id := range a.rooms[r] {
			if seen != nil {
				if _, dup := seen[id]; dup {
					continue
				}
				seen[id] = struct{}{}
			}
			if excluded(id) {
				continue
			}
			if s := a.nsp.sockets[id]; s != nil {
				dst = append(dst, s)
			}
		}
	}
	return dst
}
