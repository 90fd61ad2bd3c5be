package wsconn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"sync"
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
//
// Read through the poller (see Conn.Serve), a Reader holds nothing of
// gobwas/ws between messages either: each batch of whole messages is read
// with a reading state from a pool.
type Reader struct {
	conn    io.Reader
	max     int64
	reply   io.Writer
	onPong  func()
	deflate bool
	st      *readState // the goroutine path's, kept; nil once polled
}

// readState is the gobwas/ws machinery that reads one connection's frames.
type readState struct {
	rd      wsutil.Reader
	ctl     wsutil.ControlHandler
	inflate wsflate.MessageState
	exts    []wsutil.RecvExtension
	onCtl   wsutil.FrameHandlerFunc // answers control frames inside a message
	src     bytes.Reader            // what feed hands over
	m       *Reader                 // whose messages it reads now
}

func newReadState() *readState {
	st := &readState{}
	// RSV1 is the extension's; the other two must stay clear.
	st.exts = []wsutil.RecvExtension{&st.inflate, wsutil.RecvExtensionFunc(noOtherRsv)}
	st.onCtl = func(h ws.Header, body io.Reader) error {
		st.m.pong(h)
		return wsutil.ControlHandler{Src: body, Dst: st.m.reply, State: ws.StateServerSide, DisableSrcCiphering: true}.Handle(h)
	}
	return st
}

// bind readies st to read m's messages from src, from a clean state:
// nothing of what it read before, for whichever connection, remains.
func (st *readState) bind(m *Reader, src io.Reader) {
	st.m = m
	st.inflate = wsflate.MessageState{}
	st.rd = wsutil.Reader{Source: src, State: ws.StateServerSide, CheckUTF8: !m.deflate,
		MaxMessageSize: m.max, OnIntermediate: st.onCtl}
	if m.deflate {
		st.rd.State |= ws.StateExtended
		st.rd.Extensions = st.exts
	}
	st.ctl = wsutil.ControlHandler{Src: &st.rd, Dst: m.reply, State: ws.StateServerSide, DisableSrcCiphering: true}
}

var readStates = sync.Pool{New: func() any { return newReadState() }}

// NewReader returns a reader of messages of at most max bytes from conn,
// inflated first when deflate (permessage-deflate was agreed, see Upgrade)
// is set. Pings and close frames are answered on reply, which must write
// each frame whole (Writer.Write does); onPong, when not nil, is called
// for every pong.
func NewReader(conn io.Reader, max int64, reply io.Writer, onPong func(), deflate bool) *Reader {
	m := &Reader{conn: conn, max: max, reply: reply, onPong: onPong, deflate: deflate}
	m.st = newReadState()
	m.st.bind(m, conn)
	return m
}

func (m *Reader) pong(h ws.Header) {
	if h.OpCode == ws.OpPong && m.onPong != nil {
		m.onPong()
	}
}

// Next returns the next text or binary message.
func (m *Reader) Next() (ws.OpCode, []byte, error) { return m.st.next() }

func (st *readState) next() (ws.OpCode, []byte, error) {
	m := st.m
	for {
		h, err := st.rd.NextFrame()
		if err != nil {
			return 0, nil, err
		}
		if h.OpCode.IsControl() {
			m.pong(h)
			if err := st.ctl.Handle(h); err != nil {
				return 0, nil, err
			}
			continue
		}
		var buf []byte
		if m.deflate && st.inflate.IsCompressed() {
			buf, err = inflateMessage(nil, &st.rd, m.max)
		} else {
			// The first frame's length is the whole message unless it
			// is fragmented; Read goes on through continuation frames.
			buf, err = appendAll(make([]byte, 0, h.Length), &st.rd, m.max)
		}
		if err != nil {
			return 0, nil, err
		}
		if m.deflate && h.OpCode == ws.OpText && !utf8.Valid(buf) {
			return 0, nil, wsutil.ErrInvalidUTF8
		}
		return h.OpCode, buf, nil
	}
}

