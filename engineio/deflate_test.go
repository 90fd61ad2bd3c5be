package engineio

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"

	"siogo/internal/testutil"
)

// Offers of permessage-deflate as clients make them.
var (
	// Chromium, and the ws package that Node.js clients use.
	browserOffer = httphead.NewOption("permessage-deflate", map[string]string{"client_max_window_bits": ""})
	// A client that needs a small server window, which compress/flate
	// cannot give.
	smallWindowOffer = httphead.NewOption("permessage-deflate", map[string]string{"server_max_window_bits": "10"})
)

// deflateClient is the client end of a WebSocket that may have agreed on
// permessage-deflate.
type deflateClient struct {
	conn     net.Conn
	r        io.Reader
	accepted []httphead.Option
}

func dialDeflate(t *testing.T, u string, offers ...httphead.Option) *deflateClient {
	t.Helper()
	conn, br, hs, err := ws.Dialer{Timeout: 5 * time.Second, Extensions: offers}.Dial(testCtx(t), u)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &deflateClient{conn: conn, r: conn, accepted: hs.Extensions}
	if br != nil {
		c.r = io.MultiReader(br, conn)
	}
	return c
}

// next returns the next data frame's header and its payload, inflated when
// RSV1 is set.
func (c *deflateClient) next(t *testing.T) (ws.Header, []byte) {
	t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		f, err := testutil.ReadFrame(c.r, 1<<20)
		if err != nil {
			t.Fatalf("reading a frame: %v", err)
		}
		if f.Header.OpCode.IsControl() {
			if f.Header.OpCode == ws.OpClose {
				t.Fatalf("closed by the server: %q", f.Payload)
			}
			continue
		}
		if f.Header.Rsv&0x4 != 0 {
			if f, err = wsflate.DecompressFrame(f); err != nil {
				t.Fatalf("inflating: %v", err)
			}
			f.Header.Rsv = ws.Rsv(true, false, false)
		}
		return f.Header, f.Payload
	}
}

// send writes one masked message, compressed (RSV1) when compress is set.
func (c *deflateClient) send(t *testing.T, op ws.OpCode, payload []byte, compress bool) {
	t.Helper()
	f := ws.NewFrame(op, true, bytes.Clone(payload))
	if compress {
		var err error
		if f, err = wsflate.CompressFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := ws.WriteFrame(c.conn, ws.MaskFrameInPlace(f)); err != nil {
		t.Fatal(err)
	}
}

// closeCode waits for the server's close frame and returns its code.
func (c *deflateClient) closeCode(t *testing.T) ws.StatusCode {
	t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		f, err := testutil.ReadFrame(c.r, 1<<20)
		if err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		if f.Header.OpCode == ws.OpClose {
			code, _ := ws.ParseCloseFrameData(f.Payload)
			return code
		}
	}
}

func TestPerMessageDeflateNegotiation(t *testing.T) {
	// No context takeover either way, the default window sizes.
	const agreed = "permessage-deflate{ServerNoContextTakeover:true ClientNoContextTakeover:true ServerMaxWindowBits:0 ClientMaxWindowBits:0}"
	on := startEcho(t, Config{PerMessageDeflate: true})
	off := startEcho(t, Config{})
	for _, c := range []struct {
		name  string
		url   string
		offer []httphead.Option
		want  string
	}{
		{"browser offer", on.url, []httphead.Option{browserOffer}, agreed},
		{"no-context-takeover offer", on.url, []httphead.Option{wsflate.DefaultParameters.Option()}, agreed},
		{"small server window", on.url, []httphead.Option{smallWindowOffer}, ""},
		{"small window, then the browser's", on.url, []httphead.Option{smallWindowOffer, browserOffer}, agreed},
		{"no offer", on.url, nil, ""},
		{"deflate off", off.url, []httphead.Option{browserOffer}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, via := range []string{"handshake", "upgrade"} {
				u := testutil.WSURL(testutil.EIOURL(c.url, 4, "websocket", ""))
				if via == "upgrade" {
					p, err := testutil.DialEIO(testCtx(t), c.url, 4, "polling", nil)
					if err != nil {
						t.Fatal(err)
					}
					u = testutil.WSURL(testutil.EIOURL(c.url, 4, "websocket", p.SID()))
				}
				cl := dialDeflate(t, u, c.offer...)
				var got []string
				for _, o := range cl.accepted {
					var p wsflate.Parameters
					if err := p.Parse(o); err != nil {
						t.Fatalf("%s: %v", via, err)
					}
					got = append(got, fmt.Sprintf("%s%+v", o.Name, p))
				}
				if strings.Join(got, ",") != c.want {
					t.Errorf("%s: agreed on %q, want %q", via, got, c.want)
				}
			}
		})
	}
}

