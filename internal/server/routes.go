package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"siogo/internal/adminui"
	"siogo/internal/clientbundle"
)

// routes maps the server's paths: the Socket.IO endpoint (forwarding
// requests for other nodes' sessions in a cluster) and the client bundle
// under /socket.io/, the plain WebSocket endpoint, the health endpoints,
// the metrics, the Admin UI dashboard when it is on, and the page.
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
			s.bundle.ServeFile(w, r, rest)
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
	if s.admin != nil {
		mux.Handle("/admin/", adminui.Handler("/admin/"))
	}
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

// serveReady answers whether the node can serve its users: it has the
// client bundle that the chat page loads from it, and with Redis
// configured, Redis is subscribed and answering. Each missing part is one
// "not ready: ..." line of a 503.
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	var problems []string
	if msg := s.bundle.Missing(); msg != "" {
		problems = append(problems, msg)
	}
	if s.redis != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.redis.ready(ctx); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		for _, p := range problems {
			fmt.Fprintf(w, "not ready: %s\n", p)
		}
		return
	}
	w.Write([]byte("ready\n"))
}
