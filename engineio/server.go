package engineio

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"siogo/internal/eioparser"
	"siogo/internal/wsconn"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Transport names as they appear in the "transport" query parameter.
const (
	TransportPolling   = "polling"
	TransportWebSocket = "websocket"
)

// Config holds the server settings. Zero fields take the defaults of the
// reference implementation.
type Config struct {
	PingInterval   time.Duration // default 25s
	PingTimeout    time.Duration // default 20s
	UpgradeTimeout time.Duration // default 10s
	// MaxPayload bounds a polling POST body and a WebSocket message, in
	// bytes (default 1e6). It is announced to clients in the handshake.
	MaxPayload int64
	// Transports lists the allowed transports (default both).
	Transports []string
	// MaxQueuedPackets bounds each session's send queue. A session whose
	// client cannot keep up is closed once its queue is full (default 8192).
	MaxQueuedPackets int
	// MaxPacketsPerSecond bounds what one session may send: a client
	// exceeding it (beyond a burst of one second's worth) is disconnected.
	// Zero means no limit.
	MaxPacketsPerSecond int
	// ReadTimeout bounds the arrival of one polling POST body (default 30s).
	ReadTimeout time.Duration
	// WriteTimeout bounds one WebSocket write batch (default 10s).
	WriteTimeout time.Duration
	// AllowedOrigins lists the browser origins allowed to connect besides
	// the server's own; "*" allows any. Requests without an Origin header
	// (non-browser clients) are always allowed, except JSONP polls, which
	// browsers make with script tags that send no Origin: their Referer
	// names the page instead.
	AllowedOrigins []string
	// DisableHTTPCompression turns off the compression of polling
	// responses. By default, as in the reference, a response of at least
	// HTTPCompressionThreshold bytes is compressed with gzip or deflate,
	// whichever the request's Accept-Encoding prefers.
	DisableHTTPCompression bool
	// HTTPCompressionThreshold is the size in bytes from which polling
	// responses are compressed (default 1024).
	HTTPCompressionThreshold int
	// PerMessageDeflate offers WebSocket clients permessage-deflate
	// (RFC 7692) without context takeover: each message is compressed on
	// its own, so a connection keeps no compression state between
	// messages. Off by default, as in the reference. A message sent to many
	// sessions is compressed once for all of them (see PrepareBroadcast).
	PerMessageDeflate bool
	// PerMessageDeflateThreshold is the size in bytes from which WebSocket
	// messages are compressed (default 1024).
	PerMessageDeflateThreshold int
	// AllowRequest, when set, may refuse a handshake or upgrade request. A
	// refusal is answered with 403 and the error's message.
	AllowRequest func(r *http.Request) error
	// NewID, when set, generates session ids.
	NewID func() string
	// Observer, when set, is told about sessions and traffic.
	Observer Observer
	Logger   *slog.Logger
}

// Observer receives counters from the server; implementations must be safe
// for concurrent use and fast.
type Observer interface {
	SessionOpened(transport string, protocol int)
	SessionUpgraded(protocol int)
	SessionClosed(transport string, protocol int, reason string)
	// QueueOverflow counts a session closed because its send queue was full.
	QueueOverflow()
	// PacketRateExceeded counts a session closed for sending too fast.
	PacketRateExceeded()
	// RequestRefused counts a request refused by a limit (the origin
	// check, the payload limit, AllowRequest), by the HTTP status it got.
	RequestRefused(status int)
	// PollHandedOff counts a relayed polling request (see Relayed) that
	// lost its carrier while its session stayed open: a long poll, also
	// one superseded by the client's next poll, or a POST whose retry was
	// answered without handling its packets twice.
	PollHandedOff()
}

