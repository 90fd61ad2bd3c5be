package integration

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"siogo/internal/testutil"
)

// The programs of the examples module, built and run, each chatting with
// real socket.io-client 4.x clients.

// chatThrough checks that two clients, connected to the first and the last
// of urls, chat both ways.
func chatThrough(t *testing.T, urls ...string) {
	t.Helper()
	a := startLBClients(t, urls[0], "4:default")
	b := startLBClients(t, urls[len(urls)-1], "4:websocket")
	a.connected([]int{0}, 1)
	b.connected([]int{0}, 1)
	run := "example" + strconv.FormatInt(time.Now().UnixNano(), 36)
	lines := append(a.sendLines(run+"|a", []int{0}, 2), b.sendLines(run+"|b", []int{0}, 2)...)
	a.received([]int{0}, lines)
	b.received([]int{0}, lines)
}

func TestExampleChat(t *testing.T) {
	srv := testutil.Start(t, "examples/chat")
	chatThrough(t, srv.URL())
}

func TestExampleRedisChat(t *testing.T) {
	r := testutil.StartRedis(t)
	a := testutil.Start(t, "examples/redischat", "-redis", r.URL())
	b := testutil.Start(t, "examples/redischat", "-redis", r.URL())
	waitSubscribers(t, r.URL(), "socket.io#/#", 2)
	chatThrough(t, a.URL(), b.URL())
}

func TestExampleMux(t *testing.T) {
	srv := testutil.Start(t, "examples/mux")
	resp, err := http.Get(srv.URL() + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "hello from the rest of the program") {
		t.Fatalf("/hello: %q", body)
	}
	chatThrough(t, srv.URL())
}
