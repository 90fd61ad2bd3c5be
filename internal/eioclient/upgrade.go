package eioclient

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gobwas/ws"
)

// upgradeState is a polling chat client's move to WebSocket, guarded by
// the client's mu.
type upgradeState struct {
	started bool
	// holding keeps what the client sends in out, for the WebSocket.
	holding bool
	// pausePolling asks the poll loop to stop after the poll under way;
	// the loop closes it when it has.
	pausePolling chan struct{}
	// postsIdle, when set, is closed once the POST under way has returned.
	postsIdle chan struct{}
	// done is the WebSocket the session moved to.
	done *WSConn
}

func (u *upgradeState) postsIdleLocked() {
	if u.postsIdle != nil {
		close(u.postsIdle)
		u.postsIdle = nil
	}
}

// Upgrade moves a session dialled over polling to WebSocket, as
// socket.io-client does when the handshake offers it: it opens a WebSocket
// for the session and probes it; once the server answers the probe, the
// client lets the poll and the POST under way finish, holds what it sends,
// sends the upgrade packet and carries on over the WebSocket, sending what
// it held first. Whatever the server sends meanwhile arrives once, in
// order, over one transport or the other.
//
// paused, when not nil, runs once polling has paused and before the upgrade
// packet: what the server sends during it waits for the WebSocket.
//
// When the WebSocket cannot be opened or probed, the session polls on and
// Upgrade returns the error; a failure after that ends the session.
func (c *ChatClient) Upgrade(ctx context.Context, paused func()) error {
	switch {
	case c.ws != nil:
		return errors.New("eioclient: upgrade: the session is on WebSocket already")
	case c.opts.NoRead:
		return errors.New("eioclient: upgrade: a client that does not read cannot upgrade")
	case !slices.Contains(c.Open.Upgrades, "websocket"):
		return fmt.Errorf("eioclient: upgrade: the server offers %q", c.Open.Upgrades)
	}
	c.mu.Lock()
	started, err := c.upgrade.started, c.err
	c.upgrade.started = true
	c.mu.Unlock()
	if started {
		return errors.New("eioclient: upgrade: called twice")
	}
	if err != nil {
		return err
	}

	conn, err := dialWS(ctx, WSURL(URL(c.endpoint, c.opts.Protocol, "websocket", c.Open.SID)), wsOptions{
		netDial: c.netDial, header: c.opts.Header, readBuffer: c.opts.ReadBufferSize, writeTimeout: 10 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("eioclient: upgrade: %w", err)
	}
	if err := probe(ctx, conn); err != nil {
		conn.Close()
		return fmt.Errorf("eioclient: upgrade: %w", err)
	}

	c.mu.Lock()
	if err := c.err; err != nil {
		c.mu.Unlock()
		conn.Close()
		return err
	}
	c.upgrade.holding = true
	pollPaused := make(chan struct{})
	c.upgrade.pausePolling = pollPaused
	var postsIdle chan struct{}
	if c.posting {
		postsIdle = make(chan struct{})
		c.upgrade.postsIdle = postsIdle
	}
	c.mu.Unlock()

	// fail ends the session; once the poll loop has stopped, the reader
	// it handed over to is this one, which never started.
	pollStopped := false
	fail := func(err error) error {
		conn.Close()
		c.end(fmt.Errorf("eioclient: upgrade: %w", err))
		if pollStopped {
			close(c.readerDone)
		} else {
			// The loop stops either way now that the session has ended.
			select {
			case <-pollPaused:
				close(c.readerDone)
			case <-c.readerDone:
			}
		}
		return c.Err()
	}
	select {
	case <-pollPaused:
		pollStopped = true
	case <-c.done:
		return fail(c.Err())
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	if postsIdle != nil {
		select {
		case <-postsIdle:
		case <-c.done:
			return fail(c.Err())
		case <-ctx.Done():
			return fail(ctx.Err())
		}
	}
	if paused != nil {
		paused()
	}
	if err := conn.WriteText([]byte("5")); err != nil {
		return fail(err)
	}

	c.mu.Lock()
	if err := c.err; err != nil {
		c.mu.Unlock()
		return fail(err)
	}
	start := 0
	for _, end := range c.out.ends {
		if err := conn.WriteText(c.out.data[start:end]); err != nil {
			c.mu.Unlock()
			return fail(err)
		}
		start = end
	}
	c.out.data, c.out.ends = c.out.data[:0], c.out.ends[:0]
	c.upgrade.holding = false
	c.upgrade.done = conn
	c.mu.Unlock()
	go c.readWS(conn)
	if c.ownHTTP {
		c.hc.CloseIdleConnections()
	}
	return nil
}

// probe sends the probe on a WebSocket opened for a polling session and
// reads the server's answer.
func probe(ctx context.Context, conn *WSConn) error {
	if d, ok := ctx.Deadline(); ok {
		conn.SetReadDeadline(d)
		defer conn.SetReadDeadline(time.Time{})
	}
	if err := conn.WriteText([]byte("2probe")); err != nil {
		return err
	}
	op, msg, err := conn.NextMessage()
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	if op != ws.OpText || string(msg) != "3probe" {
		return fmt.Errorf("probe answered with %q, want 3probe", msg)
	}
	return nil
}

// Transport returns the transport the session is on now: "websocket" or
// "polling".
func (c *ChatClient) Transport() string {
	if c.webSocket() != nil {
		return "websocket"
	}
	return "polling"
}
