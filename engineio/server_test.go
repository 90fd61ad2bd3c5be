package engineio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"siogo/internal/testutil"
)

// Wire-level tests of the server over real HTTP and WebSocket connections,
// driven by a hand-written client (testutil.EIOClient) so that every byte on
// the wire is the test's choice.

// echoHandler sends every message back, text as text and binary as binary,
// and reports how its session ended.
type echoHandler struct {
	s      *Session
	closed chan string
}

func (e *echoHandler) OnMessage(data []byte, binary bool) {
	e.s.Send(Message{Data: bytes.Clone(data), Binary: binary})
}

func (e *echoHandler) OnClose(reason string) { e.closed <- reason }

// echoServer is an Engine.IO echo server on a loopback httptest server.
type echoServer struct {
	srv *Server
	url string // the endpoint, ending in /engine.io/

	mu       sync.Mutex
	sessions map[string]*echoHandler
}

func startEcho(t *testing.T, cfg Config) *echoServer {
	t.Helper()
	e := &echoServer{sessions: make(map[string]*echoHandler)}
	e.srv = NewServer(cfg, func(s *Session) Handler {
		h := &echoHandler{s: s, closed: make(chan string, 1)}
		e.mu.Lock()
		e.sessions[s.ID()] = h
		e.mu.Unlock()
		return h
	})
	mux := http.NewServeMux()
	mux.Handle("/engine.io/", e.srv)
	ts := httptest.NewServer(mux)
	// Cleanups run last-in first-out: sessions end (answering pending
	// polls) before the HTTP server waits for its requests.
	t.Cleanup(ts.Close)
	t.Cleanup(func() {
		// Close the sessions without waiting for clients that are gone.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		e.srv.Close(ctx)
	})
	e.url = ts.URL + "/engine.io/"
	return e
}

// closeReason waits for the session's handler to hear that it ended.
func (e *echoServer) closeReason(t *testing.T, sid string) string {
	t.Helper()
	e.mu.Lock()
	h := e.sessions[sid]
	e.mu.Unlock()
	if h == nil {
		t.Fatalf("no session %q was opened", sid)
	}
	select {
	case r := <-h.closed:
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("session %s did not close", sid)
		return ""
	}
}

func (e *echoServer) dial(t *testing.T, protocol int, transport string) *testutil.EIOClient {
	t.Helper()
	c, err := testutil.DialEIO(testCtx(t), e.url, protocol, transport, nil)
	if err != nil {
		t.Fatalf("EIO%d %s handshake: %v", protocol, transport, err)
	}
	t.Cleanup(func() {
		if ws := c.WS(); ws != nil {
			ws.Close()
		}
	})
	return c
}

// testCtx bounds a test's network waits.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// httpDo sends one request and returns the response with its body read.
func httpDo(t *testing.T, method, url, contentType string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return resp, string(b)
}

