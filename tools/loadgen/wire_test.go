package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

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
			in:   `2["clientReceiver",{"clientID":12,"message":"3.55.987654321.xxxx"}]`,
			want: delivery{sender: 3, seq: 55, sentNS: 987654321}, ok: true,
		},
		{
			name: "keys in the other order",
			in:   `2["clientReceiver",{"message":"0.1.2.","clientID":0}]`,
			want: delivery{sender: 0, seq: 1, sentNS: 2}, ok: true,
		},
		{
			name: "someone else's message",
			in:   `2["clientReceiver",{"clientID":1,"message":"hello"}]`, foreign: true,
		},
		{
			name: "truncated fields",
			in:   `2["clientReceiver",{"clientID":1,"message":"1.2"}]`, foreign: true,
		},
		{
			name: "timestamp too long",
			in:   `2["clientReceiver",{"clientID":1,"message":"1.2.1234567890123456789012."}]`, foreign: true,
		},
		{
			name: "no message key",
			in:   `2["clientReceiver",{"clientID":1}]`, foreign: true,
		},
		{name: "other event", in: `2["auth",{}]`},
		{name: "namespace connect", in: `0{"sid":"x"}`},
		{name: "ack", in: `3["x"]`},
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
	d, ok, _ := parseDelivery(append([]byte("2"), body...))
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
