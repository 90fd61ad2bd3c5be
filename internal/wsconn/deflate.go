package wsconn

import (
	"bufio"
	"compress/flate"
	"io"
	"sync"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"github.com/gobwas/ws/wsutil"
)

// permessage-deflate (RFC 7692) through gobwas/ws's wsflate, without context
// takeover in either direction. Every message is compressed and
// decompressed on its own, from pooled compressors, so a connection holds
// no compression state between messages, and the compressed form of a
// payload depends on the payload alone: a message sent to many connections
// can be compressed once for all of them.

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

// deflateLevel is the compression level of the payloads AppendDeflated
// makes: the fastest, as for the HTTP compression of polling answers.
const deflateLevel = flate.BestSpeed

// deflater is a pooled permessage-deflate compressor.
type deflater struct {
	out sliceWriter
	zw  *wsflate.Writer
}

var deflaters = sync.Pool{New: func() any {
	d := &deflater{}
	d.zw = wsflate.NewWriter(nil, func(w io.Writer) wsflate.Compressor {
		f, _ := flate.NewWriter(w, deflateLevel)
		return f
	})
	return d
}}

// AppendDeflated appends prefix and data, compressed as the payload of one
// permessage-deflate message (sent with RSV1 set), to dst.
func AppendDeflated(dst, prefix, data []byte) []byte {
	d := deflaters.Get().(*deflater)
	d.out.b = dst
	d.zw.Reset(&d.out)
	// Writing to a slice cannot fail, and compress/flate ends a flush
	// with the tail wsflate strips.
	d.zw.Write(prefix)
	d.zw.Write(data)
	d.zw.Flush()
	dst = d.out.b
	d.out.b = nil
	d.zw.Reset(nil)
	deflaters.Put(d)
	return dst
}

// sliceWriter is an io.Writer appending to a byte slice.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
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

// noOtherRsv refuses a frame with a reserved bit no extension claimed.
func noOtherRsv(h ws.Header) (ws.Header, error) {
	if h.Rsv != 0 {
		return h, ws.ErrProtocolNonZeroRsv
	}
	return h, nil
}
