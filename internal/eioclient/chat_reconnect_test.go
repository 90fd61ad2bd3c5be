package eioclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReconnectWaitsForTheReader: a polling session can end from the
// sending side (a failed POST) while the reader is still going through the
// packets of its last poll. Reconnect must present the offset of the last
// line the reader handed over, not of one before, or the server would
// replay a line the client already has.
func TestReconnectWaitsForTheReader(t *testing.T) {
	var (
		mu       sync.Mutex
		sessions int
		polls    = map[string]int{}
		connects = map[string]string{}
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sid := r.URL.Query().Get("sid")
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		switch {
		case sid == "":
			sessions++
			mu.Unlock()
			fmt.Fprintf(w, `0{"sid":"s%d","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`, sessions)
			return
		case r.Method == http.MethodPost && strings.HasPrefix(string(body), "40"):
			connects[sid] = string(body[2:])
			mu.Unlock()
			io.WriteString(w, "ok")
			return
		case r.Method == http.MethodPost:
			mu.Unlock()
			http.Error(w, "no", http.StatusBadRequest) // ends the first session
			return
		}
		polls[sid]++
		n := polls[sid]
		mu.Unlock()
		switch {
		case n == 1:
			io.WriteString(w, `40{"sid":"sock","pid":"P"}`)
		case n == 2 && sid == "s1":
			io.WriteString(w, `42["clientReceiver",{"clientID":1,"message":"one"},"1-0"]`+"\x1e"+
				`42["clientReceiver",{"clientID":1,"message":"two"},"2-0"]`)
		default:
			<-r.Context().Done()
		}
	}))
	defer srv.Close()

	dialled := make(chan *ChatClient, 1)
	release := make(chan struct{})
	var lines []string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := DialChat(ctx, srv.URL, ChatOptions{Transport: "polling", OnLine: func(l ChatLine) {
		lines = append(lines, l.Message)
		if l.Message != "one" {
			return
		}
		c := <-dialled
		c.Send("ends the session")
		<-c.Done()
		<-release
	}})
	if err != nil {
		t.Fatal(err)
	}
	dialled <- c
	<-c.Done()
	reconnected := make(chan error, 1)
	var c2 *ChatClient
	go func() {
		var err error
		c2, err = c.Reconnect(ctx, srv.URL)
		reconnected <- err
	}()
	close(release)
	if err := <-reconnected; err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if strings.Join(lines, ",") != "one,two" {
		t.Errorf("lines %q", lines)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := connects["s2"]; got != `{"offset":"2-0","pid":"P"}` {
		t.Errorf("reconnected with %q, want the pid and the offset of line two", got)
	}
	if !c2.Recovered() {
		t.Error("not recovered")
	}
}
