package redisbroker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// The Socket.IO layer keeps event payloads as JSON in which binary values are
// placeholders {"_placeholder":true,"num":i} indexing a list of attachments.
// On Redis the same payloads travel as msgpack, where binary values are
// plain bin items. This file converts between the two without losing map key
// order.

// maxDepth bounds the nesting of a decoded value, so that a hostile message
// cannot exhaust the stack.
const maxDepth = 500

// msgpackToJSON converts one msgpack value to JSON. Binary values become
// placeholders and are appended to attachments, in document order, as the
// Socket.IO parser numbers them.
type msgpackToJSON struct {
	r           *bytes.Reader
	dec         *msgpack.Decoder
	out         []byte
	attachments [][]byte
}

func newMsgpackToJSON(b []byte) *msgpackToJSON {
	r := bytes.NewReader(b)
	return &msgpackToJSON{r: r, dec: msgpack.NewDecoder(r), out: make([]byte, 0, 2*len(b)+16)}
}

// readSized reads a str or bin value: its length header, then its bytes.
func (c *msgpackToJSON) readSized() ([]byte, error) {
	n, err := c.dec.DecodeBytesLen()
	if err != nil {
		return nil, err
	}
	return c.readBytes(n)
}

// readBytes reads n raw bytes, refusing lengths beyond what is left so that a
// forged length cannot make it allocate.
func (c *msgpackToJSON) readBytes(n int) ([]byte, error) {
	if n < 0 || n > c.r.Len() {
		return nil, malformed("length %d beyond the end of the message", n)
	}
	b := make([]byte, n)
	if err := c.dec.ReadFull(b); err != nil {
		return nil, err
	}
	return b, nil
}

func (c *msgpackToJSON) value(depth int) error {
	if depth > maxDepth {
		return malformed("nested deeper than %d", maxDepth)
	}
	code, err := c.dec.PeekCode()
	if err != nil {
		return err
	}
	switch {
	case code == msgpcode.Nil:
		c.dec.DecodeNil()
		c.out = append(c.out, "null"...)
	case code == msgpcode.False || code == msgpcode.True:
		v, err := c.dec.DecodeBool()
		if err != nil {
			return err
		}
		c.out = strconv.AppendBool(c.out, v)
	case code == msgpcode.Uint64:
		v, err := c.dec.DecodeUint64()
		if err != nil {
			return err
		}
		c.out = strconv.AppendUint(c.out, v, 10)
	case msgpcode.IsFixedNum(code), code >= msgpcode.Uint8 && code <= msgpcode.Uint32,
		code >= msgpcode.Int8 && code <= msgpcode.Int64:
		v, err := c.dec.DecodeInt64()
		if err != nil {
			return err
		}
		c.out = strconv.AppendInt(c.out, v, 10)
	case code == msgpcode.Float || code == msgpcode.Double:
		v, err := c.dec.DecodeFloat64()
		if err != nil {
			return err
		}
		c.out = appendJSNumber(c.out, v)
	case msgpcode.IsString(code):
		b, err := c.readSized()
		if err != nil {
			return err
		}
		c.out = appendJSONString(c.out, string(b))
	case msgpcode.IsBin(code):
		b, err := c.readSized()
		if err != nil {
			return err
		}
		c.out = append(c.out, `{"_placeholder":true,"num":`...)
		c.out = strconv.AppendInt(c.out, int64(len(c.attachments)), 10)
		c.out = append(c.out, '}')
		c.attachments = append(c.attachments, b)
	case msgpcode.IsFixedArray(code) || code == msgpcode.Array16 || code == msgpcode.Array32:
		n, err := c.dec.DecodeArrayLen()
		if err != nil {
			return err
		}
		c.out = append(c.out, '[')
		for i := 0; i < n; i++ {
			if i > 0 {
				c.out = append(c.out, ',')
			}
			if err := c.value(depth + 1); err != nil {
				return err
			}
		}
		c.out = append(c.out, ']')
	case msgpcode.IsFixedMap(code) || code == msgpcode.Map16 || code == msgpcode.Map32:
		n, err := c.dec.DecodeMapLen()
		if err != nil {
			return err
		}
		c.out = append(c.out, '{')
		for i := 0; i < n; i++ {
			if i > 0 {
				c.out = append(c.out, ',')
			}
			if err := c.key(); err != nil {
				return err
			}
			c.out = append(c.out, ':')
			if err := c.value(depth + 1); err != nil {
				return err
			}
		}
		c.out = append(c.out, '}')
	case msgpcode.IsExt(code):
		id, n, err := c.dec.DecodeExtHeader()
		if err != nil {
			return err
		}
		b, err := c.readBytes(n)
		if err != nil {
			return err
		}
		// Type -1 is the msgpack timestamp, what a JavaScript Date
		// becomes; JSON gives it the form Date.prototype.toJSON has.
		// Other extension types have no JSON form.
		if t, ok := decodeTimestamp(id, b); ok {
			c.out = appendJSONString(c.out, t.UTC().Format("2006-01-02T15:04:05.000Z"))
		} else {
			c.out = append(c.out, "null"...)
		}
	default:
		return malformed("unknown msgpack code 0x%02x", code)
	}
	return nil
}

