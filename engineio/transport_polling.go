package engineio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"siogo/internal/eioparser"
)

// pollState is the long-polling transport of a session, guarded by the
// session's mu. At most one GET is held at a time; a relayed one (see
// Relayed) gives way to a newer poll, and a newer poll supersedes it by
// bumping gen.
type pollState struct {
	b64     bool          // EIO3 client that cannot take binary
	jsonp   []byte        // JSONP session: the start of each response, ___eio[j](
	waiting bool          // a GET is held
	relayed bool          // the held GET came through another node
	gen     uint64        // the held GET's number
	posting bool          // a POST is being read
	wake    chan struct{} // wakes the held GET; capacity 1, made by the first GET
	// The answer to the last relayed GET, and that GET's cache-buster
	// ("t"): a balancer that loses the node in the middle may retry the
	// GET elsewhere after the answer left, and the retry, which has the
	// same t, gets it again. The client's next GET, with another t, says
	// the answer arrived.
	lastT string
	last  polled
	// lastSent is set once a retry got last.
	lastSent bool
	// The cache-buster of the last relayed POST whose packets were
	// handled: a balancer that loses the node in the middle before the
	// answer came back may send the POST again, by any route, and the
	// retry is answered without handling them twice.
	postT string
}

func (p *pollState) wakeLocked() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// servePoll answers a long-polling GET: it waits until packets are queued
// (or the session ends, or an upgrade needs the poll back) and writes them.
func (s *Session) servePoll(w http.ResponseWriter, r *http.Request) {
	relayed := isRelayed(r)
	t := r.URL.Query().Get("t")
	s.mu.Lock()
	if s.replayLocked(w, t) {
		return
	}
	s.poll.lastT, s.poll.last = "", polled{}
	if s.poll.waiting {
		if !s.poll.relayed {
			s.mu.Unlock()
			s.closeWith("overlap from client", closeDrop)
			writeError(w, codeBadRequest)
			return
		}
		// The held poll came through a node that went away, or that is
		// about to notice: this newer poll takes its place.
		s.srv.pollHandedOff()
	}
	s.poll.gen++
	gen := s.poll.gen
	s.poll.waiting, s.poll.relayed = true, relayed
	if s.poll.wake == nil {
		// Made by the first poll: a session on WebSocket from the start
		// never needs it.
		s.poll.wake = make(chan struct{}, 1)
	}
	s.poll.wakeLocked() // tells a superseded poll to step aside
	wake := s.poll.wake
	for len(s.queue) == 0 && !s.closed && !s.upgrading && s.ws == nil && (t == "" || t != s.poll.lastT) {
		s.mu.Unlock()
		select {
		case <-wake:
		case <-r.Context().Done():
			s.mu.Lock()
			mine := s.poll.gen == gen
			if mine {
				s.poll.waiting = false
			}
			s.mu.Unlock()
			switch {
			case mine && relayed:
				// The node in the middle went away; the client will
				// poll again by another route.
				s.srv.pollHandedOff()
			case mine:
				// A direct client that drops its poll has left.
				s.closeWith("poll connection closed prematurely", closeDrop)
			}
			return
		}
		s.mu.Lock()
		if s.poll.gen != gen {
			// Superseded; the wake may have been meant for the newer
			// poll, so pass it on.
			s.poll.wakeLocked()
			s.mu.Unlock()
			s.writePollResponse(w, r, []outPacket{{Packet: eioparser.Packet{Type: eioparser.PacketNoop}}}, nil)
			return
		}
	}
	if t != "" && t == s.poll.lastT {
		// The answer to this very request (a retry) left just now by
		// the route that failed.
		s.poll.waiting = false
		s.replayLocked(w, t)
		return
	}
	batch := s.takeQueueLocked()
	closed := s.closed
	if n := len(batch); closed && n > 1 && batch[n-1].Type == eioparser.PacketClose {
		// The close packet goes on the next poll, alone. socket.io-client
		// hands a payload's events to the socket a tick after reading the
		// payload, but acts on a close packet at once: events in front of
		// it would reach a disconnected socket, which keeps them for its
		// next connection, and a recovering client would not count them
		// and get them again.
		s.queue = append(s.queue, batch[n-1])
		batch = batch[:n-1]
		closed = false
	}
	// A probing WebSocket is waiting for this poll to end: a noop lets the
	// client pause polling and finish the upgrade. A poll ended by the
	// client's own close packet gets a noop too.
	noop := s.upgrading || s.ws != nil || (closed && len(batch) == 0)
	s.poll.waiting = false
	s.mu.Unlock()
	if closed {
		s.srv.remove(s)
	}

	n := len(batch)
	if noop {
		batch = append(batch, outPacket{Packet: eioparser.Packet{Type: eioparser.PacketNoop}})
	}
	var keep func(sent polled)
	if relayed && t != "" && !closed {
		keep = func(sent polled) {
			s.mu.Lock()
			s.poll.lastT, s.poll.last, s.poll.lastSent = t, sent, false
			s.poll.last.body = bytes.Clone(sent.body)
			s.poll.wakeLocked() // a retry may be waiting already
			s.mu.Unlock()
		}
	}
	err := s.writePollResponse(w, r, batch, keep)
	if err != nil && relayed && !closed {
		// The node in the middle went away with the answer: keep it
		// for the client's next poll, unless a retry of this request
		// got it meanwhile.
		s.mu.Lock()
		served := s.poll.lastT == t && s.poll.lastSent
		if s.poll.lastT == t {
			s.poll.lastT, s.poll.last = "", polled{}
		}
		s.mu.Unlock()
		if !served {
			s.requeue(batch[:n])
			return
		}
	}
	s.releaseBatch(batch)
}

