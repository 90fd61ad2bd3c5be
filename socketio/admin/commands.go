package admin

import (
	"encoding/json"

	"siogo/socketio"
)

// registerCommands answers the dashboard's commands. Each selects sockets
// on every node: those of a namespace, or of a room of it when a filter is
// given (a socket id names the socket's own room).
//
//	join        (nsp, room, filter?)   the selected sockets join room
//	leave       (nsp, room, filter?)   the selected sockets leave room
//	_disconnect (nsp, close, filter?)  the selected sockets are disconnected
//	emit        (nsp, filter, event, ...args)
//	                                    the selected sockets receive event
func (a *Admin) registerCommands() {
	a.nsp.OnEvent("join", a.roomCommand((*socketio.BroadcastOperator).SocketsJoin))
	a.nsp.OnEvent("leave", a.roomCommand((*socketio.BroadcastOperator).SocketsLeave))
	a.nsp.OnEvent("_disconnect", func(s *socketio.Socket, m *socketio.Message) {
		var nsp, filter string
		var closeConn bool
		if !a.parseArgs(s, m, &nsp, &closeConn, &filter) {
			return
		}
		if op := a.target(s, m.Event, nsp, filter); op != nil {
			op.DisconnectSockets(closeConn)
		}
	})
	a.nsp.OnEvent("emit", func(s *socketio.Socket, m *socketio.Message) {
		var nsp, filter, event string
		if len(m.Args) < 3 || !a.parseArgs(s, m, &nsp, &filter, &event) || event == "" {
			a.log.Warn("admin: ignoring a malformed command", "command", m.Event, "addr", clientAddress(s.Handshake()))
			return
		}
		args := make([]any, 0, len(m.Args)-3)
		for _, arg := range m.Args[3:] {
			args = append(args, arg)
		}
		if op := a.target(s, m.Event, nsp, filter); op != nil {
			if err := op.Emit(event, args...); err != nil {
				a.log.Warn("admin: cannot emit", "event", event, "err", err)
			}
		}
	})
}

// roomCommand handles join or leave: (nsp, room, filter?).
func (a *Admin) roomCommand(apply func(op *socketio.BroadcastOperator, rooms ...socketio.Room)) socketio.EventHandler {
	return func(s *socketio.Socket, m *socketio.Message) {
		var nsp, room, filter string
		if !a.parseArgs(s, m, &nsp, &room, &filter) || room == "" {
			return
		}
		if op := a.target(s, m.Event, nsp, filter); op != nil {
			apply(op, socketio.Room(room))
		}
	}
}

// parseArgs decodes a command's leading arguments into dst; a missing or
// null argument leaves its destination as it is. A malformed command is
// logged and reported false.
func (a *Admin) parseArgs(s *socketio.Socket, m *socketio.Message, dst ...any) bool {
	for i, d := range dst {
		if i >= len(m.Args) || string(m.Args[i]) == "null" {
			continue
		}
		if err := json.Unmarshal(m.Args[i], d); err != nil {
			a.log.Warn("admin: ignoring a malformed command", "command", m.Event, "addr", clientAddress(s.Handshake()), "err", err)
			return false
		}
	}
	return true
}

// target selects the sockets of a command: those of namespace nsp, or of
// its room filter. It returns nil for a namespace the server does not
// have: commands never create one.
func (a *Admin) target(s *socketio.Socket, command, nsp, filter string) *socketio.BroadcastOperator {
	for _, n := range a.io.Namespaces() {
		if n.Name() != nsp {
			continue
		}
		a.log.Info("admin: command", "command", command, "nsp", nsp, "filter", filter, "addr", clientAddress(s.Handshake()))
		if filter == "" {
			return n.To()
		}
		return n.To(socketio.Room(filter))
	}
	a.log.Warn("admin: ignoring a command for an unknown namespace", "command", command, "nsp", nsp)
	return nil
}