// key writes a map key. JSON keys are strings, so numbers are written in
// their decimal form, as JavaScript would.
func (c *msgpackToJSON) key() error {
	code, err := c.dec.PeekCode()
	if err != nil {
		return err
	}
	if msgpcode.IsString(code) {
		b, err := c.readSized()
		if err != nil {
			return err
		}
		c.out = appendJSONString(c.out, string(b))
		return nil
	}
	mark := len(c.out)
	if msgpcode.IsBin(code) || msgpcode.IsExt(code) || msgpcode.IsFixedArray(code) || msgpcode.IsFixedMap(code) ||
		code == msgpcode.Array16 || code == msgpcode.Array32 || code == msgpcode.Map16 || code == msgpcode.Map32 {
		return malformed("map key of code 0x%02x", code)
	}
	if err := c.value(maxDepth); err != nil {
		return err
	}
	k := string(c.out[mark:])
	c.out = appendJSONString(c.out[:mark], k)
	return nil
}

func decodeTimestamp(id int8, b []byte) (time.Time, bool) {
	if id != -1 {
		return time.Time{}, false
	}
	switch len(b) {
	case 4:
		return time.Unix(int64(be32(b)), 0), true
	case 8:
		v := uint64(be32(b))<<32 | uint64(be32(b[4:]))
		return time.Unix(int64(v&(1<<34-1)), int64(v>>34)), true
	case 12:
		sec := uint64(be32(b[4:]))<<32 | uint64(be32(b[8:]))
		return time.Unix(int64(sec), int64(be32(b))), true
	}
	return time.Time{}, false
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// appendJSNumber writes a float as JSON.stringify does: the shortest
// round-tripping form, and null for NaN and the infinities.
func appendJSNumber(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	b, _ := json.Marshal(f) // encoding/json formats floats as ES6 does
	return append(dst, b...)
}

func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s)
	return append(dst, b...)
}

// decodeToJSON converts a whole msgpack document to JSON, with its binary
// values as placeholders indexing the returned attachments.
func decodeToJSON(b []byte) (json.RawMessage, [][]byte, error) {
	c := newMsgpackToJSON(b)
	if err := c.value(0); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, nil, malformed("truncated")
		}
		if !errors.Is(err, errMalformed) {
			err = fmt.Errorf("%w: %v", errMalformed, err)
		}
		return nil, nil, err
	}
	if c.r.Len() != 0 {
		return nil, nil, malformed("%d bytes after the value", c.r.Len())
	}
	return c.out, c.attachments, nil
}

// jsonValue is a parsed JSON value that keeps object keys in order, which
// encoding to msgpack needs (map lengths come first).
type jsonValue struct {
	kind byte // 'n'ull, 'b'ool, '0' number, 's'tring, 'a'rray, 'o'bject
	b    bool
	num  json.Number
	str  string
	keys []string
	vals []jsonValue // array elements or object values
}

func parseJSON(data []byte) (jsonValue, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := parseJSONValue(dec, 0)
	if err != nil {
		return jsonValue{}, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return jsonValue{}, malformed("data after the JSON value")
	}
	return v, nil
}

