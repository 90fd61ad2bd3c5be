// Package admin instruments a socketio.Server for the Socket.IO Admin UI
// (the npm package @socket.io/admin-ui): it speaks, on an admin namespace,
// the protocol of the UI's server side, instrument() in version 0.5.1, so
// that the dashboard shows the servers, the sockets with their transport,
// the rooms and the traffic, and can make sockets join or leave rooms or
// disconnect them.
//
//	adm, err := admin.Instrument(io, admin.Options{
//		Auth: &admin.BasicAuth{Username: "admin", PasswordHash: "$2b$10$..."},
//	})
//
// Across a cluster every node is instrumented the same way. Everything the
// admin namespace sends is a broadcast, so it reaches the dashboard on
// whichever node it is connected to; the socket list comes from
// FetchSockets, and the dashboard's commands select sockets with
// SocketsJoin, SocketsLeave and DisconnectSockets, so they act on a socket
// wherever it lives.
//
// Unlike the reference, which in its development mode sends the dashboard
// an event for every event every socket sends or receives, the traffic is
// only counted, and reported every StatsInterval with the server's stats:
// a chat message costs the instrumentation two atomic additions per
// broadcast, whatever the number of recipients.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"siogo/socketio"
)

// Options configures the instrumentation. Auth or NoAuth must be set.
type Options struct {
	// Namespace is the admin namespace (default "/admin").
	Namespace string
	// Auth asks the dashboard for a user name and password.
	Auth *BasicAuth
	// NoAuth lets anyone who can reach the server use the dashboard;
	// it must be set explicitly, as auth: false in the reference.
	NoAuth bool
	// ReadOnly offers no command: no join, leave, disconnect or emit.
	ReadOnly bool
	// Production sends only the server stats: no socket list and no
	// socket or room events, as the reference's "production" mode.
	Production bool
	// ServerID names this server in the dashboard (default: the host
	// name). Each server of a cluster needs its own.
	ServerID string
	// StatsInterval is how often the server stats go out (default 2s,
	// as in the reference).
	StatsInterval time.Duration
	// SessionTTL is how long the session a dashboard gets on login stays
	// valid for reconnecting without the password (default 24h).
	SessionTTL time.Duration
	Logger     *slog.Logger
}

// BasicAuth is the user name and bcrypt password hash the dashboard must
// present, as auth: {type: "basic", ...} in the reference.
type BasicAuth struct {
	Username     string
	PasswordHash string
}

// Features the dashboard may use, as the reference names them.
const (
	featureEmit             = "EMIT"
	featureJoin             = "JOIN"
	featureLeave            = "LEAVE"
	featureDisconnect       = "DISCONNECT"
	featureMJoin            = "MJOIN"
	featureMLeave           = "MLEAVE"
	featureMDisconnect      = "MDISCONNECT"
	featureAggregatedEvents = "AGGREGATED_EVENTS"
	featureAllEvents        = "ALL_EVENTS"
)

// Admin is a server's instrumentation; Close stops it.
type Admin struct {
	io       *socketio.Server
	nsp      *socketio.Namespace
	opts     Options
	log      *slog.Logger
	auth     *authenticator // nil without authentication
	features []string
	counts   *eventCounts
	refused  atomic.Uint64
	serverID string
	hostname string

	stop    chan struct{}
	stopped sync.WaitGroup
	once    sync.Once
}

// Instrument sets up the admin namespace on io and starts sending the
// server stats. Call it once, before the server serves.
func Instrument(io *socketio.Server, opts Options) (*Admin, error) {
	if opts.Namespace == "" {
		opts.Namespace = "/admin"
	}
	if opts.StatsInterval <= 0 {
		opts.StatsInterval = 2 * time.Second
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 24 * time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	a := &Admin{io: io, opts: opts, log: opts.Logger, counts: newEventCounts(), stop: make(chan struct{})}
	switch {
	case opts.Auth != nil && opts.NoAuth:
		return nil, errors.New("admin: Auth and NoAuth are both set")
	case opts.Auth != nil:
		if opts.Auth.Username == "" {
			return nil, errors.New("admin: basic authentication needs a user name")
		}
		if _, err := bcrypt.Cost([]byte(opts.Auth.PasswordHash)); err != nil {
			return nil, fmt.Errorf("admin: the password must be a valid bcrypt hash: %w", err)
		}
		a.auth = newAuthenticator(opts.Auth, opts.SessionTTL)
	case !opts.NoAuth:
		return nil, errors.New("admin: authentication must be configured, or turned off explicitly with NoAuth")
	default:
		a.log.Warn("admin: authentication is disabled: anyone who reaches the server can use the dashboard")
	}
	a.hostname, _ = os.Hostname()
	a.serverID = opts.ServerID
	if a.serverID == "" {
		a.serverID = a.hostname
	}
	if !opts.ReadOnly {
		a.features = []string{featureEmit, featureJoin, featureLeave, featureDisconnect,
			featureMJoin, featureMLeave, featureMDisconnect}
	}
	a.features = append(a.features, featureAggregatedEvents)
	if !opts.Production {
		a.features = append(a.features, featureAllEvents)
	}

	a.nsp = io.Of(opts.Namespace)
	a.nsp.Use(a.authenticate)
	a.nsp.OnConnect(a.onAdminConnect)
	if !opts.ReadOnly {
		a.registerCommands()
	}
	a.countConnections()
	for _, n := range io.Namespaces() {
		a.watchNamespace(n)
	}
	io.OnNamespace(a.watchNamespace)

	a.stopped.Add(1)
	go a.statsLoop()
	return a, nil
}

// Namespace returns the admin namespace.
func (a *Admin) Namespace() *socketio.Namespace { return a.nsp }

// Refused returns how many admin connections were refused for want of
// valid credentials; each is also logged with the client's address.
func (a *Admin) Refused() uint64 { return a.refused.Load() }

// Close stops sending the server stats.
func (a *Admin) Close() {
	a.once.Do(func() { close(a.stop) })
	a.stopped.Wait()
}

// watchNamespace counts a namespace's traffic and, outside production
// mode, tells the dashboard about its sockets and rooms.
func (a *Admin) watchNamespace(n *socketio.Namespace) {
	a.countTraffic(n)
	if !a.opts.Production {
		a.reportSockets(n)
	}
}

// onAdminConnect greets a dashboard: its session when it has just logged
// in, the features, and (outside production mode) every socket of the
// cluster.
func (a *Admin) onAdminConnect(s *socketio.Socket) {
	if a.auth != nil {
		if creds, _ := parseCredentials(s.Handshake().Auth); creds.SessionID == "" || !a.auth.validSession(creds.SessionID) {
			// Sent once connected, so that the dashboard, which
			// listens from its "connect" event on, gets it.
			s.Emit("session", a.auth.newSession())
		}
	}
	s.Emit("config", struct {
		SupportedFeatures []string `json:"supportedFeatures"`
	}{a.features})
	if a.opts.Production {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
		defer cancel()
		s.Emit("all_sockets", a.fetchAllSockets(ctx))
	}()
}

// fetchTimeout bounds the collection of every node's sockets; the
// server's own request timeout applies to each namespace within it.
const fetchTimeout = 15 * time.Second
