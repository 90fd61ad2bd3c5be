package main

import (
	"os"
	"strconv"
	"testing"
	"time"
)

func TestParseVmRSS(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "Name:\tnode\nVmPeak:\t  999 kB\nVmRSS:\t   51234 kB\nRssAnon:\t 1 kB\n", want: 51234},
		{in: "VmRSS:\t7 kB", want: 7},
		{in: "Name:\tzombie\n", wantErr: true},
		{in: "VmRSS:\t12 MB\n", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseVmRSS([]byte(tt.in))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseVmRSS(%q) = %d, %v; want %d, wantErr %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr bool
	}{
		{
			name: "plain",
			in:   "4242 (chatserver) S 1 4242 4242 0 -1 4194560 1020 0 0 0 150 25 0 0 20 0 5 0 123 456 789",
			want: 1750 * time.Millisecond,
		},
		{
			name: "command with spaces and parentheses",
			in:   "17 (a) b (c) R 1 17 17 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 2 3",
			want: 70 * time.Millisecond,
		},
		{name: "no parenthesis", in: "17 a R 1", wantErr: true},
		{name: "too short", in: "17 (a) R 1 2 3", wantErr: true},
		{name: "not a number", in: "17 (a) R 1 17 17 0 -1 0 0 0 0 0 x 4 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("got %v, %v; want %v, wantErr %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestReadProcSelf(t *testing.T) {
	s, err := readProc(strconv.Itoa(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	if s.RSSKB <= 0 {
		t.Fatalf("RSS = %d kB, want > 0", s.RSSKB)
	}
}

func TestParseCPUStat(t *testing.T) {
	const stat = `cpu  200 0 100 1000 10 0 5 0 0 0
cpu0 100 0 50 500 5 0 3 0 0 0
cpu1 100 0 50 500 5 0 2 0 7 0
intr 123 0 0
ctxt 99
`
	got, err := parseCPUStat([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	want := []cpuTimes{{busy: 150, total: 658}, {busy: 150, total: 657}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	later := []cpuTimes{{busy: 150 + 90, total: 658 + 100}, {busy: 150, total: 657 + 100}}
	fr := busyFractions(got, later)
	if len(fr) != 2 || fr[0] != 0.9 || fr[1] != 0 {
		t.Fatalf("busyFractions = %v, want [0.9 0]", fr)
	}
	for _, bad := range []string{"intr 1 2 3\n", "cpuX 1 2 3 4 5\n", "cpu0 1 2 x 4 5\n"} {
		if _, err := parseCPUStat([]byte(bad)); err == nil {
			t.Errorf("parseCPUStat(%q) should fail", bad)
		}
	}
}
