package engineio_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"siogo/engineio"
	"siogo/internal/eioclient"
)

// echo sends each message back on its session.
type echo struct{ s *engineio.Session }

func (e echo) OnMessage(data []byte, binary bool) {
	e.s.Send(engineio.Message{Data: append([]byte(nil), data...), Binary: binary})
}

func (e echo) OnClose(reason string) {}

// An Engine.IO echo server: the transport alone, without Socket.IO.
func Example() {
	srv := engineio.NewServer(engineio.Config{}, func(s *engineio.Session) engineio.Handler {
		return echo{s}
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := eioclient.Dial(ctx, ts.URL+"/engine.io/", 4, "polling", nil)
	if err != nil {
		panic(err)
	}
	c.Send(ctx, "4hello")
	p, _ := c.Next(ctx)
	fmt.Println(string(p.Data))
	// Output: hello
}