// replayLocked answers a retry of the last relayed GET with that GET's
// answer, and unlocks s.mu when it does.
func (s *Session) replayLocked(w http.ResponseWriter, t string) bool {
	if t == "" || t != s.poll.lastT {
		return false
	}
	answer := s.poll.last
	s.poll.lastSent = true
	s.mu.Unlock()
	s.srv.pollHandedOff()
	writePollBody(w, answer)
	return true
}

// requeue puts packets that could not be delivered back at the head of the
// queue.
func (s *Session) requeue(batch []outPacket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(batch) == 0 {
		return
	}
	s.queue = append(batch, s.queue...)
	s.wakeLocked()
}

// packetsPool holds the packet lists handed to the payload encoders.
var packetsPool = sync.Pool{New: func() any { p := make([]eioparser.Packet, 0, 16); return &p }}

// polled is a poll answer as sent: its body and headers.
type polled struct {
	body        []byte
	contentType string
	encoding    string
}

// writePollResponse encodes batch in the session's payload format, as a
// JSONP script for a JSONP session, compresses it when the request allows
// and it is large enough, and sends it, reporting whether it reached the
// connection. keep, when set, is given the answer before it is sent.
func (s *Session) writePollResponse(w http.ResponseWriter, r *http.Request, batch []outPacket, keep func(polled)) error {
	pp := packetsPool.Get().(*[]eioparser.Packet)
	pkts := (*pp)[:0]
	for i := range batch {
		pkts = append(pkts, batch[i].Packet)
	}
	bp := bodyPool.Get().(*[]byte)
	body := (*bp)[:0]
	contentType := "text/plain; charset=UTF-8"
	switch {
	case s.protocol == 4:
		body = eioparser.AppendPayloadV4(body, pkts)
	case !s.poll.b64 && eioparser.HasBinary(pkts):
		contentType = "application/octet-stream"
		body = eioparser.AppendPayloadV3Binary(body, pkts)
	default:
		body = eioparser.AppendPayloadV3Text(body, pkts)
	}
	clear(pkts)
	if cap(pkts) <= 256 {
		*pp = pkts[:0]
		packetsPool.Put(pp)
	}
	// Each further form is appended behind the previous one in the same
	// buffer; out is the one sent.
	out := body
	if head := s.poll.jsonp; head != nil {
		contentType = "text/javascript; charset=UTF-8"
		n := len(body)
		body = appendJSONP(body, head, out)
		out = body[n:]
	}
	encoding := ""
	if cfg := &s.srv.cfg; !cfg.DisableHTTPCompression && len(out) >= cfg.HTTPCompressionThreshold {
		if encoding = negotiateEncoding(r.Header.Get("Accept-Encoding")); encoding != "" {
			n := len(body)
			body = appendCompressed(body, encoding, out)
			out = body[n:]
		}
	}
	answer := polled{body: out, contentType: contentType, encoding: encoding}
	if keep != nil {
		keep(answer)
	}
	err := writePollBody(w, answer)
	if cap(body) <= 64<<10 {
		*bp = body[:0]
		bodyPool.Put(bp)
	}
	return err
}