// TestPerMessageDeflateFrames: with the extension agreed, messages from the
// threshold up go out compressed (RSV1) in both protocol revisions, smaller
// ones as they are; compressed messages from the client are inflated.
func TestPerMessageDeflateFrames(t *testing.T) {
	const threshold = 64
	e := startEcho(t, Config{PerMessageDeflate: true, PerMessageDeflateThreshold: threshold})
	long := "4" + strings.Repeat("안녕하세요, chat! ", 20)
	bin := bytes.Repeat([]byte{1, 2, 3, 4}, 64)
	for _, protocol := range []int{3, 4} {
		t.Run(fmt.Sprintf("EIO%d", protocol), func(t *testing.T) {
			c := dialDeflate(t, testutil.WSURL(testutil.EIOURL(e.url, protocol, "websocket", "")), browserOffer)
			if _, open := c.next(t); string(open[:1]) != "0" {
				t.Fatalf("open packet %q", open)
			}
			binFrame := bin
			if protocol == 3 {
				binFrame = append([]byte{4}, bin...)
			}
			for _, m := range []struct {
				op         ws.OpCode
				payload    []byte
				compressed bool // by the client
				wantRSV1   bool
			}{
				{ws.OpText, []byte("4short"), false, false},
				{ws.OpText, []byte(strings.Repeat("4", threshold-1)), false, false},
				{ws.OpText, []byte(strings.Repeat("4", threshold)), false, true},
				{ws.OpText, []byte(long), false, true},
				{ws.OpText, []byte(long), true, true},
				{ws.OpText, []byte("4small but compressed"), true, false},
				{ws.OpBinary, binFrame, true, true},
				{ws.OpBinary, binFrame, false, true},
			} {
				c.send(t, m.op, m.payload, m.compressed)
				h, got := c.next(t)
				if h.OpCode != m.op || !bytes.Equal(got, m.payload) {
					t.Errorf("%d bytes (compressed %v): echo %v %q, want %v %q", len(m.payload), m.compressed, h.OpCode, got, m.op, m.payload)
				}
				if rsv1 := h.Rsv&0x4 != 0; rsv1 != m.wantRSV1 {
					t.Errorf("%d-byte payload: RSV1 %v, want %v", len(m.payload), rsv1, m.wantRSV1)
				}
			}
		})
	}
}

// TestPerMessageDeflateBadInput: a compressed message that inflates past
// the payload limit, inflates to invalid UTF-8 text, is not deflate data, or
// sets a reserved bit other than RSV1 closes that session only.
func TestPerMessageDeflateBadInput(t *testing.T) {
	e := startEcho(t, Config{PerMessageDeflate: true, MaxPayload: 1000})
	bystander := dialDeflate(t, testutil.WSURL(testutil.EIOURL(e.url, 4, "websocket", "")), browserOffer)
	bystander.next(t)
	for _, c := range []struct {
		name  string
		frame func() ws.Frame
		code  ws.StatusCode
	}{
		{"inflates past the limit", func() ws.Frame {
			f, _ := wsflate.CompressFrame(ws.NewTextFrame([]byte("4" + strings.Repeat("x", 100_000))))
			return f
		}, ws.StatusMessageTooBig},
		{"invalid UTF-8", func() ws.Frame {
			f, _ := wsflate.CompressFrame(ws.NewTextFrame([]byte("4\xff\xfe")))
			return f
		}, ws.StatusInvalidFramePayloadData},
		{"not deflate data", func() ws.Frame {
			f := ws.NewTextFrame([]byte{0xff, 0xff, 0xff, 0xff})
			f.Header.Rsv = ws.Rsv(true, false, false)
			return f
		}, 0},
		{"RSV2", func() ws.Frame {
			f := ws.NewTextFrame([]byte("4x"))
			f.Header.Rsv = ws.Rsv(false, true, false)
			return f
		}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := dialDeflate(t, testutil.WSURL(testutil.EIOURL(e.url, 4, "websocket", "")), browserOffer)
			_, open := cl.next(t)
			sid := open[len(`0{"sid":"`) : len(`0{"sid":"`)+20]
			if err := ws.WriteFrame(cl.conn, ws.MaskFrameInPlace(c.frame())); err != nil {
				t.Fatal(err)
			}
			if c.code != 0 {
				if code := cl.closeCode(t); code != c.code {
					t.Errorf("close code %d, want %d", code, c.code)
				}
			}
			if r := e.closeReason(t, string(sid)); r == "" {
				t.Errorf("session not closed")
			}
		})
	}
	bystander.send(t, ws.OpText, []byte("4still fine"), true)
	if _, got := bystander.next(t); string(got) != "4still fine" {
		t.Errorf("bystander echo %q", got)
	}
}

