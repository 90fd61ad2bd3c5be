package cluster

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"siogo/engineio"
	"strings"
)

// errDraining cancels forwarded long requests when the node shuts down.
var errDraining = errors.New("cluster: node draining")

// forwardedRequest is a long request (a poll or a WebSocket) this node is
// carrying for another node; Drain cancels it.
type forwardedRequest struct {
	cancel context.CancelCauseFunc
}

type targetKey struct{}

type target struct {
	owner, addr string
}

// Handler wraps the Engine.IO endpoint next: requests for sessions of other
// nodes are forwarded to their owner, the rest are served by next.
func (n *Node) Handler(next http.Handler) http.Handler {
	proxy := &httputil.ReverseProxy{
		Rewrite:   n.rewrite,
		Transport: n.proxy,
		ErrorLog:  slog.NewLogLogger(n.log.Handler(), slog.LevelDebug),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			n.forwardError(next, w, r, err)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sid, transport := engineio.ParseRequest(r)
		if sid == "" {
			// Handshakes are served where they land.
			next.ServeHTTP(w, r)
			return
		}
		owner, ok := OwnerOf(sid)
		if !ok {
			// Not one of ours: the engine answers "Session ID unknown".
			next.ServeHTTP(w, r)
			return
		}
		if owner == n.id {
			if r.Header.Get(HeaderForwardedBy) != "" {
				r = engineio.Relayed(r)
			}
			next.ServeHTTP(w, r)
			return
		}
		if by := r.Header.Get(HeaderForwardedBy); by != "" {
			// Never forward twice: nodes that disagree about an owner
			// would otherwise pass the request around for ever.
			n.log.Debug("cluster: not forwarding a forwarded request", "sid", sid, "owner", owner, "from", by)
			next.ServeHTTP(w, r)
			return
		}
		addr, err := n.lookup(r.Context(), owner)
		if err != nil {
			if !errors.Is(err, errUnknownNode) {
				n.log.Warn("cluster: owner lookup failed", "owner", owner, "err", err)
			}
			next.ServeHTTP(w, r)
			return
		}
		n.forward(proxy, w, r, transport, sid, target{owner: owner, addr: addr})
	})
}

func (n *Node) forward(proxy *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request, transport, sid string, t target) {
	ctx := context.WithValue(r.Context(), targetKey{}, t)
	if r.Method == http.MethodGet {
		// Long polls and WebSockets can last; Drain cuts them so that
		// shutdown does not wait for them. POSTs are short and must not be
		// cut: the owner may already have handled the packets.
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		fr := &forwardedRequest{cancel: cancel}
		n.mu.Lock()
		draining := n.draining
		if !draining {
			n.inflight[fr] = struct{}{}
		}
		n.mu.Unlock()
		if draining {
			cancel(errDraining)
			// Dropping the connection without an answer lets the
			// balancer retry the request on another node.
			panic(http.ErrAbortHandler)
		}
		defer func() {
			n.mu.Lock()
			delete(n.inflight, fr)
			n.mu.Unlock()
			cancel(nil)
		}()
		if transport == "websocket" {
			// The client's WebSocket now runs through this node: losing
			// this node disconnects that client too.
			n.log.Info("cluster: forwarding websocket", "sid", sid, "owner", t.owner, "addr", t.addr)
		}
	}
	n.obs.Forwarded(transport)
	proxy.ServeHTTP(w, r.WithContext(ctx))
}

func (n *Node) rewrite(pr *httputil.ProxyRequest) {
	t := pr.In.Context().Value(targetKey{}).(target)
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = t.addr
	// The owner checks browser origins against the Host the client used.
	pr.Out.Host = pr.In.Host
	// The forwarding node is not a hop the owner should see: it gets the
	// X-Forwarded-* headers as the balancer sent them, or, without a
	// balancer, the client's own address.
	for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		if v := pr.In.Header.Values(h); len(v) > 0 {
			pr.Out.Header[h] = v
		}
	}
	if len(pr.In.Header.Values("X-Forwarded-For")) == 0 {
		if host, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
			pr.Out.Header.Set("X-Forwarded-For", host)
		}
	}
	pr.Out.Header.Set(HeaderForwardedBy, n.id)
}

func (n *Node) forwardError(next http.Handler, w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(context.Cause(r.Context()), errDraining) {
		// See forward: no answer, so the balancer retries elsewhere.
		panic(http.ErrAbortHandler)
	}
	if r.Context().Err() != nil {
		// The client went away; nothing to answer.
		return
	}
	t := r.Context().Value(targetKey{}).(target)
	n.obs.ForwardFailed()
	n.forget(t.owner)
	n.log.Warn("cluster: owner unreachable", "owner", t.owner, "addr", t.addr, "method", r.Method, "err", err)
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") && w.Header().Get("Upgrade") != "" {
		// The connection was already switched to the client's WebSocket.
		return
	}
	// The session died with its node: answer as for any session this node
	// does not know, so the client reconnects.
	next.ServeHTTP(w, r)
}

// Drain cuts the long polls and WebSockets this node carries for other
// nodes, and makes it refuse new ones by dropping the connection, which a
// balancer retries on another node. The owners keep the sessions of the cut
// polls open for the retries. Call it when shutdown starts, e.g. from
// http.Server.RegisterOnShutdown.
func (n *Node) Drain() {
	n.mu.Lock()
	n.draining = true
	cut := make([]*forwardedRequest, 0, len(n.inflight))
	for fr := range n.inflight {
		cut = append(cut, fr)
	}
	clear(n.inflight)
	n.mu.Unlock()
	for _, fr := range cut {
		fr.cancel(errDraining)
	}
	if len(cut) > 0 {
		n.log.Info("cluster: drained forwarded requests", "count", len(cut))
	}
}
