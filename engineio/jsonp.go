package engineio

import (
	"bytes"
	"fmt"
	"net/url"
	"unicode/utf8"

	"siogo/internal/eioparser"
)

// JSONP polling is the long-polling variant of clients that cannot use
// XMLHttpRequest across origins: socket.io-client 1.x and 2.x with
// forceJSONP, or in old browsers. A handshake with the query parameter
// j=<index> makes the session a JSONP one, as in the reference's
// transports/polling-jsonp.js:
//
//   - a GET is answered with a script, ___eio[<index>]("<payload>"); the
//     payload is a JavaScript string literal;
//   - a POST carries the payload in the form field d, with the client's
//     newlines escaped as \n.
//
// The session keeps the handshake's index, as the reference does; j on later
// requests is ignored. Where the reference keeps the digits of any j, a j
// that is not 1 to 9 digits is refused, so that nothing but digits can reach
// the script.

// maxJSONPIndexDigits bounds j: clients number their JSONP transports from 0.
const maxJSONPIndexDigits = 9

// jsonpHead returns the start of a JSONP response, ___eio[<j>](, or an error
// when j is not a plain decimal number.
func jsonpHead(j string) ([]byte, error) {
	if j == "" || len(j) > maxJSONPIndexDigits {
		return nil, fmt.Errorf("engineio: JSONP index %q: want 1 to %d digits", j, maxJSONPIndexDigits)
	}
	for i := 0; i < len(j); i++ {
		if j[i] < '0' || j[i] > '9' {
			return nil, fmt.Errorf("engineio: JSONP index %q: want 1 to %d digits", j, maxJSONPIndexDigits)
		}
	}
	return []byte("___eio[" + j + "]("), nil
}

// appendJSONP appends head, payload as a JavaScript string literal, and the
// closing ");". The literal is what the reference writes: JSON.stringify of
// the payload, with U+2028 and U+2029 escaped too, since JavaScript before
// ES2019 does not allow them raw in a string literal.
func appendJSONP(dst, head, payload []byte) []byte {
	dst = append(dst, head...)
	dst = append(dst, '"')
	for i := 0; i < len(payload); {
		c := payload[i]
		if c < utf8.RuneSelf {
			i++
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				if c < 0x20 {
					const hex = "0123456789abcdef"
					dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
				} else {
					dst = append(dst, c)
				}
			}
			continue
		}
		r, size := utf8.DecodeRune(payload[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			// Never produced by the server (text is checked on the way
			// in); kept out of the script all the same.
			dst = append(dst, `\ufffd`...)
		case r == '\u2028':
			dst = append(dst, `\u2028`...)
		case r == '\u2029':
			dst = append(dst, `\u2029`...)
		default:
			dst = append(dst, payload[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"', ')', ';')
}

// decodeJSONPForm extracts the payload from a JSONP POST body, d=<payload>
// URL-encoded, and undoes the client's escaping of newlines: it sends a
// newline as \n and an escaped newline (a backslash then n) as \\n.
func decodeJSONPForm(body []byte) ([]byte, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("%w: JSONP form: %v", eioparser.ErrParse, err)
	}
	d := form["d"]
	if len(d) != 1 {
		return nil, fmt.Errorf("%w: JSONP form: want one field d, got %d", eioparser.ErrParse, len(d))
	}
	return unescapeJSONPNewlines([]byte(d[0])), nil
}

// unescapeJSONPNewlines is the reference's
//
//	data.replace(/(\\)?\\n/g, (m, slashes) => slashes ? m : "\n").replace(/\\\\n/g, "\\n")
//
// in one pass: \n becomes a newline and \\n becomes \n.
func unescapeJSONPNewlines(s []byte) []byte {
	if !bytes.Contains(s, []byte(`\n`)) {
		return s
	}
	out := s[:0] // the result is never longer, and each write trails the read
	for i := 0; i < len(s); {
		switch {
		case s[i] == '\\' && i+2 < len(s) && s[i+1] == '\\' && s[i+2] == 'n':
			out = append(out, '\\', 'n')
			i += 3
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == 'n':
			out = append(out, '\n')
			i += 2
		default:
			out = append(out, s[i])
			i++
		}
	}
	return out
}