func (c *Config) setDefaults() {
	if c.PingInterval <= 0 {
		c.PingInterval = 25 * time.Second
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = 20 * time.Second
	}
	if c.UpgradeTimeout <= 0 {
		c.UpgradeTimeout = 10 * time.Second
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = 1e6
	}
	if len(c.Transports) == 0 {
		c.Transports = []string{TransportPolling, TransportWebSocket}
	}
	if c.MaxQueuedPackets <= 0 {
		c.MaxQueuedPackets = 8192
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 30 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.HTTPCompressionThreshold <= 0 {
		c.HTTPCompressionThreshold = 1024
	}
	if c.PerMessageDeflateThreshold <= 0 {
		c.PerMessageDeflateThreshold = 1024
	}
	if c.NewID == nil {
		c.NewID = NewSessionID
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Handler receives what a client sends on one session. OnMessage calls for
// one session never overlap; OnClose may run concurrently with one.
type Handler interface {
	// OnMessage is called for each message packet. data is only valid
	// during the call.
	OnMessage(data []byte, binary bool)
	// OnClose is called once, when the session ends.
	OnClose(reason string)
}

// An UpgradeHandler is a Handler that is also told when its session has
// moved from long-polling to WebSocket, as the "upgrade" event of a
// Node.js engine.io socket.
type UpgradeHandler interface {
	Handler
	// OnUpgrade is called once the upgrade is complete: Session.Transport
	// then returns "websocket".
	OnUpgrade()
}

// Server is an Engine.IO server. It is an http.Handler to be mounted at the
// Engine.IO path (e.g. "/socket.io/").
type Server struct {
	cfg       Config
	onConnect func(*Session) Handler

	mu       sync.RWMutex
	sessions map[string]*Session
	closing  bool
	drained  chan struct{} // closed once closing and no session is left

	polling atomic.Int64 // open sessions on long-polling
	beats   *wheel       // every session's heartbeat
}

// NewServer returns a server that calls onConnect for every new session,
// after the handshake has been queued; the Handler it returns receives the
// session's messages.
func NewServer(cfg Config, onConnect func(*Session) Handler) *Server {
	cfg.setDefaults()
	return &Server{cfg: cfg, onConnect: onConnect, sessions: make(map[string]*Session), beats: newWheel(&cfg)}
}

// Config returns the effective configuration.
func (s *Server) Config() Config { return s.cfg }

// NewSessionID returns 20 random URL-safe characters.
func NewSessionID() string {
	var b [15]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Error codes of the reference implementation, sent as
// {"code":N,"message":"..."}.
const (
	codeUnknownTransport   = 0
	codeUnknownSID         = 1
	codeBadHandshakeMethod = 2
	codeBadRequest         = 3
	codeForbidden          = 4
	codeUnsupportedVersion = 5
)

var codeMessages = [...]string{
	"Transport unknown",
	"Session ID unknown",
	"Bad handshake method",
	"Bad request",
	"Forbidden",
	"Unsupported protocol version",
}

func writeError(w http.ResponseWriter, code int) {
	status := http.StatusBadRequest
	if code == codeForbidden {
		status = http.StatusForbidden
	}
	writeJSONError(w, status, code, codeMessages[code])
}

func writeJSONError(w http.ResponseWriter, status, code int, message string) {
	body, _ := json.Marshal(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, message})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

// ServeHTTP dispatches handshakes, polling requests and WebSocket upgrades.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !s.cors(w, r, q.Has("j")) {
		s.refused(http.StatusForbidden)
		writeError(w, codeForbidden)
		return
	}
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	protocol := 0
	switch q.Get("EIO") {
	case "4":
		protocol = 4
	case "3":
		protocol = 3
	default:
		writeError(w, codeUnsupportedVersion)
		return
	}
	transport := q.Get("transport")
	if !slices.Contains(s.cfg.Transports, transport) {
		writeError(w, codeUnknownTransport)
		return
	}
	isUpgrade := wsconn.IsUpgradeRequest(r)
	if transport == TransportWebSocket && !isUpgrade {
		writeError(w, codeBadRequest)
		return
	}
	sid := q.Get("sid")
	if sid == "" {
		if r.Method != http.MethodGet {
			writeError(w, codeBadHandshakeMethod)
			return
		}
		var jsonp []byte
		if transport == TransportPolling && q.Has("j") {
			var err error
			if jsonp, err = jsonpHead(q.Get("j")); err != nil {
				s.cfg.Logger.Debug(err.Error())
				writeError(w, codeBadRequest)
				return
			}
		}
		if !s.allow(w, r) {
			return
		}
		s.handshake(w, r, protocol, transport, q, jsonp)
		return
	}
	sess := s.session(sid)
	if sess == nil {
		writeError(w, codeUnknownSID)
		return
	}
	if transport == TransportWebSocket {
		if !s.allow(w, r) {
			return
		}
		sess.serveUpgrade(w, r)
		return
	}
	if sess.Transport() != TransportPolling {
		writeError(w, codeBadRequest)
		return
	}
	switch r.Method {
	case http.MethodGet:
		sess.servePoll(w, r)
	case http.MethodPost:
		sess.servePost(w, r)
	default:
		writeError(w, codeBadRequest)
	}
}

func (s *Server) allow(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.AllowRequest == nil {
		return true
	}
	if err := s.cfg.AllowRequest(r); err != nil {
		status := http.StatusForbidden
		var rerr *RequestError
		if errors.As(err, &rerr) {
			status = rerr.Status
		}
		s.refused(status)
		writeJSONError(w, status, codeForbidden, err.Error())
		return false
	}
	return true
}

func (s *Server) pollHandedOff() {
	if obs := s.cfg.Observer; obs != nil {
		obs.PollHandedOff()
	}
}

func (s *Server) refused(status int) {
	if obs := s.cfg.Observer; obs != nil {
		obs.RequestRefused(status)
	}
}

// RequestError lets AllowRequest choose the HTTP status of a refusal, e.g.
// 429 for a rate limit or 503 for a connection limit.
type RequestError struct {
	Status  int
	Message string
}

// Error returns the message.
func (e *RequestError) Error() string { return e.Message }

// OriginAllowed reports whether a request may come from its Origin under
// the policy a Server applies with Config.AllowedOrigins: a request without
// an Origin (not from a browser) or from the server's own origin always may;
// any other origin must be in allowed, where "*" allows any. Endpoints served
// beside a Server use it to apply the same policy.
func OriginAllowed(r *http.Request, allowed []string) bool {
	origin := r.Header.Get("Origin")
	return origin == "" || sameOrigin(origin, r.Host) || crossOriginAllowed(origin, allowed)
}

func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
}

func crossOriginAllowed(origin string, allowed []string) bool {
	return slices.Contains(allowed, origin) || slices.Contains(allowed, "*")
}

// cors checks the Origin of a browser request and sets the CORS response
// headers. Same-origin requests and requests without an Origin pass; others
// must be in AllowedOrigins. A JSONP poll without an Origin (a script tag's
// GET) is checked by the origin of its Referer, the page that made it.
func (s *Server) cors(w http.ResponseWriter, r *http.Request, jsonp bool) bool {
	origin := r.Header.Get("Origin")
	fromHeader := origin != ""
	if !fromHeader && jsonp {
		origin = refererOrigin(r.Header.Get("Referer"))
	}
	if origin == "" || sameOrigin(origin, r.Host) {
		return true
	}
	if !crossOriginAllowed(origin, s.cfg.AllowedOrigins) {
		return false
	}
	if !fromHeader {
		// A script is not read through CORS.
		return true
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Add("Vary", "Origin")
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET, POST")
		if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
			h.Set("Access-Control-Allow-Headers", req)
		}
		h.Set("Access-Control-Max-Age", "86400")
	}
	return true
}

