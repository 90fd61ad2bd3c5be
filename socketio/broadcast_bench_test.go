package socketio

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"github.com/gobwas/ws/wsutil"

	"siogo/engineio"
	"siogo/internal/testutil"
)

// countingClient is a WebSocket client that counts the bytes it receives
// and otherwise discards them, without allocating per frame.
type countingClient struct {
	conn net.Conn
	n    atomic.Int64
}

// joinedClient opens a WebSocket session and joins "/", offering
// permessage-deflate when deflate is set; it returns the connection and
// its reader.
func joinedClient(tb testing.TB, url string, deflate bool) (net.Conn, io.Reader) {
	tb.Helper()
	var d ws.Dialer
	if deflate {
		d.Extensions = []httphead.Option{wsflate.DefaultParameters.Option()}
	}
	conn, br, hs, err := d.Dial(context.Background(), "ws"+strings.TrimPrefix(url, "http")+"/socket.io/?EIO=4&transport=websocket")
	if err != nil {
		tb.Fatal(err)
	}
	if deflate != (len(hs.Extensions) > 0) {
		tb.Fatalf("permessage-deflate offered %v, agreed on %v", deflate, hs.Extensions)
	}
	var r io.Reader = conn
	if br != nil {
		r = io.MultiReader(br, conn)
	}
	// Open packet, then join "/". The replies are short enough to go
	// uncompressed.
	if _, _, err := wsutil.ReadServerData(rwPair{r, conn}); err != nil {
		tb.Fatal(err)
	}
	if err := wsutil.WriteClientText(conn, []byte("40")); err != nil {
		tb.Fatal(err)
	}
	if msg, _, err := wsutil.ReadServerData(rwPair{r, conn}); err != nil || !strings.HasPrefix(string(msg), "40{") {
		tb.Fatalf("connect reply %q, %v", msg, err)
	}
	return conn, r
}

func dialClient(tb testing.TB, url string, deflate bool) *countingClient {
	tb.Helper()
	conn, r := joinedClient(tb, url, deflate)
	c := &countingClient{conn: conn}
	go func() {
		buf := make([]byte, 32<<10)
		rd := bufio.NewReaderSize(r, 0)
		for {
			n, err := rd.Read(buf)
			c.n.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	return c
}

type rwPair struct {
	io.Reader
	io.Writer
}

// BenchmarkBroadcast measures one chat line fanned out to every connected
// WebSocket client, end to end: encoding, queueing, batched writes and the
// bytes arriving at each client. allocs/op stays flat as recipients grow:
// nothing is allocated per recipient.
func BenchmarkBroadcast(b *testing.B) {
	benchmarkBroadcast(b, false)
}

// BenchmarkBroadcastDeflate is BenchmarkBroadcast with permessage-deflate
// agreed by every client and a line long enough to be compressed. Each
// broadcast is compressed once for all recipients, so allocs/op stays flat
// here too.
func BenchmarkBroadcastDeflate(b *testing.B) {
	benchmarkBroadcast(b, true)
}

func benchmarkBroadcast(b *testing.B, deflate bool) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("recipients=%d", n), func(b *testing.B) {
			// The clients never answer pings: the heartbeat is set beyond
			// any run, or a long one would lose them and wait forever.
			srv := NewServer(Options{Engine: engineio.Config{
				MaxQueuedPackets:  1 << 20,
				PerMessageDeflate: deflate,
				PingInterval:      time.Hour,
			}})
			ts := httptest.NewServer(srv)
			defer ts.Close()
			defer srv.Close(context.Background())
			clients := make([]*countingClient, n)
			for i := range clients {
				clients[i] = dialClient(b, ts.URL, deflate)
			}
			nsp := srv.Of("/")
			for nsp.Len() < n {
				time.Sleep(time.Millisecond)
			}
			line := struct {
				ClientID int    `json:"clientID"`
				Message  string `json:"message"`
			}{7, "hello, everyone"}
			if deflate {
				line.Message = strings.Repeat("안녕하세요, everyone! ", 60)
			}
			// Boxed once: the benchmark itself allocates nothing per emit.
			var arg any = line
			base := make([]int64, n)
			for i, c := range clients {
				base[i] = c.n.Load()
			}
			// One more client reads a broadcast frame whole, to learn its
			// length on the wire, then leaves.
			frameLen := broadcastFrameLen(b, ts.URL, deflate, func() { nsp.Emit("clientReceiver", arg) })
			for nsp.Len() > n {
				time.Sleep(time.Millisecond)
			}

			// Wait for every byte at every client, from this goroutine so
			// that the wait itself allocates nothing.
			waitDelivered := func(sent int) {
				for i, c := range clients {
					for c.n.Load()-base[i] < int64(sent)*frameLen {
						time.Sleep(50 * time.Microsecond)
					}
				}
			}
			// Broadcasts go out in windows, like a closed-loop sender, so
			// queues stay short as they do in a live chat.
			const window = 32
			// Warm up: writers start and queues grow to a window's size.
			for range 2 * window {
				nsp.Emit("clientReceiver", arg)
			}
			warm := int64(2*window + 1) // and the sizing broadcast
			for i, c := range clients {
				for c.n.Load()-base[i] < warm*frameLen {
					time.Sleep(50 * time.Microsecond)
				}
				base[i] += warm * frameLen
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				nsp.Emit("clientReceiver", arg)
				if (i+1)%window == 0 {
					waitDelivered(i + 1)
				}
			}
			waitDelivered(b.N)
			b.StopTimer()
			b.ReportMetric(float64(b.N)*float64(n)/b.Elapsed().Seconds(), "deliveries/s")
			for _, c := range clients {
				c.conn.Close()
			}
		})
	}
}