// TestBroadcastDeflatedOnce sends one prepared broadcast to many sessions of
// both revisions, some with permessage-deflate and some without: each
// payload variant is compressed once, every deflate session gets it
// compressed and every other session gets it plain. An unprepared message
// is compressed by each session.
func TestBroadcastDeflatedOnce(t *testing.T) {
	e := startEcho(t, Config{PerMessageDeflate: true})
	type member struct {
		c        *deflateClient
		protocol int
		deflate  bool
	}
	var members []member
	for i := range 12 {
		protocol := 3 + i%2
		var offers []httphead.Option
		if i%3 != 0 {
			offers = []httphead.Option{browserOffer}
		}
		c := dialDeflate(t, testutil.WSURL(testutil.EIOURL(e.url, protocol, "websocket", "")), offers...)
		c.next(t)
		members = append(members, member{c, protocol, len(offers) > 0})
	}
	sessions := func() []*Session {
		var all []*Session
		for id := range e.sessionIDs() {
			all = append(all, e.srv.session(id))
		}
		return all
	}

	text := []byte(`2["clientReceiver",{"clientID":1,"message":"` + strings.Repeat("안녕하세요 ", 200) + `"}]`)
	bin := bytes.Repeat([]byte("binary attachment "), 100)
	for _, c := range []struct {
		name     string
		prepared bool
		msg      Message
		want     int64 // compressions
	}{
		{"text broadcast", true, Message{Data: text}, 1},
		{"binary broadcast", true, Message{Data: bin, Binary: true}, 2}, // EIO3 and EIO4 frames differ
		{"unprepared text", false, Message{Data: text}, 8},              // one per deflate session
		{"small broadcast", true, Message{Data: []byte(`2["hi"]`)}, 0},  // under the threshold
	} {
		t.Run(c.name, func(t *testing.T) {
			msgs := []Message{c.msg}
			if c.prepared {
				e.srv.PrepareBroadcast(msgs)
			}
			before := deflations.Load()
			for _, s := range sessions() {
				if err := s.Send(msgs...); err != nil {
					t.Fatal(err)
				}
			}
			for i, m := range members {
				h, got := m.c.next(t)
				want := c.msg.Data
				switch {
				case !c.msg.Binary:
					want = append([]byte("4"), want...)
				case m.protocol == 3:
					want = append([]byte{4}, want...)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("member %d: got %d bytes, want %d", i, len(got), len(want))
				}
				wantRSV1 := m.deflate && len(want) >= 1024
				if rsv1 := h.Rsv&0x4 != 0; rsv1 != wantRSV1 {
					t.Errorf("member %d (EIO%d, deflate %v): RSV1 %v, want %v", i, m.protocol, m.deflate, rsv1, wantRSV1)
				}
			}
			if n := deflations.Load() - before; n != c.want {
				t.Errorf("compressed %d times, want %d", n, c.want)
			}
		})
	}
}

// TestPrepareBroadcastOff: with permessage-deflate off, preparing a
// broadcast leaves its messages untouched.
func TestPrepareBroadcastOff(t *testing.T) {
	srv := NewServer(Config{}, func(*Session) Handler { return nil })
	msgs := []Message{{Data: bytes.Repeat([]byte("x"), 4096)}}
	srv.PrepareBroadcast(msgs)
	if msgs[0].shared != nil {
		t.Errorf("a message was prepared for compression that is off")
	}
	if n := testing.AllocsPerRun(100, func() { srv.PrepareBroadcast(msgs) }); n != 0 {
		t.Errorf("PrepareBroadcast allocates %v times with compression off", n)
	}
}