// refererOrigin returns the scheme://host of a Referer, or "" when it has
// none.
func refererOrigin(referer string) string {
	u, err := url.Parse(referer)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

func (s *Server) session(id string) *Session {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.sessions[id]
}

// SessionCount returns the number of open sessions.
func (s *Server) SessionCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.sessions)
}

// PollingCount returns the number of open sessions whose transport is
// long-polling: those that have not upgraded to WebSocket.
func (s *Server) PollingCount() int { return int(s.polling.Load()) }

func (s *Server) remove(sess *Session) {
	s.mu.Lock()
	if s.sessions[sess.id] == sess {
		delete(s.sessions, sess.id)
		if s.closing && len(s.sessions) == 0 {
			close(s.drained)
		}
	}
	s.mu.Unlock()
}

// Close refuses new handshakes and closes every session, telling polling
// clients with a close packet and WebSocket clients with a close frame;
// clients take it for a lost connection and reconnect. It returns once every
// session is gone, polling clients having collected what was queued for
// them on their next poll, or with ctx's error when ctx ends first.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		s.drained = make(chan struct{})
		if len(s.sessions) == 0 {
			close(s.drained)
		}
	}
	drained := s.drained
	all := make([]*Session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		all = append(all, sess)
	}
	s.mu.Unlock()
	for _, sess := range all {
		sess.Close("server shutting down")
	}
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type handshakeData struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int64    `json:"pingInterval"`
	PingTimeout  int64    `json:"pingTimeout"`
	MaxPayload   int64    `json:"maxPayload"`
}

// handshake opens a session; jsonp, for a JSONP poll, is the start of each
// of its responses.
func (s *Server) handshake(w http.ResponseWriter, r *http.Request, protocol int, transport string, q url.Values, jsonp []byte) {
	sess := newSession(s, protocol, r)
	// A JSONP response is a string literal: binary goes in base64.
	sess.poll.b64 = protocol == 3 && (q.Get("b64") != "" || jsonp != nil)
	sess.poll.jsonp = jsonp
	upgrades := []string{}
	if transport == TransportPolling && slices.Contains(s.cfg.Transports, TransportWebSocket) {
		upgrades = append(upgrades, TransportWebSocket)
	}
	open, _ := json.Marshal(handshakeData{
		SID:          sess.id,
		Upgrades:     upgrades,
		PingInterval: s.cfg.PingInterval.Milliseconds(),
		PingTimeout:  s.cfg.PingTimeout.Milliseconds(),
		MaxPayload:   s.cfg.MaxPayload,
	})
	openPkt := eioparser.Packet{Type: eioparser.PacketOpen, Data: open}

	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		writeJSONError(w, http.StatusServiceUnavailable, codeBadRequest, "Server is shutting down")
		return
	}
	s.sessions[sess.id] = sess
	s.mu.Unlock()

	if transport == TransportWebSocket {
		conn, deflate, err := wsconn.Upgrade(w, r, s.cfg.PerMessageDeflate)
		if err != nil {
			s.remove(sess)
			return
		}
		sess.queue = append(sess.queue, outPacket{Packet: openPkt})
		sess.start(TransportWebSocket)
		sess.runWebSocket(conn, deflate)
		return
	}
	// The polling handshake answers with the open packet alone; what the
	// upper layer sends on connect waits for the next poll.
	sess.start(TransportPolling)
	sess.writePollResponse(w, r, []outPacket{{Packet: openPkt}}, nil)
}
