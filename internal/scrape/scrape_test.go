package scrape

import (
	"strings"
	"testing"
)

func TestParseAndSum(t *testing.T) {
	m, err := Parse(strings.NewReader(`# HELP siogo_connected_clients Connected clients.
# TYPE siogo_connected_clients gauge
siogo_connected_clients{protocol="3",transport="polling"} 2
siogo_connected_clients{protocol="4",transport="websocket"} 5
siogo_requests_refused_total{status="429"} 1
siogo_requests_refused_total{status="503"} 3
process_resident_memory_bytes 1.2345e+07
`))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		"siogo_connected_clients":                    7,
		`siogo_requests_refused_total{status="503"}`: 3,
		"siogo_requests_refused_total":               4,
		"process_resident_memory_bytes":              12345000,
		"siogo_connected":                            0, // a prefix is not a name
	} {
		if got := m.Sum(name); got != want {
			t.Errorf("Sum(%s) = %v, want %v", name, got, want)
		}
	}
	if _, err := Parse(strings.NewReader("no_value_here\n")); err == nil {
		t.Error("a line without a value parsed")
	}
}
