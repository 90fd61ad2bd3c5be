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
	bc.frames = b.nsp.srv.broadcastFrames(bc)
	srv := b.nsp.srv
	if b.opts.Local {
		b.nsp.deliver(bc, "")
		return nil
	}
	if srv.durable == nil {
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

func (bc *Broadcast) packet() *packet {
	return &packet{Type: packetEvent, Namespace: bc.Namespace, Data: bc.Data, Attachments: bc.Attachments}
}

// broadcastFrames encodes a broadcast once for all its recipients, and
// readies the frames to be compressed once for all of them too.
func (s *Server) broadcastFrames(bc *Broadcast) []engineio.Message {
	frames := bc.packet().Frames()
	s.engine.PrepareBroadcast(frames)
	return frames
}

// deliver queues a broadcast on every selected local socket. The packet is
// encoded once and the same frames go to every Socket.IO recipient;
// recoverable sockets get a second encoding, made once too, that carries
// the offset; the raw form (see Namespace.ConnectRaw) is computed once,
// when a raw socket is among the recipients, and shared by all of them.
// Outgoing listeners, if any, get the recipients once the lock is
// released, in a list of their own.
func (n *Namespace) deliver(b *Broadcast, offset string) {
	frames := b.frames
	if frames == nil {
		frames = n.srv.broadcastFrames(b)
	}
	hooks := n.hooks.anyOutgoing.load()
	var watched *[]*Socket
	var offsetFrames []engineio.Message
	var raw []engineio.Message // one message, the same for every raw socket
	var rawErr error
	n.fanout.Lock()
	to := n.targets[:0]
	if hooks != nil {
		watched = targetPool.Get().(*[]*Socket)
		to = (*watched)[:0]
	}
	to = n.rooms.selectSockets(b.Opts, n, to)
	for _, s := range to {
		if s.raw != nil {
			if raw == nil && rawErr == nil {
				var msg engineio.Message
				if msg, rawErr = rawMessage(b.Data, b.Attachments); rawErr != nil {
					n.srv.log.Warn("socketio: a broadcast has no raw form", "nsp", n.name, "err", rawErr)
				} else {
					raw = []engineio.Message{msg}
				}
			}
			if raw != nil {
				s.raw.conn.Send(raw...)
			}
			continue
		}
		if fl := s.floor.Load(); fl != nil && offset != "" {
			if !offsetAfter(offset, *fl) {
				continue // replayed already
			}
			s.floor.Store(nil)
		}
		f := frames
		if offset != "" && s.pid != "" {
			if offsetFrames == nil {
				offsetFrames = withOffset(b.Data, b.Attachments, n.name, offset)
				n.srv.engine.PrepareBroadcast(offsetFrames)
			}
			f = offsetFrames
		}
		if s.replaying.Load() && s.hold(f, offset) {
			continue
		}
		s.client.conn.Send(f...)
	}
	count := len(to)
	if watched == nil {
		clear(to)
		n.targets = to
	}
	n.fanout.Unlock()
	n.srv.opts.Observer.Broadcast(count)
	if watched != nil {
		notifyOutgoing(hooks, b.Data, b.Attachments, to)
		clear(to)
		*watched = to[:0]
		targetPool.Put(watched)
	}
}

// hold keeps a delivery for after the socket's restoration, unless that
// has just ended.
func (s *Socket) hold(frames []engineio.Message, offset string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.replaying.Load() {
		return false
	}
	s.pending = append(s.pending, pendingDelivery{frames, offset})
	return true
}
