package eioclient

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
)

// permessage-deflate (RFC 7692) on the client side, through gobwas/ws's
// wsflate, without context takeover in either direction: each message is
// compressed and inflated on its own, from pooled state, so a connection
// holds nothing between messages. That is what the chat server supports,
// and Node's ws accepts it.

// deflateOffer is the offer a client with Deflate makes.
var deflateOffer = wsflate.Parameters{ServerNoContextTakeover: true, ClientNoContextTakeover: true}

// deflateThreshold is the size from which the client compresses what it
// sends, as ws (socket.io-client on Node.js) does by default; smaller
// messages go uncompressed, which the extension allows.
const deflateThreshold = 1024

// rsv1 is the frame header bit that marks a compressed message.
var rsv1 = ws.Rsv(true, false, false)

// checkDeflateAnswer reads the server's answer to the offer: agreed is
// false when the server declined. An answer that keeps context on the
// server's side, or asks for a window compress/flate cannot keep to, is an
// error: the client could not read or write such messages.
func checkDeflateAnswer(p wsflate.Parameters) error {
	if !p.ServerNoContextTakeover {
		return errors.New("eioclient: the server agreed to permessage-deflate without server_no_context_takeover")
	}
	if p.ClientMaxWindowBits.Defined() && p.ClientMaxWindowBits.Bytes() < wsflate.MaxLZ77WindowSize {
		return fmt.Errorf("eioclient: the server asks for a deflate window of %d bytes", p.ClientMaxWindowBits.Bytes())
	}
	return nil
}

// inflater is a pooled decompressor for one message at a time.
type inflater struct {
	src bytes.Reader
	zr  *wsflate.Reader
}

var inflaters = sync.Pool{New: func() any {
	z := &inflater{}
	z.zr = wsflate.NewReader(nil, func(r io.Reader) wsflate.Decompressor { return &flateReader{flate.NewReader(r)} })
	return z
}}

// flateReader gives compress/flate's reader the Reset(io.Reader) that
// wsflate reuses decompressors with.
type flateReader struct{ io.ReadCloser }

func (f *flateReader) Reset(r io.Reader) { f.ReadCloser.(flate.Resetter).Reset(r, nil) }

// inflate appends the message whose compressed payload is z to dst, and
// fails beyond max bytes.
func inflate(dst, z []byte, max int) ([]byte, error) {
	in := inflaters.Get().(*inflater)
	defer inflaters.Put(in)
	in.src.Reset(z)
	in.zr.Reset(&in.src)
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := in.zr.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst) > max {
			return dst, fmt.Errorf("eioclient: message of over %d bytes", max)
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, fmt.Errorf("eioclient: inflating a message: %w", err)
		}
	}
}

// deflater is a pooled compressor for one message at a time.
type deflater struct {
	out bytes.Buffer
	zw  *wsflate.Writer
}

var deflaters = sync.Pool{New: func() any {
	d := &deflater{}
	d.zw = wsflate.NewWriter(nil, func(w io.Writer) wsflate.Compressor {
		f, _ := flate.NewWriter(w, flate.BestSpeed)
		return f
	})
	return d
}}

// appendDeflated appends p, compressed as the payload of one
// permessage-deflate message, to dst.
func appendDeflated(dst, p []byte) []byte {
	d := deflaters.Get().(*deflater)
	defer deflaters.Put(d)
	d.out.Reset()
	d.zw.Reset(&d.out)
	// Writing to a bytes.Buffer cannot fail.
	d.zw.Write(p)
	d.zw.Flush()
	return append(dst, d.out.Bytes()...)
}
