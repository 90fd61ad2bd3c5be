package eioclient

import (
	"reflect"
	"testing"
)

func TestParseOpen(t *testing.T) {
	tests := []struct {
		name    string
		in      Packet
		want    Open
		wantErr bool
	}{
		{
			name: "eio4 websocket",
			in:   Packet{Type: '0', Data: []byte(`{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`)},
			want: Open{SID: "lv_VI97HAXpY6yYWAAAC", Upgrades: []string{}, PingInterval: 25000, PingTimeout: 20000, MaxPayload: 1000000},
		},
		{
			name: "eio3 polling",
			in:   Packet{Type: '0', Data: []byte(`{"sid":"abc","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200}`)},
			want: Open{SID: "abc", Upgrades: []string{"websocket"}, PingInterval: 300, PingTimeout: 200},
		},
		{name: "not an open packet", in: Packet{Type: '4', Data: []byte(`0{"sid":"x"}`)}, wantErr: true},
		{name: "no sid", in: Packet{Type: '0', Data: []byte(`{"pingInterval":1}`)}, wantErr: true},
		{name: "bad json", in: Packet{Type: '0', Data: []byte(`{"sid":`)}, wantErr: true},
		{name: "binary", in: Packet{Type: '0', Data: []byte(`{"sid":"x"}`), Binary: true}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOpen(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	pkts := []Packet{
		{Type: '4', Data: []byte("0")},
		{Type: '4', Data: []byte(`2["serverReceiver","a€😀"]`)},
		{Type: '2'},
		{Type: '3', Data: []byte("probe")},
		{Type: '4', Data: []byte{0, 1, 0xff}, Binary: true},
	}
	for _, eio := range []int{3, 4} {
		body := EncodePayload(eio, pkts)
		got, err := DecodePayload(eio, "text/plain; charset=UTF-8", body)
		if err != nil {
			t.Fatalf("eio%d: decode %q: %v", eio, body, err)
		}
		if len(got) != len(pkts) {
			t.Fatalf("eio%d: %q decoded to %v, want %v", eio, body, got, pkts)
		}
		for i := range got {
			if got[i].String() != pkts[i].String() {
				t.Errorf("eio%d: packet %d = %v, want %v", eio, i, got[i], pkts[i])
			}
		}
	}
}

func TestEncodePayload(t *testing.T) {
	pkts := []Packet{{Type: '4', Data: []byte("€😀")}, {Type: '4', Data: []byte{1, 2}, Binary: true}}
	for eio, want := range map[int]string{3: "4:4€😀6:b4AQI=", 4: "4€😀\x1ebAQI="} {
		if got := string(EncodePayload(eio, pkts)); got != want {
			t.Errorf("eio%d: %q, want %q", eio, got, want)
		}
	}
	// A test may send a packet type the protocol does not have.
	if got := string(EncodePayload(4, []Packet{{Type: 'x', Data: []byte("y")}})); got != "xy" {
		t.Errorf("unknown type encoded as %q", got)
	}
}

func TestDecodePayloadV3Binary(t *testing.T) {
	body := []byte("\x00\x02\xff40\x01\x04\xff\x04\x01\x02\x03")
	got, err := DecodePayload(3, "application/octet-stream", body)
	if err != nil {
		t.Fatal(err)
	}
	want := []Packet{{Type: '4', Data: []byte("0")}, {Type: '4', Data: []byte{1, 2, 3}, Binary: true}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if _, err := DecodePayload(3, "text/plain", body); err == nil {
		t.Fatal("binary form decoded as text")
	}
}
