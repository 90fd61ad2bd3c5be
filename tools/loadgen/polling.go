package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// pollConn is a client's HTTP long-polling session: one goroutine keeps a GET
// pending and another posts queued packets. The protocol forbids two
// concurrent POSTs, so everything sent while a POST is in flight is batched
// into the next one.
type pollConn struct {
	c    *client
	hc   *http.Client
	url  string
	ctx  context.Context
	stop context.CancelFunc

	mu      sync.Mutex
	pending []byte // encoded payload waiting for the next POST
	spare   []byte
	wake    chan struct{}
	dead    error
}

func connectPolling(ctx context.Context, d *dialer, c *client) error {
	r := d.r
	body, err := pollGet(ctx, d.http, r.endpoint("http", "polling", ""), nil)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	var pkts [][]byte
	if err := splitPayload(r.cfg.eio, body, func(p []byte) { pkts = append(pkts, bytes.Clone(p)) }); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if c.open, err = parseOpen(pkts[0]); err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(context.Background())
	p := &pollConn{
		c: c, hc: d.http, url: r.endpoint("http", "polling", c.open.SID),
		ctx: lctx, stop: cancel, wake: make(chan struct{}, 1),
	}
	c.t = p
	for _, pkt := range pkts[1:] {
		if err := c.handle(pkt); err != nil {
			return err
		}
	}
	if r.cfg.eio == 4 {
		if err := p.post(ctx, encodePayload(r.cfg.eio, nil, []byte("40"))); err != nil {
			return fmt.Errorf("CONNECT: %w", err)
		}
	}
	var buf []byte
	for !c.connected.Load() {
		if buf, err = pollGet(ctx, d.http, p.url, buf); err != nil {
			return fmt.Errorf("waiting for CONNECT: %w", err)
		}
		if err := splitPayload(r.cfg.eio, buf, func(pkt []byte) {
			if herr := c.handle(pkt); herr != nil && err == nil {
				err = herr
			}
		}); err != nil {
			return err
		}
		if err != nil {
			return err
		}
	}
	c.startPinger()
	go p.readLoop(buf)
	go p.writeLoop()
	return nil
}

// pollGet performs one GET and returns the body, reusing buf's storage.
func pollGet(ctx context.Context, hc *http.Client, url string, buf []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b := bytes.NewBuffer(buf[:0])
	if _, err := b.ReadFrom(resp.Body); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET status %d: %s", resp.StatusCode, clip(b.Bytes()))
	}
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/octet-stream") {
		return nil, errors.New("binary polling payload not supported")
	}
	return b.Bytes(), nil
}

func (p *pollConn) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	resp, err := p.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST status %d", resp.StatusCode)
	}
	return nil
}

func (p *pollConn) readLoop(buf []byte) {
	eio := p.c.r.cfg.eio
	for {
		var err error
		buf, err = pollGet(p.ctx, p.hc, p.url, buf)
		if err == nil {
			err = splitPayload(eio, buf, func(pkt []byte) {
				if herr := p.c.handle(pkt); herr != nil && err == nil {
					err = herr
				}
			})
		}
		if err != nil {
			p.kill(err)
			return
		}
	}
}

func (p *pollConn) writeLoop() {
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.wake:
		}
		if err := p.flush(); err != nil {
			p.kill(err)
			return
		}
	}
}

// flush posts everything queued so far, if anything. Sends go on into the
// spare buffer while the body is posted; the body only becomes the spare
// again once the POST is done, so the two never share memory.
func (p *pollConn) flush() error {
	p.mu.Lock()
	if len(p.pending) == 0 {
		// A wake-up for packets an earlier POST already carried.
		p.mu.Unlock()
		return nil
	}
	body := p.pending
	p.pending, p.spare = p.spare[:0], nil
	p.mu.Unlock()
	if err := p.post(p.ctx, body); err != nil {
		return err
	}
	p.mu.Lock()
	p.spare = body
	p.mu.Unlock()
	return nil
}

// kill ends the session after a transport error, reporting it once.
func (p *pollConn) kill(err error) {
	p.mu.Lock()
	first := p.dead == nil
	if first {
		p.dead = err
	}
	p.mu.Unlock()
	if first {
		p.stop()
		p.c.lost(err)
	}
}

func (p *pollConn) send(pkt []byte) error {
	p.mu.Lock()
	if p.dead != nil {
		err := p.dead
		p.mu.Unlock()
		return err
	}
	p.pending = encodePayload(p.c.r.cfg.eio, p.pending, pkt)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return nil
}

// close tells the server the session is over, then stops both loops.
func (p *pollConn) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = p.post(ctx, encodePayload(p.c.r.cfg.eio, nil, []byte("1")))
	p.stop()
}

func splitPayload(eio int, payload []byte, fn func([]byte)) error {
	if eio == 3 {
		return splitV3(payload, fn)
	}
	return splitV4(payload, fn)
}

func encodePayload(eio int, dst, pkt []byte) []byte {
	if eio == 3 {
		return appendV3(dst, pkt)
	}
	return appendV4(dst, pkt)
}
