package socketio

import "sync"

// SocketID identifies a socket within its namespace.
type SocketID string

// Room names a group of sockets within a namespace. Every socket is in the
// room named by its own id.
type Room string

// rooms is the room membership of a namespace's local sockets, indexed both
// ways.
type rooms struct {
	mu    sync.RWMutex
	rooms map[Room]map[SocketID]struct{}
	sids  map[SocketID]map[Room]struct{}
}

func newRooms() *rooms {
	return &rooms{
		rooms: make(map[Room]map[SocketID]struct{}),
		sids:  make(map[SocketID]map[Room]struct{}),
	}
}

// join adds a socket to rooms. When added is not nil, the rooms the socket
// was not in yet are appended to it and returned.
func (r *rooms) join(id SocketID, rooms []Room, added []Room) []Room {
	r.mu.Lock()
	defer r.mu.Unlock()
	mine := r.sids[id]
	if mine == nil {
		mine = make(map[Room]struct{}, len(rooms))
		r.sids[id] = mine
	}
	for _, room := range rooms {
		if added != nil {
			if _, in := mine[room]; !in {
				added = append(added, room)
			}
		}
		mine[room] = struct{}{}
		members := r.rooms[room]
		if members == nil {
			members = make(map[SocketID]struct{})
			r.rooms[room] = members
		}
		members[id] = struct{}{}
	}
	return added
}

// leave removes a socket from a room and reports whether it was in it.
func (r *rooms) leave(id SocketID, room Room) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, in := r.sids[id][room]; !in {
		return false
	}
	delete(r.sids[id], room)
	r.leaveLocked(id, room)
	return true
}

func (r *rooms) leaveLocked(id SocketID, room Room) {
	if members := r.rooms[room]; members != nil {
		delete(members, id)
		if len(members) == 0 {
			delete(r.rooms, room)
		}
	}
}

// leaveAll removes a socket from every room; with report it returns them.
func (r *rooms) leaveAll(id SocketID, report bool) []Room {
	r.mu.Lock()
	defer r.mu.Unlock()
	var left []Room
	for room := range r.sids[id] {
		r.leaveLocked(id, room)
		if report {
			left = append(left, room)
		}
	}
	delete(r.sids, id)
	return left
}

// of returns the rooms a socket is in.
func (r *rooms) of(id SocketID) []Room {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Room, 0, len(r.sids[id]))
	for room := range r.sids[id] {
		out = append(out, room)
	}
	return out
}

// all returns every room with at least one local member.
func (r *rooms) all() []Room {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Room, 0, len(r.rooms))
	for room := range r.rooms {
		out = append(out, room)
	}
	return out
}

// has reports whether a local socket is in room.
func (r *rooms) has(room Room) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.rooms[room]) > 0
}

// selectSockets appends the local sockets chosen by opts to dst: those in
// any of opts.Rooms (all of them when there is none) and in none of
// opts.Except. sockets is the namespace's socket table, read under its own
// lock.
func (r *rooms) selectSockets(opts BroadcastOptions, n *Namespace, dst []*Socket) []*Socket {
	r.mu.RLock()
	defer r.mu.RUnlock()
	excluded := func(id SocketID) bool {
		for _, room := range opts.Except {
			if _, ok := r.rooms[room][id]; ok {
				return true
			}
		}
		return false
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	if len(opts.Rooms) == 0 {
		for id, s := range n.sockets {
			if len(opts.Except) == 0 || !excluded(id) {
				dst = append(dst, s)
			}
		}
		return dst
	}
	var seen map[SocketID]struct{}
	if len(opts.Rooms) > 1 {
		seen = make(map[SocketID]struct{})
	}
	for _, room := range opts.Rooms {
		for id := range r.rooms[room] {
			if seen != nil {
				if _, dup := seen[id]; dup {
					continue
				}
				seen[id] = struct{}{}
			}
			if excluded(id) {
				continue
			}
			if s := n.sockets[id]; s != nil {
				dst = append(dst, s)
			}
		}
	}
	return dst
}
