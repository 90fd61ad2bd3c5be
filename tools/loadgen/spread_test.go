package main

import "testing"

// TestSenderIndexSpreadsOverNodes: the senders are distinct clients, spread
// over the client list, and take the nodes in turn as the clients do.
func TestSenderIndexSpreadsOverNodes(t *testing.T) {
	for _, tc := range []struct{ senders, clients, nodes int }{
		{10, 1000, 1}, {10, 1000, 3}, {10, 300, 3}, {10, 100, 3}, {7, 5000, 3}, {10, 31, 3}, {4, 4, 1},
	} {
		seen := map[int]bool{}
		for i := range tc.senders {
			k := senderIndex(i, tc.senders, tc.clients, tc.nodes)
			if k < 0 || k >= tc.clients || seen[k] {
				t.Errorf("%+v: sender %d is client %d (taken: %v)", tc, i, k, seen[k])
			}
			seen[k] = true
			if k%tc.nodes != i%tc.nodes {
				t.Errorf("%+v: sender %d is client %d, on node %d, want %d", tc, i, k, k%tc.nodes, i%tc.nodes)
			}
			if tc.nodes == 1 && k != i*tc.clients/tc.senders {
				t.Errorf("%+v: sender %d is client %d, want %d as on one node", tc, i, k, i*tc.clients/tc.senders)
			}
		}
	}
}

func TestParseFlagsNodesAndPids(t *testing.T) {
	cfg, err := parseFlags([]string{"-url", "http://127.0.0.1:1,http://127.0.0.1:2, http://localhost:3", "-pid", "10,11"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.bases) != 3 || cfg.bases[2].Host != "localhost:3" || len(cfg.pids) != 2 || cfg.pids[1] != "11" {
		t.Fatalf("bases %v, pids %v", cfg.bases, cfg.pids)
	}
	for _, args := range [][]string{
		{"-url", "http://127.0.0.1:1,http://10.0.0.1:2"},
		{"-url", "http://127.0.0.1:1,"},
		{"-pid", "10,x"},
		{"-pid", "0"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}
