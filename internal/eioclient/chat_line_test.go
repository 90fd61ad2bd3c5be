package eioclient

import "testing"

// TestParseLineWithOffset reads chat lines as a server with and without
// connection-state recovery sends them: the offset, when there is one, is
// the last argument, and the line itself is the same either way.
func TestParseLineWithOffset(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		pid        string
		want       ChatLine
		offset     string
	}{
		{"no offset", `2["clientReceiver",{"clientID":3,"message":"hi"}]`, "p", ChatLine{3, "hi"}, ""},
		{"offset", `2["clientReceiver",{"clientID":3,"message":"hi"},"1712345678901-0"]`, "p", ChatLine{3, "hi"}, "1712345678901-0"},
		{"offset, no pid", `2["clientReceiver",{"clientID":3,"message":"hi"},"1712345678901-0"]`, "", ChatLine{3, "hi"}, ""},
		{"escaped message", `2["clientReceiver",{"clientID":7,"message":"a\",\"b\\"},"17-1"]`, "p", ChatLine{7, `a","b\`}, "17-1"},
		{"message like an offset", `2["clientReceiver",{"clientID":7,"message":"x\",\"9-9"}]`, "p", ChatLine{7, `x","9-9`}, ""},
		{"escaped offset", `2["clientReceiver",{"clientID":1,"message":"m"},"a\"b\\"]`, "p", ChatLine{1, "m"}, `a"b\`},
		{"Korean", `2["clientReceiver",{"clientID":12,"message":"안녕"},"5-0"]`, "p", ChatLine{12, "안녕"}, "5-0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &ChatClient{pid: tc.pid}
			got, err := c.parseLine([]byte(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("line %+v, want %+v", got, tc.want)
			}
			if off := c.Offset(); off != tc.offset {
				t.Errorf("offset %q, want %q", off, tc.offset)
			}
		})
	}
	for _, bad := range []string{
		`2["clientReceiver","only a string"]`,
		`2["clientReceiver",{"clientID":1,"message":"m"},"a\"b","c\"d"]`,
		`2["clientReceiver",{"clientID":1,`,
	} {
		c := &ChatClient{pid: "p"}
		if line, err := c.parseLine([]byte(bad)); err == nil {
			t.Errorf("%s: got %+v, want an error", bad, line)
		}
	}
}

// TestOtherEventsSetTheOffset: as socket.io-client, any event whose last
// argument is a string moves the offset, not only chat lines.
func TestOtherEventsSetTheOffset(t *testing.T) {
	c := &ChatClient{pid: "p"}
	for _, tc := range []struct{ data, offset string }{
		{`2["news",{"a":1},"1-0"]`, "1-0"},
		{`2["news",{"a":1}]`, "1-0"},
		{`2["news"]`, "1-0"},
		{`2["news","text","2-\"x"]`, `2-"x`},
	} {
		if err := c.onMessage([]byte(tc.data)); err != nil {
			t.Fatalf("%s: %v", tc.data, err)
		}
		if off := c.Offset(); off != tc.offset {
			t.Errorf("after %s: offset %q, want %q", tc.data, off, tc.offset)
		}
	}
}
