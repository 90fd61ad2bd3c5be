package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"siogo/internal/clientbundle"
)

// routes maps the server's paths: the Socket.IO endpoint (forwarding
// requests for other nodes' sessions in a cluster) and the client bundle
// under /socket.io/, the plain WebSocket endpoint, the health endpoints, the
// metrics, and the page.
func (s *Server) routes(page http.Handler) http.Handler {
	var endpoint http.Handler = s.io
	if s.redis != nil {
		endpoint = s.redis.node.Handler(s.io)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/socket.io/", func(w http.ResponseWriter, r *http.Request) {
		rest := strings.TrimPrefix(r.URL.Path, "/socket.io/")
		if rest == "" {
			endpoint.ServeHTTP(w, r)
			return
		}
		if clientbundle.Handle(rest) {
			clientbundle.ServeFile(w, r, rest)
			return
		}
		http.NotFound(w, r)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", s.serveReady)
	mux.Handle("/metrics", s.cfg.Metrics.Handler())
	mux.Handle("/", page)
	if s.plain == nil {
		return mux
	}
	// The plain path is matched exactly, before the mux, so that whatever
	// it holds is never read as a pattern.
	plainPath := s.cfg.PlainPath
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == plainPath {
			s.plain.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// serveReady answers whether the node can serve the whole cluster: with
// Redis configured, subscribed and answering.
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.redis != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.redis.ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
	}
	w.Write([]byte("ready\n"))
}
