package socketio

import (
	"context"

	"siogo/engineio"
)

// BroadcastOptions selects the recipients of a broadcast: the sockets in any
// of Rooms (every socket when Rooms is empty) that are in none of Except.
// Local keeps the broadcast on this node.
type BroadcastOptions struct {
	Rooms  []Room
	Except []Room
	Local  bool
}

// BroadcastOperator builds a broadcast, or an operation on the sockets it
// selects, on every node. Each method returns a new operator.
type BroadcastOperator struct {
	nsp  *Namespace
	opts BroadcastOptions
}

// To adds rooms to the selection.
func (b *BroadcastOperator) To(rooms ...Room) *BroadcastOperator {
	o := b.opts
	o.Rooms = append(append([]Room(nil), o.Rooms...), rooms...)
	return &BroadcastOperator{nsp: b.nsp, opts: o}
}

// Except adds rooms whose sockets are left out.
func (b *BroadcastOperator) Except(rooms ...Room) *BroadcastOperator {
	o := b.opts
	o.Except = append(append([]Room(nil), o.Except...), rooms...)
	return &BroadcastOperator{nsp: b.nsp, opts: o}
}

// Local keeps the broadcast on this node.
func (b *BroadcastOperator) Local() *BroadcastOperator {
	o := b.opts
	o.Local = true
	return &BroadcastOperator{nsp: b.nsp, opts: o}
}

// Emit encodes the event once and sends it to the selected sockets.
// Arguments follow the rules of Socket.Emit.
func (b *BroadcastOperator) Emit(event string, args ...any) error {
	data, attachments, err := encodeEvent(event, args)
	if err != nil {
		return err
	}
	bc := &Broadcast{Namespace: b.nsp.name, Data: data, Attachments: attachments, Opts: b.opts}
	bc.frames = bc.packet().Frames()
	srv := b.nsp.srv
	if b.opts.Local {
		b.nsp.deliver(bc, "")
		return nil
	}
	if !srv.durable {
		b.nsp.deliver(bc, "")
	}
	srv.broker.Publish(bc)
	return nil
}

// FetchSockets describes the selected sockets of every node (only this
// node's with Local).
func (b *BroadcastOperator) FetchSockets(ctx context.Context) ([]RemoteSocket, error) {
	return b.nsp.fetchSockets(ctx, b.opts)
}

// SocketsJoin makes the selected sockets, on every node, join rooms.
func (b *BroadcastOperator) SocketsJoin(rooms ...Room) {
	b.nsp.socketsJoin(b.opts, rooms)
}

// SocketsLeave makes the selected sockets, on every node, leave rooms.
func (b *BroadcastOperator) SocketsLeave(rooms ...Room) {
	b.nsp.socketsLeave(b.opts, rooms)
}

// DisconnectSockets disconnects the selected sockets on every node;
// closeConn closes their underlying connections too.
func (b *BroadcastOperator) DisconnectSockets(closeConn bool) {
	b.nsp.disconnectSockets(b.opts, closeConn)
}

func (bc *Broadcast) packet() *Packet {
	return &Packet{Type: PacketEvent, Namespace: bc.Namespace, Data: bc.Data, Attachments: bc.Attachments}
}

// deliver queues a broadcast on every selected local socket. The packet is
// encoded once and the same frames go to every Socket.IO recipient; the
// raw form (see Namespace.ConnectRaw) is computed once too, when a raw
// socket is among the recipients, and shared by all of them.
func (n *Namespace) deliver(b *Broadcast, offset string) {
	frames := b.frames
	if frames == nil {
		frames = b.packet().Frames()
	}
	var raw []engineio.Message // one message, the same for every raw socket
	var rawErr error
	rawDone := false
	n.fanout.Lock()
	n.targets = n.rooms.selectSockets(b.Opts, n, n.targets[:0])
	for _, s := range n.targets {
		if s.raw == nil {
			s.client.conn.Send(frames...)
			continue
		}
		if !rawDone {
			var msg engineio.Message
			msg, rawErr = rawMessage(b.Data, b.Attachments)
			raw = []engineio.Message{msg}
			rawDone = true
			if rawErr != nil {
				n.srv.log.Warn("socketio: a broadcast has no raw form", "nsp", n.name, "err", rawErr)
			}
		}
		if rawErr == nil {
			s.raw.conn.Send(raw...)
		}
	}
	count := len(n.targets)
	clear(n.targets)
	n.fanout.Unlock()
	n.srv.opts.Observer.Broadcast(count)
}
