package socketio

import (
	"slices"
	"sync"
)

// SocketID identifies a socket within its namespace.
type SocketID string

// Room names a group of sockets within a namespace. Every socket is in the
// room named by its own id.
type Room string

// rooms is the room membership of a namespace's local sockets. A socket's
// own room, named by its id, is not stored: every socket in the namespace's
// table is in it, but for the few that left it. The other rooms are indexed
// both ways, so a socket in no other room, as most are, costs nothing here.
type rooms struct {
	mu      sync.RWMutex
	members map[Room]map[SocketID]struct{} // rooms but own rooms
	others  map[SocketID][]Room            // each socket's rooms but its own
	leftOwn map[SocketID]struct{}          // sockets out of their own room
}

func newRooms() *rooms {
	return &rooms{
		members: make(map[Room]map[SocketID]struct{}),
		others:  make(map[SocketID][]Room),
		leftOwn: make(map[SocketID]struct{}),
	}
}

// join adds a socket to rooms; fresh says it has just come, so that its
// own room is new to it too. When added is not nil, the rooms the socket
// was not in yet are appended to it and returned.
func (r *rooms) join(id SocketID, rooms []Room, added []Room, fresh bool) []Room {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, room := range rooms {
		if room == Room(id) {
			_, left := r.leftOwn[id]
			delete(r.leftOwn, id)
			if added != nil && (left || fresh) && !slices.Contains(added, room) {
				added = append(added, room)
			}
			continue
		}
		members := r.members[room]
		if _, in := members[id]; in {
			continue
		}
		if members == nil {
			members = make(map[SocketID]struct{})
			r.members[room] = members
		}
		members[id] = struct{}{}
		r.others[id] = append(r.others[id], room)
		if added != nil {
			added = append(added, room)
		}
	}
	return added
}

// leave removes a socket from a room and reports whether it was in it.
func (r *rooms) leave(id SocketID, room Room) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if room == Room(id) {
		if _, left := r.leftOwn[id]; left {
			return false
		}
		r.leftOwn[id] = struct{}{}
		return true
	}
	i := slices.Index(r.others[id], room)
	if i < 0 {
		return false
	}
	if mine := slices.Delete(r.others[id], i, i+1); len(mine) > 0 {
		r.others[id] = mine
	} else {
		delete(r.others, id)
	}
	r.dropMemberLocked(id, room)
	return true
}

func (r *rooms) dropMemberLocked(id SocketID, room Room) {
	if members := r.members[room]; members != nil {
		delete(members, id)
		if len(members) == 0 {
			delete(r.members, room)
		}
	}
}

// leaveAll removes a socket from every room; with report it returns them.
func (r *rooms) leaveAll(id SocketID, report bool) []Room {
	r.mu.Lock()
	defer r.mu.Unlock()
	var left []Room
	if _, out := r.leftOwn[id]; !out && report {
		left = append(left, Room(id))
	}
	delete(r.leftOwn, id)
	for _, room := range r.others[id] {
		r.dropMemberLocked(id, room)
		if report {
			left = append(left, room)
		}
	}
	delete(r.others, id)
	return left
}

// of returns the rooms a socket is in.
func (r *rooms) of(id SocketID) []Room {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Room, 0, 1+len(r.others[id]))
	if _, left := r.leftOwn[id]; !left {
		out = append(out, Room(id))
	}
	return append(out, r.others[id]...)
}

// all returns every room with at least one local member, the sockets' own
// rooms included, from n's socket table.
func (r *rooms) all(n *Namespace) []Room {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make([]Room, 0, len(r.members)+len(n.sockets))
	for room := range r.members {
		out = append(out, room)
	}
	for id := range n.sockets {
		if _, left := r.leftOwn[id]; !left {
			if _, dup := r.members[Room(id)]; !dup {
				out = append(out, Room(id))
			}
		}
	}
	return out
}

// inLocked reports whether socket id is in room; the caller holds r.mu.
func (r *rooms) inLocked(id SocketID, room Room) bool {
	if room == Room(id) {
		_, left := r.leftOwn[id]
		return !left
	}
	_, in := r.members[room][id]
	return in
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
			if r.inLocked(id, room) {
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
	add := func(id SocketID) {
		if seen != nil {
			if _, dup := seen[id]; dup {
				return
			}
			seen[id] = struct{}{}
		}
		if excluded(id) {
			return
		}
		if s := n.sockets[id]; s != nil {
			dst = append(dst, s)
		}
	}
	for _, room := range opts.Rooms {
		// The socket whose own room this is, unless it left it.
		if owner := SocketID(room); n.sockets[owner] != nil {
			if _, left := r.leftOwn[owner]; !left {
				add(owner)
			}
		}
		for id := range r.members[room] {
			add(id)
		}
	}
	return dst
}