// wantError checks an Engine.IO error response: the status, and a JSON body
// {"code":code,"message":message}.
func wantError(t *testing.T, what string, resp *http.Response, body string, status, code int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("%s: status %d, want %d (body %q)", what, resp.StatusCode, status, body)
		return
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	var got struct {
		Code    *int    `json:"code"`
		Message *string `json:"message"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || got.Code == nil || got.Message == nil {
		t.Errorf("%s: body %q is not {code, message}", what, body)
		return
	}
	if *got.Code != code {
		t.Errorf("%s: code %d (%q), want %d", what, *got.Code, *got.Message, code)
	}
	if code < len(codeMessages) && status != http.StatusRequestEntityTooLarge && *got.Message != codeMessages[code] {
		t.Errorf("%s: message %q, want %q", what, *got.Message, codeMessages[code])
	}
}

// handshakeJSON is the reference server's handshake with its default
// settings and a 20-character sid.
const handshakeJSON = `{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`

// capturedPlaceholder is the text part of a server emit of one Buffer.
const capturedPlaceholder = `51-["bin",{"_placeholder":true,"num":0}]`

// capturedV3Binary is the binary form of the same emit, as captured from the
// reference server.
var capturedV3Binary = append(append([]byte{0x00, 0x04, 0x01, 0xff}, "4"+capturedPlaceholder...),
	0x01, 0x04, 0xff, 0x04, 0x01, 0x02, 0x03)

func TestHandshakeShape(t *testing.T) {
	const sid = "lv_VI97HAXpY6yYWAAAC"
	fixedID := func() string { return sid }
	for _, c := range []struct {
		name       string
		protocol   int
		transport  string
		transports []string
		want       string
	}{
		{"EIO4 polling", 4, "polling", nil, "0" + handshakeJSON},
		{"EIO3 polling", 3, "polling", nil, "118:0" + handshakeJSON},
		{"EIO4 websocket", 4, "websocket", nil, "0" + strings.Replace(handshakeJSON, `["websocket"]`, `[]`, 1)},
		{"EIO3 websocket", 3, "websocket", nil, "0" + strings.Replace(handshakeJSON, `["websocket"]`, `[]`, 1)},
		{"EIO4 polling without websocket", 4, "polling", []string{"polling"}, "0" + strings.Replace(handshakeJSON, `["websocket"]`, `[]`, 1)},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := startEcho(t, Config{NewID: fixedID, Transports: c.transports})
			u := testutil.EIOURL(e.url, c.protocol, c.transport, "")
			if c.transport == "websocket" {
				conn, err := testutil.DialWS(testCtx(t), testutil.WSURL(u))
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				op, msg, err := conn.ReadMessage(testCtx(t))
				if err != nil || op != ws.OpText || string(msg) != c.want {
					t.Fatalf("first frame %v %q (%v), want text %q", op, msg, err, c.want)
				}
				return
			}
			resp, body := httpDo(t, http.MethodGet, u, "", nil)
			if resp.StatusCode != http.StatusOK || body != c.want {
				t.Fatalf("handshake: %d %q, want 200 %q", resp.StatusCode, body, c.want)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=UTF-8" {
				t.Errorf("Content-Type %q, want text/plain; charset=UTF-8", ct)
			}
		})
	}
}

func TestRequestErrors(t *testing.T) {
	e := startEcho(t, Config{})
	live := e.dial(t, 4, "polling")
	pollingOnly := startEcho(t, Config{Transports: []string{"polling"}})
	for _, c := range []struct {
		name   string
		method string
		url    string
		code   int
	}{
		{"unknown sid GET", "GET", e.url + "?EIO=4&transport=polling&sid=nope", codeUnknownSID},
		{"unknown sid POST", "POST", e.url + "?EIO=4&transport=polling&sid=nope", codeUnknownSID},
		{"unknown sid EIO3", "GET", e.url + "?EIO=3&transport=polling&sid=nope", codeUnknownSID},
		{"missing EIO", "GET", e.url + "?transport=polling", codeUnsupportedVersion},
		{"garbage EIO", "GET", e.url + "?EIO=abc&transport=polling", codeUnsupportedVersion},
		{"EIO 5", "GET", e.url + "?EIO=5&transport=polling", codeUnsupportedVersion},
		{"EIO 2", "GET", e.url + "?EIO=2&transport=polling", codeUnsupportedVersion},
		{"EIO 04", "GET", e.url + "?EIO=04&transport=polling", codeUnsupportedVersion},
		{"missing transport", "GET", e.url + "?EIO=4", codeUnknownTransport},
		{"unknown transport", "GET", e.url + "?EIO=4&transport=flashsocket", codeUnknownTransport},
		{"disabled transport", "GET", pollingOnly.url + "?EIO=4&transport=websocket", codeUnknownTransport},
		{"POST handshake", "POST", e.url + "?EIO=4&transport=polling", codeBadHandshakeMethod},
		{"PUT handshake", "PUT", e.url + "?EIO=4&transport=polling", codeBadHandshakeMethod},
		{"websocket without upgrade", "GET", e.url + "?EIO=4&transport=websocket", codeBadRequest},
		{"PUT on a session", "PUT", live.PollURL(), codeBadRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := httpDo(t, c.method, c.url, "", strings.NewReader("4x"))
			wantError(t, c.name, resp, body, http.StatusBadRequest, c.code)
		})
	}
	// None of that disturbed the live session.
	if err := live.Send(testCtx(t), "4still here"); err != nil {
		t.Fatal(err)
	}
	if p, err := live.Next(testCtx(t)); err != nil || p.Text() != "4still here" {
		t.Fatalf("echo after the bad requests: %v %v", p, err)
	}
}

func TestEchoRoundTrip(t *testing.T) {
	e := startEcho(t, Config{})
	msgs := []string{"4hello", "4héllo €😀", "4"}
	for _, protocol := range []int{3, 4} {
		for _, transport := range []string{"polling", "websocket"} {
			t.Run(fmt.Sprintf("EIO%d/%s", protocol, transport), func(t *testing.T) {
				c := e.dial(t, protocol, transport)
				ctx := testCtx(t)
				if err := c.Send(ctx, msgs...); err != nil {
					t.Fatal(err)
				}
				if err := c.SendPackets(ctx, testutil.EIOPacket{Type: '4', Data: []byte{0, 1, 0xff}, Binary: true}); err != nil {
					t.Fatal(err)
				}
				for _, want := range append(msgs, "bin") {
					p, err := c.Next(ctx)
					if err != nil {
						t.Fatalf("waiting for %q: %v", want, err)
					}
					if want == "bin" {
						if !p.Binary || !bytes.Equal(p.Data, []byte{0, 1, 0xff}) {
							t.Fatalf("got %v, want binary 00 01 ff", p)
						}
						continue
					}
					if p.Binary || p.Text() != want {
						t.Fatalf("got %v, want %q", p, want)
					}
				}
			})
		}
	}
}

// TestPollingBinaryForms checks what a polling GET carries when the queue
// holds a text packet and a binary one: the captured bytes of the reference
// server in each form.
func TestPollingBinaryForms(t *testing.T) {
	e := startEcho(t, Config{})
	ctx := testCtx(t)
	for _, c := range []struct {
		name     string
		protocol int
		b64      bool
		post     []byte
		postType string
		wantType string
		want     []byte
	}{
		{"EIO4", 4, false, []byte("4" + capturedPlaceholder + "\x1ebAQID"), "", "text/plain; charset=UTF-8", []byte("4" + capturedPlaceholder + "\x1ebAQID")},
		{"EIO3 binary form", 3, false, capturedV3Binary, "application/octet-stream", "application/octet-stream", capturedV3Binary},
		{"EIO3 b64", 3, true, []byte("41:4" + capturedPlaceholder + "6:b4AQID"), "", "text/plain; charset=UTF-8", []byte("41:4" + capturedPlaceholder + "6:b4AQID")},
	} {
		t.Run(c.name, func(t *testing.T) {
			u := testutil.EIOURL(e.url, c.protocol, "polling", "")
			if c.b64 {
				u += "&b64=1"
			}
			resp, body := httpDo(t, http.MethodGet, u, "", nil)
			pkts, err := testutil.DecodeEIOPayload(c.protocol, resp.Header.Get("Content-Type"), []byte(body))
			if err != nil || len(pkts) != 1 || pkts[0].Type != '0' {
				t.Fatalf("handshake %q: %v", body, err)
			}
			var open testutil.EIOOpen
			json.Unmarshal(pkts[0].Data, &open)
			c2 := &testutil.EIOClient{Endpoint: e.url, Protocol: c.protocol, Transport: "polling", Open: open, HTTP: http.DefaultClient}
			resp, b, err := c2.Post(ctx, c.postType, c.post)
			if err != nil || resp.StatusCode != http.StatusOK || string(b) != "ok" {
				t.Fatalf("POST: %v %v %q", err, resp.Status, b)
			}
			resp, b, err = c2.Get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ct := resp.Header.Get("Content-Type"); ct != c.wantType {
				t.Errorf("Content-Type %q, want %q", ct, c.wantType)
			}
			if !bytes.Equal(b, c.want) {
				t.Errorf("GET body\n% x\nwant\n% x", b, c.want)
			}
		})
	}
}

func TestHeartbeat(t *testing.T) {
	t.Run("EIO4 server pings", func(t *testing.T) {
		e := startEcho(t, Config{PingInterval: 50 * time.Millisecond, PingTimeout: time.Second})
		c := e.dial(t, 4, "polling")
		ctx := testCtx(t)
		for range 3 {
			pkts, err := c.Recv(ctx)
			if err != nil || len(pkts) != 1 || pkts[0].Text() != "2" {
				t.Fatalf("want a ping, got %v (%v)", pkts, err)
			}
			if err := c.Send(ctx, "3"); err != nil {
				t.Fatal(err)
			}
		}
		// Stop answering: the session times out.
		if r := e.closeReason(t, c.SID()); r != "ping timeout" {
			t.Errorf("closed with %q, want ping timeout", r)
		}
	})
	t.Run("EIO3 client pings", func(t *testing.T) {
		e := startEcho(t, Config{PingInterval: 500 * time.Millisecond, PingTimeout: 500 * time.Millisecond})
		c := e.dial(t, 3, "polling")
		ctx := testCtx(t)
		for _, data := range []string{"", "probe", "x"} {
			if err := c.Send(ctx, "2"+data); err != nil {
				t.Fatal(err)
			}
			resp, body, err := c.Get(ctx)
			if err != nil || resp.StatusCode != 200 || string(body) != fmt.Sprintf("%d:3%s", 1+len(data), data) {
				t.Fatalf("pong: %v %q", err, body)
			}
		}
		if r := e.closeReason(t, c.SID()); r != "ping timeout" {
			t.Errorf("closed with %q, want ping timeout", r)
		}
	})
	for _, c := range []struct {
		protocol int
		packet   string
	}{{4, "2"}, {3, "3"}} {
		t.Run(fmt.Sprintf("EIO%d wrong direction %s", c.protocol, c.packet), func(t *testing.T) {
			e := startEcho(t, Config{})
			cl := e.dial(t, c.protocol, "polling")
			if err := cl.Send(testCtx(t), c.packet); err != nil {
				t.Fatal(err)
			}
			if r := e.closeReason(t, cl.SID()); r != "invalid heartbeat direction" {
				t.Errorf("closed with %q, want invalid heartbeat direction", r)
			}
			resp, body, _ := cl.Get(testCtx(t))
			wantError(t, "GET after", resp, string(body), http.StatusBadRequest, codeUnknownSID)
		})
	}
}

// TestConcurrentPolls: of two GETs at once on one session, one is refused
// with 400 and the session is closed, which ends the other with a close
// packet. Which one arrives first does not matter.
func TestConcurrentPolls(t *testing.T) {
	e := startEcho(t, Config{})
	c := e.dial(t, 4, "polling")
	type result struct {
		status int
		body   string
	}
	results := make(chan result, 2)
	for range 2 {
		go func() {
			resp, body, err := c.Get(testCtx(t))
			if err != nil {
				results <- result{0, err.Error()}
				return
			}
			results <- result{resp.StatusCode, string(body)}
		}()
	}
	var got []result
	for range 2 {
		got = append(got, <-results)
	}
	if got[0].status != 200 {
		got[0], got[1] = got[1], got[0]
	}
	if got[0].status != 200 || got[0].body != "1" || got[1].status != 400 || !strings.Contains(got[1].body, `"code":3`) {
		t.Fatalf("two concurrent GETs answered %+v, want one 200 with a close packet and one 400 code 3", got)
	}
	if r := e.closeReason(t, c.SID()); r != "overlap from client" {
		t.Errorf("closed with %q", r)
	}
	resp, body, _ := c.Get(testCtx(t))
	wantError(t, "GET after", resp, string(body), http.StatusBadRequest, codeUnknownSID)
}

// waitFor polls a server-side condition that no event reports.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (e *echoServer) session(t *testing.T, sid string) *Session {
	t.Helper()
	s := e.srv.session(sid)
	if s == nil {
		t.Fatalf("no live session %s", sid)
	}
	return s
}

func TestConcurrentPosts(t *testing.T) {
	e := startEcho(t, Config{})
	c := e.dial(t, 4, "polling")
	sess := e.session(t, c.SID())
	// The first POST sends half its body and stalls.
	pr, pw := io.Pipe()
	first := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(testCtx(t), http.MethodPost, c.PollURL(), pr)
		req.ContentLength = 10
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		first <- err
	}()
	pw.Write([]byte("4hel"))
	waitFor(t, "the first POST to be read", func() bool {
		sess.mu.Lock()
		defer sess.mu.Unlock()
		return sess.poll.posting
	})
	resp, body, err := c.Post(testCtx(t), "", []byte("4second"))
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, "second POST", resp, string(body), http.StatusBadRequest, codeBadRequest)
	if r := e.closeReason(t, c.SID()); r != "data request overlap from client" {
		t.Errorf("closed with %q", r)
	}
	pw.CloseWithError(errors.New("test done"))
	<-first
	resp, body, _ = c.Get(testCtx(t))
	wantError(t, "GET after", resp, string(body), http.StatusBadRequest, codeUnknownSID)
}

func TestOversizedPost(t *testing.T) {
	const limit = 100
	e := startEcho(t, Config{MaxPayload: limit})
	for _, protocol := range []int{3, 4} {
		t.Run(fmt.Sprintf("EIO%d", protocol), func(t *testing.T) {
			c := e.dial(t, protocol, "polling")
			big := testutil.EncodeEIOPayload(protocol, []testutil.EIOPacket{{Type: '4', Data: bytes.Repeat([]byte("x"), 2*limit)}})
			// Announced length.
			resp, body := httpDo(t, http.MethodPost, c.PollURL(), "text/plain", bytes.NewReader(big))
			wantError(t, "POST with Content-Length", resp, body, http.StatusRequestEntityTooLarge, codeBadRequest)
			// Chunked: the limit is found while reading.
			resp, body = httpDo(t, http.MethodPost, c.PollURL(), "text/plain", io.MultiReader(bytes.NewReader(big)))
			wantError(t, "chunked POST", resp, body, http.StatusRequestEntityTooLarge, codeBadRequest)
			// The session goes on.
			ctx := testCtx(t)
			if err := c.Send(ctx, "4after"); err != nil {
				t.Fatal(err)
			}
			if p, err := c.Next(ctx); err != nil || p.Text() != "4after" {
				t.Fatalf("echo after 413: %v %v", p, err)
			}
			// The largest allowed body passes.
			exact := bytes.Repeat([]byte("y"), limit)
			exact[0] = '4'
			if protocol == 3 {
				exact = append([]byte("97:"), exact[:97]...)
			}
			resp, body = httpDo(t, http.MethodPost, c.PollURL(), "text/plain", bytes.NewReader(exact))
			if resp.StatusCode != http.StatusOK || body != "ok" {
				t.Fatalf("POST of exactly %d bytes: %d %q", len(exact), resp.StatusCode, body)
			}
		})
	}
}

func TestUpgrade(t *testing.T) {
	e := startEcho(t, Config{})
	for _, protocol := range []int{3, 4} {
		t.Run(fmt.Sprintf("EIO%d", protocol), func(t *testing.T) {
			ctx := testCtx(t)
			c := e.dial(t, protocol, "polling")
			// A poll is pending while the client probes; the server hands
			// it back with a noop.
			poll := make(chan []testutil.EIOPacket, 1)
			go func() {
				resp, body, err := c.Get(ctx)
				if err != nil || resp.StatusCode != 200 {
					poll <- nil
					return
				}
				pkts, _ := testutil.DecodeEIOPayload(protocol, resp.Header.Get("Content-Type"), body)
				poll <- pkts
			}()
			sess := e.session(t, c.SID())
			waitFor(t, "the poll to be pending", func() bool {
				sess.mu.Lock()
				defer sess.mu.Unlock()
				return sess.poll.waiting
			})
			if err := c.Upgrade(ctx); err != nil {
				t.Fatal(err)
			}
			if pkts := <-poll; len(pkts) != 1 || pkts[0].Text() != "6" {
				t.Errorf("pending poll answered %v, want a noop", pkts)
			}
			if err := c.Send(ctx, "4over ws"); err != nil {
				t.Fatal(err)
			}
			if p, err := c.Next(ctx); err != nil || p.Text() != "4over ws" {
				t.Fatalf("echo over the upgraded socket: %v %v", p, err)
			}
			// Polling is over for this session.
			resp, body, _ := c.Get(ctx)
			wantError(t, "GET after upgrade", resp, string(body), http.StatusBadRequest, codeBadRequest)
			resp, body, _ = c.Post(ctx, "", []byte("4x"))
			wantError(t, "POST after upgrade", resp, string(body), http.StatusBadRequest, codeBadRequest)
			// The session survived all that (TestSecondWebSocket covers a
			// second WebSocket).
			if err := c.Send(ctx, "4still"); err != nil {
				t.Fatal(err)
			}
			if p, err := c.Next(ctx); err != nil || p.Text() != "4still" {
				t.Fatalf("echo at the end: %v %v", p, err)
			}
		})
	}
}

// TestUpgradeProbeGarbage: a probing WebSocket that sends anything but the
// probe and upgrade packets is dropped, and polling carries on.
func TestUpgradeProbeGarbage(t *testing.T) {
	e := startEcho(t, Config{})
	ctx := testCtx(t)
	for _, junk := range []string{"4early", "2notprobe", "9", "", "3probe"} {
		c := e.dial(t, 4, "polling")
		conn, err := testutil.DialWS(ctx, testutil.WSURL(testutil.EIOURL(e.url, 4, "websocket", c.SID())))
		if err != nil {
			t.Fatal(err)
		}
		conn.WriteText([]byte(junk))
		if _, _, err := conn.ReadMessage(ctx); err == nil || isTimeout(err) {
			t.Errorf("probe %q: the WebSocket stayed open (%v)", junk, err)
		}
		conn.Close()
		if err := c.Send(ctx, "4poll on"); err != nil {
			t.Fatalf("after probe %q: %v", junk, err)
		}
		if p, err := c.Next(ctx); err != nil || p.Text() != "4poll on" {
			t.Fatalf("after probe %q: %v %v", junk, p, err)
		}
	}
}

func TestBinaryPostEIO4(t *testing.T) {
	e := startEcho(t, Config{})
	c := e.dial(t, 4, "polling")
	resp, body, err := c.Post(testCtx(t), "application/octet-stream", []byte{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, "binary POST", resp, string(body), http.StatusBadRequest, codeBadRequest)
	if r := e.closeReason(t, c.SID()); r != "invalid content" {
		t.Errorf("closed with %q, want invalid content", r)
	}
	resp, body, _ = c.Get(testCtx(t))
	wantError(t, "GET after", resp, string(body), http.StatusBadRequest, codeUnknownSID)
}

// TestBadPollingPayloads: a POST the codec refuses gets 400 and closes the
// session.
func TestBadPollingPayloads(t *testing.T) {
	e := startEcho(t, Config{})
	for _, c := range []struct {
		name        string
		protocol    int
		contentType string
		body        string
	}{
		{"EIO4 invalid UTF-8", 4, "", "4\xff\xfe"},
		{"EIO4 invalid UTF-8 after a binary packet", 4, "", "bAQID\x1e4\xc3"},
		{"EIO4 unknown type", 4, "", "9"},
		{"EIO4 empty packet", 4, "", "4a\x1e\x1e4b"},
		{"EIO4 bad base64", 4, "", "b!!"},
		{"EIO4 empty body", 4, "", ""},
		{"EIO3 invalid UTF-8", 3, "", "3:4\xff\xfe"},
		{"EIO3 bad length", 3, "", "5:4a"},
		{"EIO3 no length", 3, "", "4a"},
		{"EIO3 split surrogate", 3, "", "2:4😀"},
		{"EIO3 binary form, bad kind", 3, "application/octet-stream", "\x05\x01\xff2"},
		{"EIO3 binary form, truncated", 3, "application/octet-stream", "\x00\x09\xff4"},
		{"EIO3 binary form, invalid UTF-8 in a string packet", 3, "application/octet-stream", "\x00\x03\xff4\xff\xfe"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := e.dial(t, c.protocol, "polling")
			resp, body, err := cl.Post(testCtx(t), c.contentType, []byte(c.body))
			if err != nil {
				t.Fatal(err)
			}
			wantCode := codeBadRequest
			if resp.StatusCode == http.StatusBadRequest {
				// The message says what was wrong; only the code is fixed.
				var got struct{ Code int }
				json.Unmarshal(body, &got)
				if got.Code != wantCode {
					t.Errorf("code %d, want %d", got.Code, wantCode)
				}
			} else {
				t.Fatalf("POST %q: %s %q, want 400", c.body, resp.Status, body)
			}
			if r := e.closeReason(t, cl.SID()); r != "parse error" {
				t.Errorf("closed with %q, want parse error", r)
			}
		})
	}
}

func TestClosePacketOverPolling(t *testing.T) {
	e := startEcho(t, Config{})
	for _, protocol := range []int{3, 4} {
		c := e.dial(t, protocol, "polling")
		if err := c.Send(testCtx(t), "1"); err != nil {
			t.Fatal(err)
		}
		if r := e.closeReason(t, c.SID()); r != "transport close" {
			t.Errorf("EIO%d: closed with %q, want transport close", protocol, r)
		}
		resp, body, _ := c.Get(testCtx(t))
		wantError(t, "GET after close", resp, string(body), http.StatusBadRequest, codeUnknownSID)
	}
}

// TestClosePacketOverWebSocketIgnored: as in the reference server, a close
// packet over WebSocket does not end the session; closing the socket does.
func TestClosePacketOverWebSocketIgnored(t *testing.T) {
	e := startEcho(t, Config{})
	c := e.dial(t, 4, "websocket")
	ctx := testCtx(t)
	if err := c.Send(ctx, "1", "4after close"); err != nil {
		t.Fatal(err)
	}
	if p, err := c.Next(ctx); err != nil || p.Text() != "4after close" {
		t.Fatalf("echo after a close packet: %v %v", p, err)
	}
	c.WS().WriteFrame(ws.MaskFrameInPlace(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))))
	if r := e.closeReason(t, c.SID()); r != "transport close" {
		t.Errorf("closed with %q, want transport close", r)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// wantWSClosed reads until the server ends the connection and returns the
// close code it sent (0 when it closed without a close frame).
func wantWSClosed(t *testing.T, what string, conn *testutil.WSConn) ws.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, _, err := conn.ReadMessage(ctx)
		if err == nil {
			continue // something the server had queued before closing
		}
		if isTimeout(err) {
			t.Fatalf("%s: the server kept the WebSocket open", what)
		}
		var closed wsutil.ClosedError
		if errors.As(err, &closed) {
			return closed.Code
		}
		return 0
	}
}

func TestWebSocketTooBig(t *testing.T) {
	const limit = 100
	e := startEcho(t, Config{MaxPayload: limit})
	for _, protocol := range []int{3, 4} {
		t.Run(fmt.Sprintf("EIO%d", protocol), func(t *testing.T) {
			ctx := testCtx(t)
			c := e.dial(t, protocol, "websocket")
			// Within the limit: echoed.
			ok := "4" + strings.Repeat("a", limit-1)
			if err := c.Send(ctx, ok); err != nil {
				t.Fatal(err)
			}
			if p, err := c.Next(ctx); err != nil || p.Text() != ok {
				t.Fatalf("echo of %d bytes: %v", len(ok), err)
			}
			c.WS().WriteText([]byte("4" + strings.Repeat("b", 2*limit)))
			if code := wantWSClosed(t, "one big frame", c.WS()); code != ws.StatusMessageTooBig {
				t.Errorf("close code %d, want %d", code, ws.StatusMessageTooBig)
			}
			if r := e.closeReason(t, c.SID()); r != "message too big" {
				t.Errorf("closed with %q", r)
			}
			// Fragments that only add up to too much.
			c = e.dial(t, protocol, "websocket")
			for i, fin := range []bool{false, false, true} {
				op := ws.OpContinuation
				if i == 0 {
					op = ws.OpText
				}
				data := []byte(strings.Repeat("c", limit/2))
				data[0] = '4'
				c.WS().WriteFrame(ws.MaskFrameInPlace(ws.NewFrame(op, fin, data)))
			}
			if code := wantWSClosed(t, "fragments", c.WS()); code != ws.StatusMessageTooBig {
				t.Errorf("close code %d, want %d", code, ws.StatusMessageTooBig)
			}
		})
	}
}

// TestWebSocketGarbage sends one malformed thing per connection and checks
// that the server drops that connection while another client carries on.
func TestWebSocketGarbage(t *testing.T) {
	e := startEcho(t, Config{})
	bystander := e.dial(t, 4, "websocket")
	masked := func(op ws.OpCode, fin bool, p string) ws.Frame {
		return ws.MaskFrameInPlace(ws.NewFrame(op, fin, []byte(p)))
	}
	cases := []struct {
		name     string
		protocol int
		send     func(c *testutil.WSConn)
		code     ws.StatusCode // expected close code, or 0 for a plain close
	}{
		{"unknown packet type", 4, func(c *testutil.WSConn) { c.WriteText([]byte("9")) }, 0},
		{"empty text frame", 4, func(c *testutil.WSConn) { c.WriteText(nil) }, 0},
		{"EIO3 binary that is not a message", 3, func(c *testutil.WSConn) { c.WriteBinary([]byte{2, 1}) }, 0},
		{"EIO3 empty binary", 3, func(c *testutil.WSConn) { c.WriteBinary(nil) }, 0},
		{"invalid UTF-8 text", 4, func(c *testutil.WSConn) { c.WriteText([]byte("4\xff\xfe")) }, ws.StatusInvalidFramePayloadData},
		{"EIO3 invalid UTF-8 text", 3, func(c *testutil.WSConn) { c.WriteText([]byte("4abc\xc3")) }, ws.StatusInvalidFramePayloadData},
		{"unmasked frame", 4, func(c *testutil.WSConn) { c.WriteFrame(ws.NewTextFrame([]byte("4x"))) }, 0},
		{"reserved bits", 4, func(c *testutil.WSConn) {
			f := masked(ws.OpText, true, "4x")
			f.Header.Rsv = ws.Rsv(true, false, false)
			c.WriteFrame(f)
		}, 0},
		{"continuation first", 4, func(c *testutil.WSConn) { c.WriteFrame(masked(ws.OpContinuation, true, "4x")) }, 0},
		{"new message inside a fragmented one", 4, func(c *testutil.WSConn) {
			c.WriteFrame(masked(ws.OpText, false, "4a"))
			c.WriteFrame(masked(ws.OpText, true, "4b"))
		}, 0},
		{"fragmented ping", 4, func(c *testutil.WSConn) { c.WriteFrame(masked(ws.OpPing, false, "x")) }, 0},
		{"oversized ping", 4, func(c *testutil.WSConn) { c.WriteFrame(masked(ws.OpPing, true, strings.Repeat("p", 126))) }, 0},
		{"reserved data opcode", 4, func(c *testutil.WSConn) { c.WriteFrame(masked(ws.OpCode(0x3), true, "4x")) }, 0},
		{"reserved control opcode", 4, func(c *testutil.WSConn) {
			c.WriteFrame(masked(ws.OpCode(0xb), true, ""))
			c.WriteText([]byte("4x"))
		}, 0},
		{"HTTP instead of frames", 4, func(c *testutil.WSConn) { c.Conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) }, 0},
		{"truncated frame", 4, func(c *testutil.WSConn) {
			c.Conn.Write([]byte{0x81, 0x85, 1, 2, 3, 4, 'x'})
			c.Conn.(interface{ CloseWrite() error }).CloseWrite()
		}, 0},
		{"huge announced length", 4, func(c *testutil.WSConn) {
			c.Conn.Write([]byte{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4})
		}, ws.StatusMessageTooBig},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := e.dial(t, c.protocol, "websocket")
			c.send(cl.WS())
			code := wantWSClosed(t, c.name, cl.WS())
			if c.code != 0 && code != c.code {
				t.Errorf("close code %d, want %d", code, c.code)
			}
			e.closeReason(t, cl.SID())
			// The bystander is unaffected.
			ctx := testCtx(t)
			if err := bystander.Send(ctx, "4"+c.name); err != nil {
				t.Fatal(err)
			}
			if p, err := bystander.Next(ctx); err != nil || p.Text() != "4"+c.name {
				t.Fatalf("bystander: %v %v", p, err)
			}
		})
	}
	waitFor(t, "only the bystander's session to remain", func() bool { return e.srv.SessionCount() == 1 })
}

// TestWebSocketPing: WebSocket-level pings are answered with pongs carrying
// the same payload, between Engine.IO packets.
func TestWebSocketPing(t *testing.T) {
	e := startEcho(t, Config{})
	c := e.dial(t, 4, "websocket")
	conn := c.WS()
	conn.WriteFrame(ws.MaskFrameInPlace(ws.NewPingFrame([]byte("are you there"))))
	conn.WriteText([]byte("4after ping"))
	ctx := testCtx(t)
	// ReadMessage hides control frames, so read raw frames here.
	if d, ok := ctx.Deadline(); ok {
		conn.SetReadDeadline(d)
	}
	var pong, echo bool
	for !pong || !echo {
		f, err := testutil.ReadFrame(conn, 1<<20)
		if err != nil {
			t.Fatalf("pong %v echo %v: %v", pong, echo, err)
		}
		switch {
		case f.Header.OpCode == ws.OpPong && string(f.Payload) == "are you there":
			pong = true
		case f.Header.OpCode == ws.OpText && string(f.Payload) == "4after ping":
			echo = true
		default:
			t.Fatalf("unexpected frame %v %q", f.Header.OpCode, f.Payload)
		}
	}
}

// TestRelayedPollRetry: the answer to a relayed GET is given again to a
// retry of the same request (same cache-buster t), as a balancer sends when
// the node in the middle died after the answer left; a GET with another t
// gets new packets only.
func TestRelayedPollRetry(t *testing.T) {
	e := startRelayEcho(t)
	c := e.dial(t, 4, "polling")
	get := func(tParam string, relayed bool) string {
		t.Helper()
		_, body := relayRequest(t, http.MethodGet, c.PollURL()+"&t="+tParam, "", relayed)
		return body
	}
	if err := c.Send(testCtx(t), "4hello"); err != nil {
		t.Fatal(err)
	}
	if got := get("aaa", true); got != "4hello" {
		t.Fatalf("relayed GET: %q", got)
	}
	// The retry, directly or through another node, gets the same answer.
	if got := get("aaa", false); got != "4hello" {
		t.Fatalf("retry: %q, want the same answer", got)
	}
	if got := get("aaa", true); got != "4hello" {
		t.Fatalf("second retry: %q, want the same answer", got)
	}
	// A new GET waits for new packets.
	next := make(chan string, 1)
	go func() { next <- get("bbb", false) }()
	waitFor(t, "the new GET to wait", func() bool {
		s := e.srv.session(c.SID())
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.poll.waiting
	})
	if err := c.Send(testCtx(t), "4world"); err != nil {
		t.Fatal(err)
	}
	if got := <-next; got != "4world" {
		t.Fatalf("next GET: %q", got)
	}
	// The client has moved on: the old answer is gone.
	go func() { next <- get("aaa", false) }()
	waitFor(t, "the GET to wait", func() bool {
		s := e.srv.session(c.SID())
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.poll.waiting
	})
	c.Send(testCtx(t), "4again")
	if got := <-next; got != "4again" {
		t.Fatalf("GET with an old t after a newer one: %q", got)
	}
}

// relayRequest sends a polling request to a server of startRelayEcho, as
// relayed by another node or not, and returns the answer's status and body.
func relayRequest(t *testing.T, method, url, body string, relayed bool) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(testCtx(t), method, url, strings.NewReader(body))
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	if relayed {
		req.Header.Set("X-Relayed", "1")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// startRelayEcho starts an echo server that takes a request with an
// X-Relayed header as relayed by another node.
func startRelayEcho(t *testing.T) *echoServer {
	e := &echoServer{sessions: make(map[string]*echoHandler)}
	e.srv = NewServer(Config{}, func(s *Session) Handler {
		h := &echoHandler{s: s, closed: make(chan string, 1)}
		e.mu.Lock()
		e.sessions[s.ID()] = h
		e.mu.Unlock()
		return h
	})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Relayed") != "" {
			r = Relayed(r)
		}
		e.srv.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	e.url = ts.URL + "/engine.io/"
	return e
}

// TestRelayedPostRetry: a retry of a relayed POST (same cache-buster t), as
// a balancer sends when the node in the middle went away before the answer
// came back, is answered "ok" without its packets being handled again, by
// whatever route it comes; a POST with another t is handled.
func TestRelayedPostRetry(t *testing.T) {
	e := startRelayEcho(t)
	c := e.dial(t, 4, "polling")
	post := func(tParam, body string, relayed bool) string {
		t.Helper()
		status, answer := relayRequest(t, http.MethodPost, c.PollURL()+"&t="+tParam, body, relayed)
		return fmt.Sprint(status, " ", answer)
	}
	if got := post("p1", "4one", true); got != "200 ok" {
		t.Fatalf("relayed POST: %s", got)
	}
	if got := post("p1", "4one", false); got != "200 ok" {
		t.Fatalf("its retry: %s", got)
	}
	if got := post("p1", "4one", true); got != "200 ok" {
		t.Fatalf("its second retry: %s", got)
	}
	if got := post("p2", "4two", false); got != "200 ok" {
		t.Fatalf("next POST: %s", got)
	}
	for _, want := range []string{"one", "two"} {
		p, err := c.Next(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		if string(p.Data) != want {
			t.Fatalf("echoed %s, want %q: each message once", p, want)
		}
	}
}
