package admin

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"time"

	"siogo/socketio"
)

// serializedSocket is a socket as the dashboard lists it.
type serializedSocket struct {
	ID        socketio.SocketID   `json:"id"`
	ClientID  string              `json:"clientId,omitempty"`
	Transport string              `json:"transport,omitempty"`
	Nsp       string              `json:"nsp"`
	Data      json.RawMessage     `json:"data"`
	Handshake serializedHandshake `json:"handshake"`
	Rooms     []socketio.Room     `json:"rooms"`
}

// serializedHandshake is the part of a socket's handshake the dashboard
// shows; the values are as the socket's node described them.
type serializedHandshake struct {
	Address json.RawMessage            `json:"address,omitempty"`
	Headers map[string]json.RawMessage `json:"headers"`
	Query   json.RawMessage            `json:"query,omitempty"`
	Issued  json.RawMessage            `json:"issued,omitempty"`
	Secure  json.RawMessage            `json:"secure,omitempty"`
	Time    json.RawMessage            `json:"time,omitempty"`
	URL     json.RawMessage            `json:"url,omitempty"`
	XDomain json.RawMessage            `json:"xdomain,omitempty"`
}

// adminData is what an instrumented Node.js node keeps in a socket's data
// under "_admin": the socket's connection and its transport.
type adminData struct {
	ClientID  string `json:"clientId"`
	Transport string `json:"transport"`
}

// serialize turns a socket of any node into what the dashboard lists. A
// socket of an instrumented Node.js node carries its connection and
// transport in its data, under "_admin", which the dashboard does not show.
func serialize(rs socketio.RemoteSocket, nsp string) serializedSocket {
	out := serializedSocket{
		ID:        rs.ID,
		ClientID:  rs.SessionID,
		Transport: rs.Transport,
		Nsp:       nsp,
		Data:      rs.Data,
		Rooms:     rs.Rooms,
	}
	if out.Rooms == nil {
		out.Rooms = []socketio.Room{}
	}
	var data map[string]json.RawMessage
	if bytes.HasPrefix(bytes.TrimSpace(rs.Data), []byte("{")) && json.Unmarshal(rs.Data, &data) == nil {
		if raw, ok := data["_admin"]; ok {
			var ad adminData
			if json.Unmarshal(raw, &ad) == nil {
				out.ClientID = cmp.Or(out.ClientID, ad.ClientID)
				out.Transport = cmp.Or(out.Transport, ad.Transport)
			}
			delete(data, "_admin")
			out.Data, _ = json.Marshal(data)
		}
	}
	if len(out.Data) == 0 {
		out.Data = json.RawMessage("{}")
	}
	var hs struct {
		serializedHandshake
	}
	json.Unmarshal(rs.Handshake, &hs)
	out.Handshake = hs.serializedHandshake
	if out.Handshake.Headers == nil {
		out.Handshake.Headers = map[string]json.RawMessage{}
	}
	// The address a proxy forwarded, as the reference shows it.
	for _, h := range []string{"cf-connecting-ip", "x-forwarded-for"} {
		if v := out.Handshake.Headers[h]; truthy(v) {
			out.Handshake.Address = v
			break
		}
	}
	return out
}

// truthy reports whether a JSON value is true in JavaScript's sense, as
// the reference's `a || b` takes it.
func truthy(v json.RawMessage) bool {
	switch string(bytes.TrimSpace(v)) {
	case "", `""`, "null", "false", "0":
		return false
	}
	return true
}

// fetchAllSockets describes every socket of every namespace, on every
// node. A namespace whose sockets cannot all be collected is left out,
// with a warning.
func (a *Admin) fetchAllSockets(ctx context.Context) []serializedSocket {
	nsps := a.io.Namespaces()
	slices.SortFunc(nsps, func(x, y *socketio.Namespace) int { return cmp.Compare(x.Name(), y.Name()) })
	out := []serializedSocket{}
	for _, n := range nsps {
		sockets, err := n.FetchSockets(ctx)
		if err != nil {
			a.log.Warn("admin: cannot list the sockets of every node", "nsp", n.Name(), "err", err)
			continue
		}
		for _, rs := range sockets {
			out = append(out, serialize(rs, n.Name()))
		}
	}
	return out
}

// jsDate formats t as JSON.stringify gives a JavaScript Date.
func jsDate(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// reportSockets tells every dashboard about a namespace's sockets: their
// connection and disconnection, their transport upgrades, and the rooms
// they join and leave.
func (a *Admin) reportSockets(n *socketio.Namespace) {
	nsp := n.Name()
	n.OnConnect(func(s *socketio.Socket) {
		a.emit("socket_connected", serialize(s.Describe(), nsp), jsDate(time.Now()))
	})
	n.OnDisconnect(func(s *socketio.Socket, reason string) {
		a.emit("socket_disconnected", nsp, s.ID(), reason, jsDate(time.Now()))
	})
	n.OnUpgrade(func(s *socketio.Socket) {
		a.emit("socket_updated", struct {
			ID        socketio.SocketID `json:"id"`
			Nsp       string            `json:"nsp"`
			Transport string            `json:"transport"`
		}{s.ID(), nsp, s.Transport()})
	})
	n.OnJoinRoom(func(room socketio.Room, id socketio.SocketID) {
		a.emit("room_joined", nsp, room, id, jsDate(time.Now()))
	})
	n.OnLeaveRoom(func(room socketio.Room, id socketio.SocketID) {
		a.emit("room_left", nsp, room, id, jsDate(time.Now()))
	})
}

// emit sends an event to every dashboard, on every node.
func (a *Admin) emit(event string, args ...any) {
	if err := a.nsp.Emit(event, args...); err != nil {
		a.log.Warn("admin: cannot send an event to the dashboards", "event", event, "err", err)
	}
}
