package integration

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/gobwas/ws"
)

// wiretap is a TCP proxy in front of a server that records what crosses it,
// as it crossed: each HTTP exchange (the request line and headers, the
// response status and headers, the body's length on the wire) and, after a
// WebSocket handshake, each frame's header in both directions. Clients
// that talk to the tap's URL talk to the server; the tests then look at the
// bytes, not at what a client library made of them.
type wiretap struct {
	ln     net.Listener
	target string

	mu        sync.Mutex
	exchanges []tappedExchange
	frames    []tappedFrame
	wg        sync.WaitGroup
}

// tappedExchange is one HTTP request and its response on one connection.
type tappedExchange struct {
	Method, URI string
	Request     http.Header
	Status      int
	Response    http.Header
	WireBytes   int // the response body as sent, before any decoding
}

// tappedFrame is one WebSocket frame header.
type tappedFrame struct {
	FromServer bool
	UserAgent  string // of the connection's upgrade request
	Header     ws.Header
}

func startWiretap(t *testing.T, target string) *wiretap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &wiretap{ln: ln, target: strings.TrimPrefix(target, "http://")}
	go w.accept()
	t.Cleanup(func() {
		ln.Close()
		w.wg.Wait()
	})
	return w
}

// URL returns the tap's http:// address.
func (w *wiretap) URL() string { return "http://" + w.ln.Addr().String() }

func (w *wiretap) accept() {
	for {
		client, err := w.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", w.target)
		if err != nil {
			client.Close()
			continue
		}
		w.wg.Add(1)
		go w.serve(client, server)
	}
}

// serve relays one connection both ways, handing a copy of each direction
// to its parser.
func (w *wiretap) serve(client, server net.Conn) {
	defer w.wg.Done()
	requests := make(chan tappedExchange, 64) // parsed requests, in order
	var relays sync.WaitGroup
	relay := func(dst, src net.Conn, parse func(io.Reader)) {
		defer relays.Done()
		pr, pw := io.Pipe()
		go func() {
			parse(pr)
			io.Copy(io.Discard, pr) // whatever the parser did not take
		}()
		io.Copy(io.MultiWriter(dst, pw), src)
		pw.Close()
		// Either side closing ends the connection for both.
		dst.Close()
		src.Close()
	}
	relays.Add(2)
	go relay(server, client, func(r io.Reader) { w.parseRequests(bufio.NewReader(r), requests) })
	go relay(client, server, func(r io.Reader) { w.parseResponses(bufio.NewReader(r), requests) })
	relays.Wait()
}

// parseRequests reads what a client sends: requests, handed to the
// response parser in order, then frames after an upgrade request.
func (w *wiretap) parseRequests(br *bufio.Reader, requests chan<- tappedExchange) {
	defer close(requests)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		requests <- tappedExchange{Method: req.Method, URI: req.RequestURI, Request: req.Header}
		if strings.EqualFold(req.Header.Get("Upgrade"), "websocket") {
			w.parseFrames(br, false, req.Header.Get("User-Agent"))
			return
		}
	}
}

// parseResponses reads what the server sends: responses, each recorded
// with its request, then frames after a 101.
func (w *wiretap) parseResponses(br *bufio.Reader, requests <-chan tappedExchange) {
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return
		}
		ex, ok := <-requests
		if !ok {
			return
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		ex.Status, ex.Response, ex.WireBytes = resp.StatusCode, resp.Header, int(n)
		w.mu.Lock()
		w.exchanges = append(w.exchanges, ex)
		w.mu.Unlock()
		if resp.StatusCode == http.StatusSwitchingProtocols {
			w.parseFrames(br, true, ex.Request.Get("User-Agent"))
			return
		}
	}
}

// parseFrames records frame headers until the stream ends.
func (w *wiretap) parseFrames(br *bufio.Reader, fromServer bool, userAgent string) {
	for {
		h, err := ws.ReadHeader(br)
		if err != nil {
			return
		}
		if _, err := br.Discard(int(h.Length)); err != nil {
			return
		}
		w.mu.Lock()
		w.frames = append(w.frames, tappedFrame{FromServer: fromServer, UserAgent: userAgent, Header: h})
		w.mu.Unlock()
	}
}

// Exchanges returns the HTTP exchanges recorded so far.
func (w *wiretap) Exchanges() []tappedExchange {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]tappedExchange(nil), w.exchanges...)
}

// Frames returns the WebSocket frame headers recorded so far.
func (w *wiretap) Frames() []tappedFrame {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]tappedFrame(nil), w.frames...)
}
