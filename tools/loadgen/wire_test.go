package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseOpen(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    openInfo
		wantErr bool
	}{
		{
			name: "eio4 websocket",
			in:   `0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`,
			want: openInfo{SID: "lv_VI97HAXpY6yYWAAAC", PingInterval: 25000, PingTimeout: 20000},
		},
		{
			name: "eio3 polling",
			in:   `0{"sid":"abc","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200}`,
			want: openInfo{SID: "abc", PingInterval: 300, PingTimeout: 200},
		},
		{name: "not an open packet", in: `40{"sid":"x"}`, wantErr: true},
		{name: "no sid", in: `0{"pingInterval":1}`, wantErr: true},
		{name: "bad json", in: `0{"sid":`, wantErr: true},
		{name: "empty", in: ``, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOpen([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func collect(t *testing.T, split func([]byte, func([]byte)) error, in string) ([]string, error) {
	t.Helper()
	var out []string
	err := split([]byte(in), func(p []byte) { out = append(out, string(p)) })
	return out, err
}

func TestSplitV4(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "4hello\x1e2\x1e4world", want: []string{"4hello", "2", "4world"}},
		{in: `40{"sid":"jnIA"}`, want: []string{`40{"sid":"jnIA"}`}},
		{in: "6", want: []string{"6"}},
		{in: "4a\x1e", want: []string{"4a", ""}},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := collect(t, splitV4, tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("splitV4(%q) err = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitV4(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSplitV3(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{name: "two messages", in: "6:4hello6:4world", want: []string{"4hello", "4world"}},
		{name: "connect after handshake", in: "2:40", want: []string{"40"}},
		{name: "namespaces", in: `2:4010:40/custom,32:42/custom,["hi",{"token":"abc"}]`,
			want: []string{"40", "40/custom,", `42/custom,["hi",{"token":"abc"}]`}},
		{name: "euro sign is one unit", in: "2:4€1:3", want: []string{"4€", "3"}},
		{name: "emoji is two units", in: "3:4😀1:6", want: []string{"4😀", "6"}},
		{name: "count ends inside a surrogate pair", in: "2:4😀", wantErr: true},
		{name: "too short", in: "7:4hello", wantErr: true},
		{name: "no length", in: ":4hello", wantErr: true},
		{name: "garbage length", in: "x:4", wantErr: true},
		{name: "missing colon", in: "4hello", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := collect(t, splitV3, tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v (got %q)", err, tt.wantErr, got)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEncodePayloadRoundTrip(t *testing.T) {
	pkts := []string{"40", `42["serverReceiver","a€😀"]`, "2", "3probe"}
	for _, eio := range []int{3, 4} {
		var body []byte
		for _, p := range pkts {
			body = encodePayload(eio, body, []byte(p))
		}
		var got []string
		if err := splitPayload(eio, body, func(p []byte) { got = append(got, string(p)) }); err != nil {
			t.Fatalf("eio%d: %v", eio, err)
		}
		if !reflect.DeepEqual(got, pkts) {
			t.Fatalf("eio%d: got %q, want %q", eio, got, pkts)
		}
	}
	if got := string(appendV3(nil, []byte("4€😀"))); got != "4:4€😀" {
		t.Fatalf("appendV3 = %q", got)
	}
	if got := string(appendV4([]byte("40"), []byte("3"))); got != "40\x1e3" {
		t.Fatalf("appendV4 = %q", got)
	}
}

func TestAppendEmit(t *testing.T) {
	tests := []struct {
		sender, seq int
		sent        int64
		size        int
		want        string
	}{
		{7, 42, 123456789, 0, `42["serverReceiver","7.42.123456789."]`},
		{0, 0, 5, 10, `42["serverReceiver","0.0.5.xxxx"]`},
	}
	for _, tt := range tests {
		got := string(appendEmit(nil, tt.sender, tt.seq, tt.sent, tt.size))
		if got != tt.want {
			t.Errorf("appendEmit(%d,%d,%d,%d) = %q, want %q", tt.sender, tt.seq, tt.sent, tt.size, got, tt.want)
		}
		// The emitted packet must be the JSON array a Socket.IO server decodes.
		var arr []string
		if err := json.Unmarshal([]byte(got[2:]), &arr); err != nil || len(arr) != 2 || arr[0] != "serverReceiver" {
			t.Errorf("appendEmit output %q is not a serverReceiver event: %v", got, err)
		}
	}
}

func TestParseDelivery(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		want        delivery
		ok, foreign bool
	}{
		{
			name: "ours",
			in:   `42["clientReceiver",{"clientID":12,"message":"3.55.987654321.xxxx"}]`,
			want: delivery{sender: 3, seq: 55, sentNS: 987654321}, ok: true,
		},
		{
			name: "keys in the other order",
			in:   `42["clientReceiver",{"message":"0.1.2.","clientID":0}]`,
			want: delivery{sender: 0, seq: 1, sentNS: 2}, ok: true,
		},
		{
			name: "someone else's message",
			in:   `42["clientReceiver",{"clientID":1,"message":"hello"}]`, foreign: true,
		},
		{
			name: "truncated fields",
			in:   `42["clientReceiver",{"clientID":1,"message":"1.2"}]`, foreign: true,
		},
		{
			name: "timestamp too long",
			in:   `42["clientReceiver",{"clientID":1,"message":"1.2.1234567890123456789012."}]`, foreign: true,
		},
		{
			name: "no message key",
			in:   `42["clientReceiver",{"clientID":1}]`, foreign: true,
		},
		{name: "other event", in: `42["auth",{}]`},
		{name: "namespace connect", in: `40{"sid":"x"}`},
		{name: "ping", in: `2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, foreign := parseDelivery([]byte(tt.in))
			if ok != tt.ok || foreign != tt.foreign {
				t.Fatalf("ok, foreign = %v, %v; want %v, %v", ok, foreign, tt.ok, tt.foreign)
			}
			if ok && got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestEmitDeliveryRoundTrip checks that what a sender writes is what a
// receiver reads once the server has wrapped it into a clientReceiver event.
func TestEmitDeliveryRoundTrip(t *testing.T) {
	emit := appendEmit(nil, 4321, 99, int64(3*time.Second), 64)
	var arr []string
	if err := json.Unmarshal(emit[2:], &arr); err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal([]any{"clientReceiver", map[string]any{"clientID": 7, "message": arr[1]}})
	if err != nil {
		t.Fatal(err)
	}
	d, ok, _ := parseDelivery(append([]byte("42"), body...))
	want := delivery{sender: 4321, seq: 99, sentNS: int64(3 * time.Second)}
	if !ok || d != want {
		t.Fatalf("parseDelivery = %+v, %v; want %+v", d, ok, want)
	}
	if len(arr[1]) != 64 || !strings.HasSuffix(arr[1], "x") {
		t.Fatalf("message %q not padded to 64 bytes", arr[1])
	}
}

func TestParseSources(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "", want: nil},
		{in: "3", want: []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}},
		{in: "127.0.0.5, 127.0.0.9", want: []string{"127.0.0.5", "127.0.0.9"}},
		{in: "10.0.0.1", wantErr: true},
		{in: "0", wantErr: true},
		{in: "300", wantErr: true},
	}
	for _, tt := range tests {
		ips, err := parseSources(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseSources(%q) err = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		var got []string
		for _, ip := range ips {
			got = append(got, ip.String())
		}
		if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseSources(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestCheckLoopback(t *testing.T) {
	for host, ok := range map[string]bool{
		"127.0.0.1": true, "localhost": true, "::1": true, "127.9.9.9": true,
		"10.1.2.3": false, "example.com": false, "": false,
	} {
		if err := checkLoopback(host); (err == nil) != ok {
			t.Errorf("checkLoopback(%q) = %v, want ok=%v", host, err, ok)
		}
	}
}