// writePollBody sends a poll answer.
func writePollBody(w http.ResponseWriter, answer polled) error {
	out, contentType, encoding := answer.body, answer.contentType, answer.encoding
	h := w.Header()
	h.Set("Content-Type", contentType)
	if encoding != "" {
		h.Set("Content-Encoding", encoding)
	}
	h.Set("Content-Length", strconv.Itoa(len(out)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(out)
	if err == nil {
		err = http.NewResponseController(w).Flush()
	}
	return err
}

// servePost reads a polling payload from the client and handles its packets
// in order.
func (s *Session) servePost(w http.ResponseWriter, r *http.Request) {
	binary := r.Header.Get("Content-Type") == "application/octet-stream"
	if binary && s.protocol == 4 {
		s.closeWith("invalid content", closeDrop)
		writeError(w, codeBadRequest)
		return
	}
	t := r.URL.Query().Get("t")
	s.mu.Lock()
	if t != "" && t == s.poll.postT {
		s.mu.Unlock()
		s.srv.pollHandedOff()
		writePostOK(w)
		return
	}
	if s.poll.posting {
		s.mu.Unlock()
		s.closeWith("data request overlap from client", closeDrop)
		writeError(w, codeBadRequest)
		return
	}
	s.poll.posting = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.poll.posting = false
		s.mu.Unlock()
	}()

	// Bound the body's arrival: the HTTP server's own read deadline is
	// sized for held polls, far longer than a POST should take.
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.srv.cfg.ReadTimeout))
	limit := s.srv.cfg.MaxPayload
	if r.ContentLength > limit {
		s.srv.refused(http.StatusRequestEntityTooLarge)
		writeJSONError(w, http.StatusRequestEntityTooLarge, codeBadRequest, "Payload too large")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.srv.refused(http.StatusRequestEntityTooLarge)
			writeJSONError(w, http.StatusRequestEntityTooLarge, codeBadRequest, "Payload too large")
			return
		}
		s.closeWith("data request connection closed prematurely", closeDrop)
		// The body was cut short (the client left, or the server's read
		// timeout fired); a client still listening must not read success.
		writeError(w, codeBadRequest)
		return
	}
	if s.poll.jsonp != nil {
		// The payload is a form field, text whatever the content type.
		body, err = decodeJSONPForm(body)
		binary = false
	}
	var pkts []eioparser.Packet
	switch {
	case err != nil:
	case binary:
		pkts, err = eioparser.DecodePayloadV3Binary(body)
	case !utf8.Valid(body):
		err = fmt.Errorf("%w: payload is not valid UTF-8", eioparser.ErrParse)
	case s.protocol == 4:
		pkts, err = eioparser.DecodePayloadV4(body)
	default:
		pkts, err = eioparser.DecodePayloadV3Text(body)
	}
	if err != nil {
		s.srv.cfg.Logger.Debug("engineio: bad polling payload", "sid", s.id, "err", err)
		s.closeWith("parse error", closeDrop)
		writeJSONError(w, http.StatusBadRequest, codeBadRequest, err.Error())
		return
	}
	for _, p := range pkts {
		s.onPacket(p)
		if s.Closed() {
			// The rest of the payload belongs to a session that is over.
			break
		}
	}
	if t != "" && isRelayed(r) {
		s.mu.Lock()
		s.poll.postT = t
		s.mu.Unlock()
	}
	writePostOK(w)
}

// writePostOK answers a POST whose packets were taken.
func writePostOK(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "ok")
}