func parseJSONValue(dec *json.Decoder, depth int) (jsonValue, error) {
	if depth > maxDepth {
		return jsonValue{}, malformed("nested deeper than %d", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return jsonValue{}, malformed("invalid JSON: %v", err)
	}
	switch t := tok.(type) {
	case nil:
		return jsonValue{kind: 'n'}, nil
	case bool:
		return jsonValue{kind: 'b', b: t}, nil
	case json.Number:
		return jsonValue{kind: '0', num: t}, nil
	case string:
		return jsonValue{kind: 's', str: t}, nil
	case json.Delim:
		switch t {
		case '[':
			v := jsonValue{kind: 'a'}
			for dec.More() {
				e, err := parseJSONValue(dec, depth+1)
				if err != nil {
					return jsonValue{}, err
				}
				v.vals = append(v.vals, e)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return jsonValue{}, malformed("invalid JSON: %v", err)
			}
			return v, nil
		case '{':
			v := jsonValue{kind: 'o'}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return jsonValue{}, malformed("invalid JSON: %v", err)
				}
				e, err := parseJSONValue(dec, depth+1)
				if err != nil {
					return jsonValue{}, err
				}
				v.keys = append(v.keys, k.(string))
				v.vals = append(v.vals, e)
			}
			if _, err := dec.Token(); err != nil { // '}'
				return jsonValue{}, malformed("invalid JSON: %v", err)
			}
			return v, nil
		}
	}
	return jsonValue{}, malformed("unexpected JSON token %v", tok)
}

// placeholder returns the attachment index of a binary placeholder, which
// is, as for the Socket.IO parser, any object whose _placeholder is true.
func (v *jsonValue) placeholder() (num int64, ok bool) {
	if v.kind != 'o' {
		return 0, false
	}
	isPlaceholder := false
	num = -1
	for i, k := range v.keys {
		switch k {
		case "_placeholder":
			isPlaceholder = v.vals[i].kind == 'b' && v.vals[i].b
		case "num":
			if v.vals[i].kind == '0' {
				if n, err := v.vals[i].num.Int64(); err == nil {
					num = n
				}
			}
		}
	}
	return num, isPlaceholder
}

// encodeJSONValue writes v as msgpack the way a Node.js node encodes the
// same JavaScript value: integral numbers as ints, others as float64,
// placeholders as bin.
func encodeJSONValue(enc *msgpack.Encoder, v *jsonValue, attachments [][]byte) error {
	switch v.kind {
	case 'n':
		return enc.EncodeNil()
	case 'b':
		return enc.EncodeBool(v.b)
	case 's':
		return enc.EncodeString(v.str)
	case '0':
		return encodeNumber(enc, v.num)
	case 'a':
		if err := enc.EncodeArrayLen(len(v.vals)); err != nil {
			return err
		}
		for i := range v.vals {
			if err := encodeJSONValue(enc, &v.vals[i], attachments); err != nil {
				return err
			}
		}
		return nil
	case 'o':
		if num, ok := v.placeholder(); ok {
			if num < 0 || num >= int64(len(attachments)) {
				return fmt.Errorf("redisbroker: placeholder %d without an attachment", num)
			}
			b := attachments[num]
			if b == nil {
				b = []byte{} // EncodeBytes writes nil for a nil slice
			}
			return enc.EncodeBytes(b)
		}
		if err := enc.EncodeMapLen(len(v.keys)); err != nil {
			return err
		}
		for i, k := range v.keys {
			if err := enc.EncodeString(k); err != nil {
				return err
			}
			if err := encodeJSONValue(enc, &v.vals[i], attachments); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("redisbroker: unknown JSON value kind %q", v.kind)
}

func encodeNumber(enc *msgpack.Encoder, n json.Number) error {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return enc.EncodeInt(i)
	}
	if u, err := strconv.ParseUint(string(n), 10, 64); err == nil {
		return enc.EncodeUint(u)
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return fmt.Errorf("redisbroker: bad number %q", n)
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<63 {
		return enc.EncodeInt(int64(f))
	}
	return enc.EncodeFloat64(f)
}

// encodeJSONTo appends the msgpack form of a JSON document.
func encodeJSONTo(enc *msgpack.Encoder, data json.RawMessage, attachments [][]byte) error {
	v, err := parseJSON(data)
	if err != nil {
		return err
	}
	return encodeJSONValue(enc, &v, attachments)
}
