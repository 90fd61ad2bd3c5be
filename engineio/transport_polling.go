package engineio

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"siogo/internal/eioparser"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// servePoll answers a long-polling GET: it waits until packets are queued
// (or the session ends, or an upgrade needs the poll back) and writes them.
func (s *Session) servePoll(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.polling {
		s.mu.Unlock()
		s.closeWith("overlap from client", closeDrop)
		writeError(w, codeBadRequest)
		return
	}
	s.polling = true
	for len(s.queue) == 0 && !s.closed && !s.upgrading && s.transport == TransportPolling {
		s.mu.Unlock()
		select {
		case <-s.pollWake:
		case <-r.Context().Done():
			s.mu.Lock()
			s.polling = false
			s.mu.Unlock()
			s.closeWith("poll connection closed prematurely", closeDrop)
			return
		}
		s.mu.Lock()
	}
	batch := s.takeQueueLocked()
	// A probing WebSocket is waiting for this poll to end: a noop lets the
	// client pause polling and finish the upgrade. A poll ended by the
	// client's own close packet gets a noop too.
	closed := s.closed
	noop := s.upgrading || s.transport != TransportPolling || (closed && len(batch) == 0)
	s.polling = false
	s.mu.Unlock()
	if closed {
		s.srv.remove(s)
	}

	if noop {
		batch = append(batch, eioparser.Packet{Type: eioparser.PacketNoop})
	}
	s.writePollResponse(w, batch, true)
}

// writePollResponse encodes pkts in the session's payload format.
func (s *Session) writePollResponse(w http.ResponseWriter, pkts []eioparser.Packet, release bool) {
	bp := bodyPool.Get().(*[]byte)
	body := (*bp)[:0]
	contentType := "text/plain; charset=UTF-8"
	switch {
	case s.protocol == 4:
		body = eioparser.AppendPayloadV4(body, pkts)
	case !s.b64 && eioparser.HasBinary(pkts):
		contentType = "application/octet-stream"
		body = eioparser.AppendPayloadV3Binary(body, pkts)
	default:
		body = eioparser.AppendPayloadV3Text(body, pkts)
	}
	if release {
		s.releaseBatch(pkts)
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	if cap(body) <= 64<<10 {
		*bp = body[:0]
		bodyPool.Put(bp)
	}
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
	s.mu.Lock()
	if s.posting {
		s.mu.Unlock()
		s.closeWith("data request overlap from client", closeDrop)
		writeError(w, codeBadRequest)
		return
	}
	s.posting = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.posting = false
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
	var pkts []eioparser.Packet
	switch {
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
	h := w.Header()
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "ok")
}
