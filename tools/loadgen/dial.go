package main

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"time"

	"siogo/internal/eioclient"
)

// dialer opens client sessions with the configured protocol and transport.
type dialer struct {
	r     *run
	bases []string // http://host:port of each node; client k talks to node k mod len(bases)
	http  *http.Client
}

func newDialer(r *run) *dialer {
	idle := r.cfg.idleConns
	if idle == 0 {
		idle = 2*r.cfg.clients + 16
	}
	tr := &http.Transport{
		DialContext:         r.netDial,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: idle,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  !r.cfg.gzip,
	}
	d := &dialer{r: r, http: &http.Client{Transport: tr}}
	for _, b := range r.cfg.bases {
		u := url.URL{Scheme: "http", Host: b.Host}
		d.bases = append(d.bases, u.String())
	}
	return d
}

func (d *dialer) closeIdle() { d.http.CloseIdleConnections() }

// connect returns once c's socket is connected to the namespace "/".
func (d *dialer) connect(ctx context.Context, c *client) error {
	cfg := d.r.cfg
	cc, err := eioclient.DialChat(ctx, d.bases[c.id%len(d.bases)], eioclient.ChatOptions{
		Protocol:       cfg.eio,
		Transport:      cfg.transport,
		Path:           cfg.path,
		NetDial:        d.r.netDial,
		HTTP:           d.http,
		ReadBufferSize: cfg.readBuf,
		Deflate:        cfg.deflate,
		OnMessage:      c.handle,
		OnEnd:          c.lost,
	})
	if err != nil {
		return err
	}
	c.cc = cc
	return nil
}

// netDial dials TCP, spreading connections over the -src addresses so 10k
// connections never exhaust one address's ephemeral ports.
func (r *run) netDial(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := net.Dialer{Control: bindNoPort}
	if n := len(r.cfg.srcs); n > 0 {
		i := r.srcNext.Add(1)
		nd.LocalAddr = &net.TCPAddr{IP: r.cfg.srcs[int(i%uint64(n))]}
	}
	conn, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	// Closing with a reset leaves no TIME_WAIT entries behind, so back-to-back
	// runs of thousands of clients do not pile up unusable ports.
	_ = conn.(*net.TCPConn).SetLinger(0)
	return conn, nil
}
