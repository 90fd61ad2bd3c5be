package redisbroker_test

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"time"

	"siogo/internal/eioclient"
	"siogo/redisbroker"
	"siogo/socketio"
)

// Two servers share one chat through Redis: a broadcast emitted on one
// reaches the clients of the other.
func Example() {
	redisURL, stop := startRedis()
	defer stop()

	node := func() (*socketio.Server, *redisbroker.Streams) {
		c, err := redisbroker.NewClient(redisURL, nil)
		if err != nil {
			panic(err)
		}
		broker := redisbroker.NewStreams(c, redisbroker.StreamsConfig{})
		return socketio.NewServer(socketio.Options{Broker: broker}), broker
	}
	a, brokerA := node()
	b, brokerB := node()
	defer a.Close(context.Background())
	defer b.Close(context.Background())

	srv := httptest.NewServer(a)
	defer srv.Close()
	client := connect(srv.URL) // a client of a

	waitReady(brokerA, brokerB)
	b.Of("/").Emit("news", "from b")
	fmt.Println(client.next())
	// Output: 2["news","from b"]
}

// startRedis runs a redis-server of the example's own.
func startRedis() (string, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		panic(err)
	}
	url := "redis://127.0.0.1:" + strconv.Itoa(port) + "/0"
	for range 100 {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			c.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return url, func() { cmd.Process.Kill(); cmd.Wait() }
}

// waitReady waits until the brokers read the stream.
func waitReady(brokers ...*redisbroker.Streams) {
	for _, b := range brokers {
		for i := 0; b.Ready(context.Background()) != nil; i++ {
			if i == 500 {
				panic("a broker did not reach Redis")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

type exampleClient struct{ c *eioclient.Client }

func connect(base string) exampleClient {
	ctx := context.Background()
	c, err := eioclient.Dial(ctx, base+"/socket.io/", 4, "websocket", nil)
	if err != nil {
		panic(err)
	}
	c.Send(ctx, "40")
	e := exampleClient{c}
	e.next() // the CONNECT reply
	return e
}

func (e exampleClient) next() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := e.c.Next(ctx)
	if err != nil {
		panic(err)
	}
	return string(p.Data)
}
