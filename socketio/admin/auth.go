package admin

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"siogo/socketio"
)

// errInvalidCredentials is the refusal the reference gives, for any reason.
var errInvalidCredentials = &socketio.ConnectError{Message: "invalid credentials"}

// credentials is what the dashboard sends as its CONNECT payload: a user
// name and password on login, or the session it got then.
type credentials struct {
	SessionID string `json:"sessionId"`
	Username  string `json:"username"`
	Password  string `json:"password"`
}

func parseCredentials(auth json.RawMessage) (credentials, error) {
	var c credentials
	if len(auth) == 0 {
		return c, nil
	}
	err := json.Unmarshal(auth, &c)
	return c, err
}

// authenticator checks the dashboard's credentials and hands out
// sessions. A session is signed with a key derived from the configured
// credentials rather than stored, so that every node of a cluster
// configured alike accepts it: behind a balancer, the dashboard's
// reconnection may reach any node.
type authenticator struct {
	username string
	hash     []byte
	key      []byte
	ttl      time.Duration
	// bcrypt costs tens of milliseconds of CPU: one comparison at a time,
	// so that a flood of logins cannot take every core.
	compare chan struct{}
}

func newAuthenticator(b *BasicAuth, ttl time.Duration) *authenticator {
	key := sha256.Sum256([]byte("siogo admin session\x00" + b.Username + "\x00" + b.PasswordHash))
	return &authenticator{
		username: b.Username,
		hash:     []byte(b.PasswordHash),
		key:      key[:],
		ttl:      ttl,
		compare:  make(chan struct{}, 1),
	}
}

// authenticate is the admin namespace's middleware.
func (a *Admin) authenticate(s *socketio.Socket, auth json.RawMessage) error {
	if a.auth == nil {
		return nil
	}
	creds, err := parseCredentials(auth)
	if err == nil && (creds.SessionID != "" && a.auth.validSession(creds.SessionID) || a.auth.validPassword(creds)) {
		return nil
	}
	addr := clientAddress(s.Handshake())
	a.refused.Add(1)
	a.log.Warn("admin: connection refused: invalid credentials", "addr", addr, "user", creds.Username)
	return errInvalidCredentials
}

// clientAddress is the client's address as the server saw it, followed by
// what a proxy forwarded, if anything.
func clientAddress(h *socketio.Handshake) string {
	if fwd := h.Headers.Get("X-Forwarded-For"); fwd != "" {
		return h.Address + " (forwarded for " + fwd + ")"
	}
	return h.Address
}

func (au *authenticator) validPassword(c credentials) bool {
	if subtle.ConstantTimeCompare([]byte(c.Username), []byte(au.username)) != 1 {
		return false
	}
	au.compare <- struct{}{}
	defer func() { <-au.compare }()
	return bcrypt.CompareHashAndPassword(au.hash, []byte(c.Password)) == nil
}

// newSession returns a session id: an expiry time and a random nonce,
// signed.
func (au *authenticator) newSession() string {
	var nonce [12]byte
	rand.Read(nonce[:])
	body := strconv.FormatInt(time.Now().Add(au.ttl).Unix(), 10) + "." + hex.EncodeToString(nonce[:])
	return body + "." + au.sign(body)
}

func (au *authenticator) validSession(id string) bool {
	i := strings.LastIndexByte(id, '.')
	if i < 0 {
		return false
	}
	body, mac := id[:i], id[i+1:]
	if !hmac.Equal([]byte(mac), []byte(au.sign(body))) {
		return false
	}
	expiry, _, _ := strings.Cut(body, ".")
	exp, err := strconv.ParseInt(expiry, 10, 64)
	return err == nil && time.Now().Unix() < exp
}

func (au *authenticator) sign(body string) string {
	h := hmac.New(sha256.New, au.key)
	h.Write([]byte(body))
	return hex.EncodeToString(h.Sum(nil))
}
