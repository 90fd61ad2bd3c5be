package engineio

import (
	"bufio"
	"bytes"
	"compress/flate"
	"io"
	"sync"
	"sync/atomic"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws/wsflate"
	"github.com/gobwas/ws/wsutil"
)

// permessage-deflate (RFC 7692) for the WebSocket transport, through gobwas/ws's
// wsflate, without context takeover in either direction. Every message is
// compressed and decompressed on its own, from pooled compressors, so:
//
//   - a connection holds no compression state between messages, and an idle
//     one holds nothing at all;
//   - the compressed form of a frame depends only on its payload and on the
//     server's settings, which every session shares. A broadcast's message
//     is therefore compressed once, by the first writer that needs it, and
//     the same bytes go to every recipient that negotiated the extension
//     (sharedFrame).

// deflateParameters is what the server accepts: an offer that needs a
// smaller server window than compress/flate's 32 KiB is declined.
var deflateParameters = wsflate.Parameters{
	ServerNoContextTakeover: true,
	ClientNoContextTakeover: true,
}

// negotiateDeflate returns the extension negotiation for one upgrade and a
// function reporting whether permessage-deflate was agreed.
func negotiateDeflate() (func(httphead.Option) (httphead.Option, error), func() bool) {
	ext := &wsflate.Extension{Parameters: deflateParameters}
	return ext.Negotiate, func() bool {
		_, ok := ext.Accepted()
		return ok
	}
}

// sharedFrame holds the compressed payloads of one message sent to many
// sessions, computed at most once each. A text message has one payload for
// both protocol revisions; a binary one has two, as Engine.IO 3 puts a type
// byte before the data.
type sharedFrame struct {
	once [2]sync.Once
	z    [2][]byte // nil when compressing does not make the payload smaller
}

// get returns the compressed payload of variant v, computing it on first
// use in scratch, which it returns grown if need be.
func (f *sharedFrame) get(v int, typ, data, scratch []byte) (z, grown []byte) {
	f.once[v].Do(func() {
		scratch = deflatePayload(scratch[:0], typ, data)
		if len(scratch) < len(typ)+len(data) {
			f.z[v] = bytes.Clone(scratch)
		}
	})
	return f.z[v], scratch
}

// PrepareBroadcast readies msgs, the messages of one broadcast, to be sent
// unchanged to many sessions: with PerMessageDeflate on, each message's
// WebSocket frame is then compressed once for all recipients rather than
// once per recipient. Call it before the first Send of msgs; it sets up
// shared state in the slice's elements. It does nothing when
// PerMessageDeflate is off, and messages never prepared are compressed by
// each session that sends them.
func (s *Server) PrepareBroadcast(msgs []Message) {
	if !s.cfg.PerMessageDeflate {
		return
	}
	for i := range msgs {
		if msgs[i].shared == nil && len(msgs[i].Data)+1 >= s.cfg.PerMessageDeflateThreshold {
			msgs[i].shared = new(sharedFrame)
		}
	}
}

// deflater is a pooled permessage-deflate compressor.
type deflater struct {
	out sliceWriter
	zw  *wsflate.Writer
}

var deflaters = sync.Pool{New: func() any {
	d := &deflater{}
	d.zw = wsflate.NewWriter(nil, func(w io.Writer) wsflate.Compressor {
		f, _ := flate.NewWriter(w, compressionLevel)
		return f
	})
	return d
}}

// deflations counts the payloads compressed; the tests check with it that a
// broadcast is compressed once.
var deflations atomic.Int64

// deflatePayload appends typ and data, compressed as one permessage-deflate
// message with a fresh window, to dst.
func deflatePayload(dst, typ, data []byte) []byte {
	deflations.Add(1)
	d := deflaters.Get().(*deflater)
	d.out.b = dst
	d.zw.Reset(&d.out)
	// Writing to a slice cannot fail, and compress/flate ends a flush
	// with the tail wsflate strips.
	d.zw.Write(typ)
	d.zw.Write(data)
	d.zw.Flush()
	dst = d.out.b
	d.out.b = nil
	d.zw.Reset(nil)
	deflaters.Put(d)
	return dst
}

// inflater is a pooled permessage-deflate decompressor for one message.
type inflater struct {
	src endReader
	br  *bufio.Reader // lets flate read without a buffer of its own
	zr  *wsflate.Reader
}

var inflaters = sync.Pool{New: func() any {
	z := &inflater{br: bufio.NewReaderSize(nil, 4096)}
	z.zr = wsflate.NewReader(nil, func(r io.Reader) wsflate.Decompressor {
		return &flateReader{flate.NewReader(r)}
	})
	return z
}}

// flateReader gives compress/flate's reader the Reset(io.Reader) that
// wsflate reuses decompressors with.
type flateReader struct{ io.ReadCloser }

func (f *flateReader) Reset(r io.Reader) { f.ReadCloser.(flate.Resetter).Reset(r, nil) }

// endReader remembers that its source reached the end of the message, so
// that nothing reads past it.
type endReader struct {
	r   io.Reader
	end bool
}

func (e *endReader) Read(p []byte) (int, error) {
	if e.end {
		return 0, io.EOF
	}
	n, err := e.r.Read(p)
	if err == io.EOF {
		e.end = true
	}
	return n, err
}

// inflateMessage decompresses the message src reads, appending at most max
// bytes to dst; more is ErrMessageTooLarge. Whatever src still holds after
// the compressed data ends is read and dropped.
func inflateMessage(dst []byte, src io.Reader, max int64) ([]byte, error) {
	z := inflaters.Get().(*inflater)
	defer func() {
		z.src.r = nil
		z.br.Reset(nil)
		inflaters.Put(z)
	}()
	z.src = endReader{r: src}
	z.br.Reset(&z.src)
	z.zr.Reset(z.br)
	dst, err := appendAll(dst, z.zr, max)
	if err != nil {
		return dst, err
	}
	if !z.src.end {
		if _, err := io.Copy(io.Discard, z.br); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// appendAll reads r to its end, appending to dst, and fails with
// ErrMessageTooLarge beyond max bytes.
func appendAll(dst []byte, r io.Reader, max int64) ([]byte, error) {
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		room := dst[len(dst):cap(dst)]
		if left := max + 1 - int64(len(dst)); int64(len(room)) > left {
			room = room[:left]
		}
		n, err := r.Read(room)
		dst = dst[:len(dst)+n]
		if int64(len(dst)) > max {
			return dst, wsutil.ErrMessageTooLarge
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}
