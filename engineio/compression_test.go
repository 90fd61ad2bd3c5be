package engineio

import (
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestNegotiateEncoding: the coding chosen for an Accept-Encoding header.
// Rows are what the reference (the accepts and negotiator packages, asked
// for ["gzip", "deflate"]) answers.
func TestNegotiateEncoding(t *testing.T) {
	for _, c := range []struct {
		header string
		want   string
	}{
		{"gzip, deflate, br", "gzip"},
		{"deflate, gzip", "deflate"},
		{"deflate", "deflate"},
		{"br", ""},
		{"identity", ""},
		{"*", "gzip"},
		{"gzip;q=0, deflate", "deflate"},
		{"gzip;q=0.5, deflate;q=0.8", "deflate"},
		{"deflate;q=0.5, gzip;q=0.5", "deflate"},
		{"", ""},
		{"GZIP", "gzip"},
		{"x-gzip", ""},
		{"gzip;q=0", ""},
		{"*;q=0", ""},
		{"br, *", "gzip"},
		{"identity;q=0", ""},
		{"gzip, deflate, br, zstd", "gzip"},
		{"*;q=0.1, deflate", "deflate"},
		{"gzip;q=0, *", "deflate"},
	} {
		if got := negotiateEncoding(c.header); got != c.want {
			t.Errorf("Accept-Encoding %q: %q, want %q", c.header, got, c.want)
		}
	}
}

// sidInOpen finds the sid in a handshake answer, XHR or JSONP.
var sidInOpen = regexp.MustCompile(`sid\\?":\\?"([A-Za-z0-9_-]+)`)

// rawGet sends a GET with the given Accept-Encoding and returns the response
// with its body as it came over the wire.
func rawGet(t *testing.T, u, acceptEncoding string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func inflate(t *testing.T, encoding string, body []byte) string {
	t.Helper()
	var r io.Reader
	var err error
	switch encoding {
	case "gzip":
		r, err = gzip.NewReader(strings.NewReader(string(body)))
	case "deflate":
		r, err = zlib.NewReader(strings.NewReader(string(body)))
	default:
		return string(body)
	}
	if err != nil {
		t.Fatalf("%s body: %v", encoding, err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s body: %v", encoding, err)
	}
	return string(b)
}

// TestHTTPCompression: a polling answer from the threshold up is compressed
// as Accept-Encoding asks, XHR and JSONP alike; a smaller one, a request
// that accepts neither coding, or a server with compression off gets it
// plain.
func TestHTTPCompression(t *testing.T) {
	const threshold = 200
	on := startEcho(t, Config{HTTPCompressionThreshold: threshold})
	off := startEcho(t, Config{DisableHTTPCompression: true})
	long := "4" + strings.Repeat("안녕하세요 ", 40)
	for _, c := range []struct {
		name   string
		srv    *echoServer
		jsonp  bool
		msg    string
		accept string
		want   string // Content-Encoding
	}{
		{"gzip", on, false, long, "gzip, deflate, br", "gzip"},
		{"deflate", on, false, long, "deflate", "deflate"},
		{"neither accepted", on, false, long, "br", ""},
		{"no Accept-Encoding", on, false, long, "", ""},
		{"under the threshold", on, false, "4short", "gzip", ""},
		{"JSONP", on, true, long, "gzip", "gzip"},
		{"compression off", off, false, long, "gzip", ""},
	} {
		for _, protocol := range []int{3, 4} {
			t.Run(fmt.Sprintf("%s EIO%d", c.name, protocol), func(t *testing.T) {
				base := fmt.Sprintf("%s?EIO=%d&transport=polling", c.srv.url, protocol)
				if c.jsonp {
					base += "&j=1"
				}
				_, open := rawGet(t, base, "")
				m := sidInOpen.FindSubmatch(open)
				if m == nil {
					t.Fatalf("no sid in %q", open)
				}
				sid := string(m[1])
				u := base + "&sid=" + sid
				payload := c.msg
				if protocol == 3 {
					payload = fmt.Sprintf("%d:%s", len([]rune(c.msg)), c.msg)
				}
				body := payload
				contentType := "text/plain;charset=UTF-8"
				if c.jsonp {
					body = "d=" + url.QueryEscape(payload)
					contentType = "application/x-www-form-urlencoded"
				}
				if resp, got := httpDo(t, http.MethodPost, u, contentType, strings.NewReader(body)); resp.StatusCode != http.StatusOK {
					t.Fatalf("POST: %d %s", resp.StatusCode, got)
				}
				resp, raw := rawGet(t, u, c.accept)
				if got := resp.Header.Get("Content-Encoding"); got != c.want {
					t.Errorf("Content-Encoding %q, want %q", got, c.want)
				}
				if resp.Header.Get("Content-Length") != fmt.Sprint(len(raw)) {
					t.Errorf("Content-Length %q for %d bytes", resp.Header.Get("Content-Length"), len(raw))
				}
				want := payload
				if c.jsonp {
					want = string(appendJSONP(nil, []byte("___eio[1]("), []byte(payload)))
				}
				if got := inflate(t, c.want, raw); got != want {
					t.Errorf("body %q, want %q", got, want)
				}
				if c.want != "" && len(raw) >= len(want) {
					t.Errorf("compressed to %d bytes from %d", len(raw), len(want))
				}
			})
		}
	}
}
