package engineio

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// The expected strings in these tables were produced by the reference's own
// code (transports/polling-jsonp.js) run in Node.js.

func TestJSONPEscape(t *testing.T) {
	for _, c := range []struct {
		payload string
		want    string
	}{
		{"hello", `"hello"`},
		{`say "hi" \ back`, `"say \"hi\" \\ back"`},
		{"\b\f\n\r\t\x01\x1f\x7f", `"\b\f\n\r\t\u0001\u001f` + "\x7f" + `"`},
		{"line\u2028para\u2029end", `"line\u2028para\u2029end"`},
		{"안녕하세요 😀", `"안녕하세요 😀"`},
		{"</script><!--", `"</script><!--"`},
		{"4a\x1e4b", `"4a\u001e4b"`},
		{"", `""`},
		// Never produced by the server; no raw invalid byte reaches the
		// script all the same.
		{"bad \xff byte", `"bad \ufffd byte"`},
	} {
		got := string(appendJSONP(nil, []byte("___eio[7]("), []byte(c.payload)))
		if want := "___eio[7](" + c.want + ");"; got != want {
			t.Errorf("%q: got %s, want %s", c.payload, got, want)
		}
	}
}

func TestJSONPUnescape(t *testing.T) {
	for _, c := range []struct {
		posted string
		want   string
	}{
		{`plain`, `plain`},
		{`a\nb`, "a\nb"},
		{`a\\nb`, `a\nb`},
		{`\\\n`, `\\n`},
		{`\\\\n`, `\\\n`},
		{`x\`, `x\`},
		{`\n\n`, "\n\n"},
		{`n\`, `n\`},
		{`\\x\n`, "\\\\x\n"},
	} {
		if got := string(unescapeJSONPNewlines([]byte(c.posted))); got != c.want {
			t.Errorf("%q: got %q, want %q", c.posted, got, c.want)
		}
	}
}

func TestJSONPIndex(t *testing.T) {
	for _, j := range []string{"0", "7", "12", "123456789"} {
		head, err := jsonpHead(j)
		if err != nil || string(head) != "___eio["+j+"](" {
			t.Errorf("j=%q: %q %v", j, head, err)
		}
	}
	for _, j := range []string{"", "abc", "1<script>", "alert(1)", "1e3", "-1", "+1", "0x10", " 1", "1 ", "1234567890", "١", "1\x00", "%31"} {
		if head, err := jsonpHead(j); err == nil {
			t.Errorf("j=%q accepted as %q", j, head)
		}
	}
}

// handshakeBody is the reference's answer to a JSONP handshake with j=12,
// captured from socket.io 4.8.4 (allowEIO3) with the sid replaced by the
// fixed one of handshakeJSON.
const jsonpHandshakeEIO3 = `___eio[12]("118:0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}");`

// TestJSONPWire runs JSONP sessions on both protocol revisions: the
// handshake script, POSTed forms (with escaped newlines, quotes, Korean and
// a line separator), binary in base64, and the session keeping its index.
func TestJSONPWire(t *testing.T) {
	const sid = "lv_VI97HAXpY6yYWAAAC"
	e := startEcho(t, Config{NewID: func() string { return sid }})
	for _, protocol := range []int{3, 4} {
		t.Run(fmt.Sprintf("EIO%d", protocol), func(t *testing.T) {
			base := fmt.Sprintf("%s?EIO=%d&transport=polling", e.url, protocol)
			resp, body := httpDo(t, http.MethodGet, base+"&j=12", "", nil)
			want := jsonpHandshakeEIO3
			if protocol == 4 {
				want = strings.Replace(want, "118:0", "0", 1)
			}
			if resp.StatusCode != http.StatusOK || body != want {
				t.Fatalf("handshake: %d %s, want 200 %s", resp.StatusCode, body, want)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/javascript; charset=UTF-8" {
				t.Errorf("Content-Type %q, want text/javascript; charset=UTF-8", ct)
			}
			// Later requests keep the handshake's index, whatever their j.
			session := base + "&sid=" + sid + "&j=alert(1)"

			// A message with a JSON newline escape, a quote, Korean and a
			// line separator, as socket.io-client 2.x posts it: \n in the
			// payload goes as \\n, then the form is URL-encoded.
			msg := "4[\"a\\nb\",\"\\\"안녕\u2028\"]"
			payload := msg
			if protocol == 3 {
				payload = fmt.Sprintf("%d:%s", len([]rune(msg)), msg)
			}
			posted := strings.ReplaceAll(payload, `\n`, `\\n`)
			form := "d=" + url.QueryEscape(posted)
			resp, body = httpDo(t, http.MethodPost, session, "application/x-www-form-urlencoded", strings.NewReader(form))
			if resp.StatusCode != http.StatusOK || body != "ok" || resp.Header.Get("Content-Type") != "text/html" {
				t.Fatalf("POST: %d %q %q, want 200 ok text/html", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			resp, body = httpDo(t, http.MethodGet, session, "", nil)
			literal := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\u2028", `\u2028`).Replace(payload)
			want = `___eio[12]("` + literal + `");`
			if resp.StatusCode != http.StatusOK || body != want {
				t.Fatalf("echo: %d %s, want %s", resp.StatusCode, body, want)
			}

			// Binary goes as base64 in the text form (EIO3: b4, EIO4: b).
			bin := "bAQID"
			if protocol == 3 {
				bin = "6:b4AQID"
			}
			resp, body = httpDo(t, http.MethodPost, session, "application/x-www-form-urlencoded", strings.NewReader("d="+url.QueryEscape(bin)))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("binary POST: %d %s", resp.StatusCode, body)
			}
			if _, body = httpDo(t, http.MethodGet, session, "", nil); body != `___eio[12]("`+bin+`");` {
				t.Errorf("binary echo: %s, want ___eio[12](%q);", body, bin)
			}
		})
	}
}

// TestJSONPRefusals: a JSONP handshake with a hostile j is refused before
// anything is written, and a JSONP session's POSTs meet the same limits as
// XHR polling: payload size, packet rate, origin, malformed bodies. Each
// refusal by a limit is counted.
func TestJSONPRefusals(t *testing.T) {
	obs := &refusals{}
	e := startEcho(t, Config{MaxPayload: 100, MaxPacketsPerSecond: 5, AllowedOrigins: []string{"http://allowed.example"}, Observer: obs})
	for _, j := range []string{"", "abc", "1<script>alert(1)</script>", "1);alert(1);//", "99999999999999999999", "%E2%80%A8"} {
		resp, body := httpDo(t, http.MethodGet, e.url+"?EIO=3&transport=polling&j="+url.QueryEscape(j), "", nil)
		wantError(t, "j="+j, resp, body, http.StatusBadRequest, codeBadRequest)
		if strings.Contains(body, "script") || strings.Contains(body, "alert") {
			t.Errorf("j=%q: the answer repeats it: %s", j, body)
		}
	}
	if n := e.srv.SessionCount(); n != 0 {
		t.Errorf("%d sessions opened by refused handshakes", n)
	}

	open := func(t *testing.T, header http.Header) string {
		t.Helper()
		req, _ := http.NewRequestWithContext(testCtx(t), http.MethodGet, e.url+"?EIO=3&transport=polling&j=0", nil)
		req.Header = header
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("JSONP handshake with %v: %d", header, resp.StatusCode)
		}
		for sid := range e.sessionIDs() {
			return sid
		}
		t.Fatal("no session")
		return ""
	}
	post := func(t *testing.T, sid string, header http.Header, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(testCtx(t), http.MethodPost, e.url+"?EIO=3&transport=polling&j=0&sid="+sid, strings.NewReader(body))
		req.Header = header
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	t.Run("origin", func(t *testing.T) {
		// A script tag's GET has no Origin: its Referer decides.
		for _, c := range []struct {
			header http.Header
			status int
		}{
			{http.Header{"Referer": {"http://evil.example/page"}}, http.StatusForbidden},
			{http.Header{"Origin": {"http://evil.example"}}, http.StatusForbidden},
			{http.Header{"Referer": {"http://allowed.example/chat"}}, http.StatusOK},
			{http.Header{}, http.StatusOK},
		} {
			before := obs.count(http.StatusForbidden)
			req, _ := http.NewRequestWithContext(testCtx(t), http.MethodGet, e.url+"?EIO=3&transport=polling&j=0", nil)
			req.Header = c.header
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Errorf("handshake with %v: %d, want %d", c.header, resp.StatusCode, c.status)
			}
			if refused := obs.count(http.StatusForbidden) - before; refused != btoi(c.status == http.StatusForbidden) {
				t.Errorf("handshake with %v: %d refusals counted", c.header, refused)
			}
		}
		closeAll(t, e)
	})

	for _, c := range []struct {
		name   string
		header http.Header
		body   string
		status int
	}{
		// The form POST of a page on another origin carries its Origin.
		{"POST from another origin", http.Header{"Origin": {"http://evil.example"}}, "d=1:2", http.StatusForbidden},
		{"oversized POST", http.Header{}, "d=" + url.QueryEscape("101:4"+strings.Repeat("x", 100)), http.StatusRequestEntityTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			sid := open(t, http.Header{})
			before := obs.count(c.status)
			if resp := post(t, sid, c.header, c.body); resp.StatusCode != c.status {
				t.Errorf("%d, want %d", resp.StatusCode, c.status)
			}
			if obs.count(c.status) != before+1 {
				t.Errorf("the refusal was not counted")
			}
			closeAll(t, e)
		})
	}

	t.Run("rate", func(t *testing.T) {
		sid := open(t, http.Header{})
		post(t, sid, http.Header{}, "d="+url.QueryEscape(strings.Repeat("2:4x", 10)))
		if r := e.closeReason(t, sid); r != "packet rate limit exceeded" {
			t.Errorf("closed with %q, want packet rate limit exceeded", r)
		}
		if obs.rateDrops() != 1 {
			t.Errorf("%d packet rate drops counted, want 1", obs.rateDrops())
		}
	})

	t.Run("malformed", func(t *testing.T) {
		for _, body := range []string{"", "x=1:4", "d=1:4&d=1:4", "d=%zz", "d=5:4abc"} {
			sid := open(t, http.Header{})
			if resp := post(t, sid, http.Header{}, body); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("body %q: %d, want 400", body, resp.StatusCode)
			}
			if r := e.closeReason(t, sid); r != "parse error" {
				t.Errorf("body %q: closed with %q, want parse error", body, r)
			}
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sessionIDs lists the sessions still open.
func (e *echoServer) sessionIDs() map[string]bool {
	e.srv.mu.RLock()
	defer e.srv.mu.RUnlock()
	ids := make(map[string]bool)
	for id := range e.srv.sessions {
		ids[id] = true
	}
	return ids
}

// closeAll ends every open session and waits until they are gone.
func closeAll(t *testing.T, e *echoServer) {
	t.Helper()
	for id := range e.sessionIDs() {
		e.srv.session(id).closeWith("test", closeDrop)
		e.closeReason(t, id)
	}
}

// refusals is an Observer that counts refusals by status and packet rate
// drops.
type refusals struct {
	mu     sync.Mutex
	status map[int]int
	rate   int
}

func (r *refusals) SessionOpened(string, int)         {}
func (r *refusals) SessionUpgraded(int)               {}
func (r *refusals) SessionClosed(string, int, string) {}
func (r *refusals) QueueOverflow()                    {}
func (r *refusals) PollHandedOff()                    {}

func (r *refusals) PacketRateExceeded() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rate++
}

func (r *refusals) RequestRefused(status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status == nil {
		r.status = make(map[int]int)
	}
	r.status[status]++
}

func (r *refusals) count(status int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status[status]
}

func (r *refusals) rateDrops() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rate
}
