package socketio

import (
	"encoding/json"
	"testing"
)

func TestTypedHandlers(t *testing.T) {
	for _, bad := range []any{nil, 42, func() {}, func(int) {}, func(*Socket, ...int) {}} {
		if _, err := typedHandler(bad); err == nil {
			t.Errorf("typedHandler(%T) accepted", bad)
		}
	}
	type point struct{ X, Y int }
	var got []any
	h, err := typedHandler(func(s *Socket, name string, p point, b []byte, raw json.RawMessage, missing int) (string, error) {
		got = []any{name, p, string(b), string(raw), missing}
		return "ok", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(Options{})
	s := &Socket{nsp: srv.Of("/")}
	m := &Message{Event: "e", Args: rawArgs(`"a"`, `{"X":1,"Y":2}`, `{"_placeholder":true,"num":0}`, `[1, 2]`),
		Attachments: [][]byte{[]byte("bin")}, socket: s}
	h(s, m)
	want := []any{"a", point{1, 2}, "bin", "[1, 2]", 0}
	if len(got) != len(want) {
		t.Fatalf("handler got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("parameter %d = %v, want %v", i+1, got[i], want[i])
		}
	}
	// Arguments that do not decode: the handler is not called.
	got = nil
	h(s, &Message{Event: "e", Args: rawArgs(`5`), socket: s})
	if got != nil {
		t.Errorf("handler called with an argument of the wrong type: %v", got)
	}
}

func rawArgs(args ...string) []json.RawMessage {
	out := make([]json.RawMessage, len(args))
	for i, a := range args {
		out[i] = json.RawMessage(a)
	}
	return out
}
