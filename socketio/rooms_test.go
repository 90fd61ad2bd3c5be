package socketio

import (
	"slices"
	"testing"
)

// TestRoomsOwnRoom: a socket's own room is implicit, yet behaves as any
// other: the socket can leave it and come back, others can join it, and
// broadcasts and AllRooms see it.
func TestRoomsOwnRoom(t *testing.T) {
	n := &Namespace{rooms: newRooms(), sockets: map[SocketID]*Socket{}}
	for _, id := range []SocketID{"a", "b", "c"} {
		n.sockets[id] = &Socket{id: id}
	}
	r := n.rooms
	ids := func(opts BroadcastOptions) []string {
		var out []string
		for _, s := range r.selectSockets(opts, n, nil) {
			out = append(out, string(s.id))
		}
		slices.Sort(out)
		return out
	}
	check := func(what string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", what, got, want)
		}
	}
	if added := r.join("a", []Room{"a", "red"}, []Room{}, true); !slices.Equal(added, []Room{"a", "red"}) {
		t.Errorf("a fresh socket's join reported %v", added)
	}
	if added := r.join("a", []Room{"a", "red"}, []Room{}, false); len(added) != 0 {
		t.Errorf("joining again reported %v", added)
	}
	r.join("b", []Room{"a"}, nil, false) // b joins a's own room
	check("to a", ids(BroadcastOptions{Rooms: []Room{"a"}}), []string{"a", "b"})
	check("to a and red", ids(BroadcastOptions{Rooms: []Room{"a", "red"}}), []string{"a", "b"})
	check("all but a", ids(BroadcastOptions{Except: []Room{"a"}}), []string{"c"})
	check("to c", ids(BroadcastOptions{Rooms: []Room{"c"}}), []string{"c"})

	if !r.leave("a", "a") || r.leave("a", "a") {
		t.Error("leaving one's own room twice")
	}
	check("to a, a out of it", ids(BroadcastOptions{Rooms: []Room{"a"}}), []string{"b"})
	if got := r.of("a"); !slices.Equal(got, []Room{"red"}) {
		t.Errorf("a's rooms: %v", got)
	}
	if added := r.join("a", []Room{"a"}, []Room{}, false); !slices.Equal(added, []Room{"a"}) {
		t.Errorf("coming back to one's own room reported %v", added)
	}
	all := r.all(n)
	slices.Sort(all)
	if !slices.Equal(all, []Room{"a", "b", "c", "red"}) {
		t.Errorf("all rooms: %v", all)
	}
	if left := r.leaveAll("a", true); !slices.Equal(left, []Room{"a", "red"}) {
		t.Errorf("a left %v", left)
	}
	delete(n.sockets, "a")
	check("to red, a gone", ids(BroadcastOptions{Rooms: []Room{"red"}}), nil)
	check("to a, a gone", ids(BroadcastOptions{Rooms: []Room{"a"}}), []string{"b"})
	if len(r.others) != 1 || len(r.leftOwn) != 0 {
		t.Errorf("left behind: others %v, leftOwn %v", r.others, r.leftOwn)
	}
}
