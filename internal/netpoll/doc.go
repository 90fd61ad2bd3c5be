// Package netpoll tells when connections have bytes to read, so that an
// idle connection needs no goroutine parked in Read.
//
// A Poller watches connections with one epoll instance (Linux) and, each
// time one becomes readable, runs that connection's handler on a bounded
// pool of goroutines that grows under load and shrinks when idle. A
// registration fires once, then waits until the handler has read what it
// wanted and calls Resume: one connection's handler never runs twice at a
// time, and a connection the handler leaves alone costs nothing but its
// entry in the table.
//
// Every epoll operation runs inside the connection's syscall.RawConn
// Control, which holds the descriptor open for its duration: a connection
// closed meanwhile is reported as closed, never confused with a new
// connection that got the same descriptor number. Events that were already
// on their way for a closed connection are recognised by a generation
// number and dropped.
//
// On other systems New returns ErrUnsupported, and callers read with a
// goroutine per connection as before.
package netpoll
