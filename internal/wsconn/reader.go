package wsconn

import (
	"errors"
	"io"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"github.com/gobwas/ws/wsutil"
)

// Reader reads whole messages from a client's connection with gobwas/ws's
// wsutil.Reader, which reassembles fragments, checks frame headers, the
// message size and UTF-8, and hands control frames to a
// wsutil.ControlHandler that answers them. It keeps no buffer between
// messages. With permessage-deflate, a compressed message is inflated
// through a pooled decompressor, and text is checked for UTF-8 once whole,
// since the frames carry compressed bytes.
type Reader struct {
	rd      wsutil.Reader
	ctl     wsutil.ControlHandler
	max     int64
	deflate *wsflate.MessageState // nil without permessage-deflate
	onPong  func()
}

// NewReader returns a reader of messages of at most max bytes from conn,
// inflated first when deflate (permessage-deflate was agreed, see Upgrade)
// is set. Pings and close frames are answered on reply, which must write
// each frame whole (Writer.Write does); onPong, when not nil, is called
// for every pong.
func NewReader(conn io.Reader, max int64, reply io.Writer, onPong func(), deflate bool) *Reader {
	m := &Reader{max: max, onPong: onPong}
	m.rd = wsutil.Reader{Source: conn, State: ws.StateServerSide, CheckUTF8: !deflate, MaxMessageSize: max}
	if deflate {
		m.deflate = new(wsflate.MessageState)
		m.rd.State |= ws.StateExtended
		// RSV1 is the extension's; the other two must stay clear.
		m.rd.Extensions = []wsutil.RecvExtension{m.deflate, wsutil.RecvExtensionFunc(noOtherRsv)}
	}
	m.ctl = wsutil.ControlHandler{Src: &m.rd, Dst: reply, State: ws.StateServerSide, DisableSrcCiphering: true}
	m.rd.OnIntermediate = func(h ws.Header, body io.Reader) error {
		m.pong(h)
		return wsutil.ControlHandler{Src: body, Dst: reply, State: ws.StateServerSide, DisableSrcCiphering: true}.Handle(h)
	}
	return m
}

func (m *Reader) pong(h ws.Header) {
	if h.OpCode == ws.OpPong && m.onPong != nil {
		m.onPong()
	}
}

// Next returns the next text or binary message.
func (m *Reader) Next() (ws.OpCode, []byte, error) {
	for {
		h, err := m.rd.NextFrame()
		if err != nil {
			return 0, nil, err
		}
		if h.OpCode.IsControl() {
			m.pong(h)
			if err := m.ctl.Handle(h); err != nil {
				return 0, nil, err
			}
			continue
		}
		var buf []byte
		if m.deflate != nil && m.deflate.IsCompressed() {
			buf, err = inflateMessage(nil, &m.rd, m.max)
		} else {
			// The first frame's length is the whole message unless it
			// is fragmented; Read goes on through continuation frames.
			buf, err = appendAll(make([]byte, 0, h.Length), &m.rd, m.max)
		}
		if err != nil {
			return 0, nil, err
		}
		if m.deflate != nil && h.OpCode == ws.OpText && !utf8.Valid(buf) {
			return 0, nil, wsutil.ErrInvalidUTF8
		}
		return h.OpCode, buf, nil
	}
}

// CloseFor says how an error from Reader.Next ends a connection: the
// reason, and the close code to send the client, or 0 when there is no one
// to tell (the client closed the connection or it failed).
func CloseFor(err error) (reason string, code ws.StatusCode) {
	var closed wsutil.ClosedError
	switch {
	case errors.Is(err, wsutil.ErrMessageTooLarge):
		return "message too big", ws.StatusMessageTooBig
	case errors.Is(err, wsutil.ErrInvalidUTF8):
		return "invalid UTF-8", ws.StatusInvalidFramePayloadData
	case errors.Is(err, io.EOF), errors.As(err, &closed):
		return "transport close", 0
	}
	return "transport error", 0
}