// broadcastFrameLen connects one more client, runs emit, and returns the
// length in bytes of the frame the client receives, header included. The
// client then disconnects.
func broadcastFrameLen(tb testing.TB, url string, deflate bool, emit func()) int64 {
	tb.Helper()
	conn, r := joinedClient(tb, url, deflate)
	defer conn.Close()
	emit()
	h, err := ws.ReadHeader(r)
	if err != nil {
		tb.Fatal(err)
	}
	if rsv1 := h.Rsv&0x4 != 0; rsv1 != deflate {
		tb.Fatalf("broadcast frame RSV1 %v with permessage-deflate %v", rsv1, deflate)
	}
	return int64(ws.HeaderSize(h)) + h.Length
}

func BenchmarkEncodeEvent(b *testing.B) {
	b.ReportAllocs()
	args := []any{map[string]any{"clientID": 1, "message": "hello"}}
	for i := 0; i < b.N; i++ {
		encodeEvent("clientReceiver", args)
	}
}

func BenchmarkDecodeText(b *testing.B) {
	b.ReportAllocs()
	pkt := []byte(`2["serverReceiver","hello, everyone"]`)
	for i := 0; i < b.N; i++ {
		if _, _, err := decodeText(pkt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBroadcastEnqueue isolates the broadcast path itself: encoding
// once, selecting the recipients and queueing the shared frames on each,
// for long-polling sessions, whose queues are drained by their polls
// outside the timed region. allocs/op is the same for 10 and 1000
// recipients: the path allocates nothing per recipient, with or without an
// outgoing listener (OnAnyOutgoing) counting the deliveries.
func BenchmarkBroadcastEnqueue(b *testing.B) {
	for _, bc := range []struct {
		n        int
		listener bool
	}{{10, false}, {1000, false}, {10, true}, {1000, true}} {
		n := bc.n
		name := fmt.Sprintf("recipients=%d", n)
		if bc.listener {
			name += "/listener"
		}
		b.Run(name, func(b *testing.B) {
			srv := NewServer(Options{Engine: engineio.Config{MaxQueuedPackets: 1 << 20}})
			ts := httptest.NewServer(srv)
			defer ts.Close()
			// The sessions linger until their next poll, which never
			// comes: do not wait for them.
			closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			defer srv.Close(closeCtx)
			ctx := context.Background()
			endpoint := ts.URL + "/socket.io/"
			clients := make([]*testutil.EIOClient, n)
			for i := range clients {
				c, err := testutil.DialEIO(ctx, endpoint, 4, "polling", nil)
				if err != nil {
					b.Fatal(err)
				}
				if err := c.Send(ctx, "40"); err != nil {
					b.Fatal(err)
				}
				clients[i] = c
			}
			nsp := srv.Of("/")
			for nsp.Len() < n {
				time.Sleep(time.Millisecond)
			}
			var delivered atomic.Int64
			if bc.listener {
				nsp.OnAnyOutgoing(func(_ *OutgoingEvent, to []*Socket) { delivered.Add(int64(len(to))) })
			}
			drain := func() {
				var wg sync.WaitGroup
				for _, c := range clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if _, _, err := c.Get(ctx); err != nil {
							b.Error(err)
						}
					}()
				}
				wg.Wait()
			}
			drain() // the CONNECT replies
			line := struct {
				ClientID int    `json:"clientID"`
				Message  string `json:"message"`
			}{7, "hello, everyone"}
			const window = 64
			// Warm up: queues grow to a window's size once, then are reused.
			for range 2 {
				for range window {
					nsp.Emit("clientReceiver", line)
				}
				drain()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				nsp.Emit("clientReceiver", line)
				if (i+1)%window == 0 {
					b.StopTimer()
					drain()
					b.StartTimer()
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)*float64(n)/b.Elapsed().Seconds(), "enqueues/s")
		})
	}
}
