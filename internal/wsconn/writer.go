package wsconn

import (
	"bufio"
	"io"
	"net"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// Source is the send queue a Writer drains, guarded by the source's own
// lock: the Writer takes it around QueueLocked, and the source holds it
// around Writer.KickLocked.
type Source[T any] interface {
	sync.Locker
	// QueueLocked returns the queue, which the writer empties by taking
	// what is in it, and reports whether the connection is closing: once
	// the queue is empty the writer then stops and calls Done(nil).
	QueueLocked() (queue *[]T, closing bool)
	// WriteBatch writes the frames of batch to w. hdr is scratch space of
	// ws.MaxHeaderSize bytes for their headers.
	WriteBatch(w io.Writer, hdr []byte, batch []T) error
	// Done is called once the writer has stopped for good: with nil when
	// everything was written and the connection is closing (the source
	// then sends its close frame and closes the connection), or with the
	// error of a write that failed.
	Done(err error)
}

// Writer writes to one WebSocket connection. Batches of frames come from a
// Source and are written by a goroutine that exists only while there is
// traffic: it writes each batch through a pooled buffered writer with one
// flush, so a burst costs one system call instead of one per frame, and
// exits as soon as the queue is empty, so an idle connection holds no
// goroutine and no buffer. Single frames (answers to control frames,
// pings, close frames) go out between batches through Write.
type Writer[T any] struct {
	Conn net.Conn
	// Timeout bounds the write of one batch.
	Timeout time.Duration

	wmu sync.Mutex // held while writing to Conn
	// Guarded by the source's lock:
	writing bool // a writer goroutine runs
	spare   []T  // the last written batch's array, emptied: the next queue
}

// KickLocked makes the writer pick up what src has queued, starting a
// goroutine if none runs. The caller holds src's lock.
func (w *Writer[T]) KickLocked(src Source[T]) {
	if !w.writing {
		w.writing = true
		go w.run(src)
	}
}

// maxSpare bounds the arrays a writer keeps: the queue's when it exits,
// and the written batch's, which becomes the queue when the next batch is
// taken, so that a burst allocates nothing, not even when it is written by
// several writer goroutines one after another. A larger one goes.
// ShrinkIdleLocked drops the kept arrays once the connection is quiet.
const maxSpare = 256

// idleQueueCap is the largest queue array ShrinkIdleLocked leaves in place.
const idleQueueCap = 4

// ShrinkIdleLocked drops the arrays an idle connection need not hold: the
// spare, and the queue's when it is empty but large. The caller holds the
// source's lock; a heartbeat is the moment, so a connection quiet since the
// last one keeps almost nothing and a busy one keeps its arrays.
func (w *Writer[T]) ShrinkIdleLocked(queue *[]T) {
	if len(*queue) > 0 {
		return
	}
	w.spare = nil
	if cap(*queue) > idleQueueCap {
		*queue = nil
	}
}

// run drains src onto the connection, batch by batch, and exits as soon
// as the queue is empty: what is queued meanwhile starts another. Each
// written batch's array goes back to src as a later queue.
func (w *Writer[T]) run(src Source[T]) {
	var written []T // the batch just written, emptied
	for {
		src.Lock()
		queue, closing := src.QueueLocked()
		batch := *queue
		if written != nil {
			w.spare = written
		}
		if len(batch) == 0 {
			w.writing = false
			switch {
			case closing:
				w.spare = nil
			case cap(batch) > maxSpare:
				*queue = nil
			case cap(batch) == 0:
				*queue, w.spare = w.spare, nil
			}
			src.Unlock()
			if closing {
				src.Done(nil)
			}
			return
		}
		*queue, w.spare = w.spare, nil
		src.Unlock()
		err := w.writeBatch(src, batch)
		clear(batch)
		written = nil
		if cap(batch) <= maxSpare {
			written = batch[:0]
		}
		if err != nil {
			src.Lock()
			w.writing = false
			src.Unlock()
			src.Done(err)
			return
		}
	}
}

// frameWriter is a pooled buffered writer with room for a frame header, so
// writing a batch allocates nothing.
type frameWriter struct {
	bw  *bufio.Writer
	hdr [ws.MaxHeaderSize]byte
	out deadlineWriter
}

var writerPool = sync.Pool{New: func() any { return &frameWriter{bw: bufio.NewWriterSize(nil, 16<<10)} }}

func (w *Writer[T]) writeBatch(src Source[T], batch []T) error {
	fw := writerPool.Get().(*frameWriter)
	fw.out = deadlineWriter{conn: w.Conn, timeout: w.Timeout}
	fw.bw.Reset(&fw.out)
	w.wmu.Lock()
	err := src.WriteBatch(fw.bw, fw.hdr[:], batch)
	if err == nil {
		err = fw.bw.Flush()
	}
	fw.out.done()
	w.wmu.Unlock()
	fw.bw.Reset(nil)
	fw.out = deadlineWriter{}
	writerPool.Put(fw)
	return err
}

// deadlineWriter writes to a connection with a deadline set only when a
// write has to wait: most writes go whole into the socket's buffer at
// once, and setting a deadline costs a timer in the runtime each time.
type deadlineWriter struct {
	conn    net.Conn
	timeout time.Duration
	armed   bool // the deadline is set
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	n := 0
	if !d.armed {
		var done bool
		var err error
		if n, done, err = tryWrite(d.conn, p); done || err != nil {
			return n, err
		}
		d.conn.SetWriteDeadline(time.Now().Add(d.timeout))
		d.armed = true
	}
	m, err := d.conn.Write(p[n:])
	return n + m, err
}

// done clears a deadline it set, so that the next write can go without.
func (d *deadlineWriter) done() {
	if d.armed {
		d.conn.SetWriteDeadline(time.Time{})
		d.armed = false
	}
}

// controlTimeout bounds the write of a single frame.
const controlTimeout = time.Second

// Write writes p, one or more whole frames, between the writer's batches.
func (w *Writer[T]) Write(p []byte) (int, error) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	d := deadlineWriter{conn: w.Conn, timeout: controlTimeout}
	defer d.done()
	return d.Write(p)
}

// WriteClose writes a close frame with code and reason, the reason cut to
// the 123 bytes a close frame has room for.
func (w *Writer[T]) WriteClose(code ws.StatusCode, reason string) {
	const room = 123
	if len(reason) > room {
		cut := room
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	w.wmu.Lock()
	defer w.wmu.Unlock()
	d := deadlineWriter{conn: w.Conn, timeout: controlTimeout}
	defer d.done()
	ws.WriteFrame(&d, ws.NewCloseFrame(ws.NewCloseFrameBody(code, reason)))
}