// polled makes the reader read what feed hands it instead of its
// connection.
func (m *Reader) polled() { m.st = nil }

// feed reads the whole messages at the start of data, calling onMessage
// for each until it returns false, and returns the start of an unfinished
// message that follows them (a slice of data), whether reading goes on,
// and an error that ends the connection.
func (m *Reader) feed(data []byte, onMessage func(op ws.OpCode, data []byte) bool) (rest []byte, more bool, err error) {
	end, scanErr := wholeMessages(data, m.max, m.deflate)
	if end > 0 {
		st := readStates.Get().(*readState)
		st.src.Reset(data[:end])
		st.bind(m, &st.src)
		more, err = st.feed(onMessage)
		st.src.Reset(nil)
		st.m, st.rd, st.ctl = nil, wsutil.Reader{}, wsutil.ControlHandler{}
		readStates.Put(st)
		if err != nil || !more {
			return nil, false, err
		}
	}
	if scanErr != nil {
		return nil, false, scanErr
	}
	return data[end:], true, nil
}

// feed reads every message in st.src.
func (st *readState) feed(onMessage func(op ws.OpCode, data []byte) bool) (bool, error) {
	for st.src.Len() > 0 {
		op, msg, err := st.next()
		if err == io.EOF && st.src.Len() == 0 {
			break // control frames only
		}
		if err != nil {
			return false, err
		}
		if !onMessage(op, msg) {
			return false, nil
		}
	}
	return true, nil
}

// wholeMessages returns the length of the longest start of b made of whole
// frames that end a message, a control frame outside a fragmented message
// included: what a Reader can read without waiting for more. Each frame's
// header is checked as soon as it is in b, as a Reader would check it
// (extended: permessage-deflate was agreed, so RSV1 may be set), and a
// frame that takes its message past max fails with ErrMessageTooLarge
// then: no connection makes the server buffer more than max bytes and a
// few headers.
func wholeMessages(b []byte, max int64, extended bool) (int, error) {
	end, off := 0, 0
	var size int64 // of the message so far
	inMessage := false
	for len(b)-off >= 2 {
		h0, h1 := b[off], b[off+1]
		h := ws.Header{
			Fin:    h0&0x80 != 0,
			Rsv:    (h0 >> 4) & 0x7,
			OpCode: ws.OpCode(h0 & 0x0f),
			Masked: h1&0x80 != 0,
			Length: int64(h1 & 0x7f),
		}
		hl := 2
		switch h.Length {
		case 126:
			hl = 4
			if len(b)-off < hl {
				return end, nil
			}
			h.Length = int64(binary.BigEndian.Uint16(b[off+2:]))
		case 127:
			hl = 10
			if len(b)-off < hl {
				return end, nil
			}
			u := binary.BigEndian.Uint64(b[off+2:])
			if u>>63 != 0 {
				return end, ws.ErrHeaderLengthMSB
			}
			h.Length = int64(u)
		}
		if h.Masked {
			hl += 4
		}
		state := ws.StateServerSide
		if inMessage {
			state |= ws.StateFragmented
		}
		if extended {
			state |= ws.StateExtended
			if h.Rsv&^ws.Rsv(true, false, false) != 0 {
				return end, ws.ErrProtocolNonZeroRsv
			}
		}
		if err := ws.CheckHeader(h, state); err != nil {
			return end, err
		}
		if !h.OpCode.IsControl() {
			if size += h.Length; size > max {
				return end, wsutil.ErrMessageTooLarge
			}
		}
		if int64(len(b)-off-hl) < h.Length {
			return end, nil
		}
		off += hl + int(h.Length)
		switch {
		case h.OpCode.IsControl():
			if !inMessage {
				end = off
			}
		case h.Fin:
			inMessage, size = false, 0
			end = off
		default:
			inMessage = true
		}
	}
	return end, nil
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
