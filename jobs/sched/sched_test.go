package sched

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoalnet/shoal/jobs/capacity"
)

func entry(id string, free int, labels map[string]string) capacity.Entry {
	return capacity.Entry{Advert: capacity.Advert{
		Peer: peer.ID(id), SlotsTotal: 4, SlotsFree: free,
		Runtimes: []string{capacity.RuntimeWasm}, Labels: labels,
	}}
}

func TestPick(t *testing.T) {
	eu := map[string]string{"region": "eu"}
	view := []capacity.Entry{
		entry("a", 1, nil),
		entry("b", 3, eu),
		entry("c", 2, eu),
		entry("self", 4, eu),
		entry("d", 0, eu),
	}
	tests := []struct {
		name    string
		req     Request
		want    []peer.ID
		blocker string
	}{
		{"most free first", Request{Runtime: "wasm", Count: 2, Self: "self"}, []peer.ID{"b", "c"}, ""},
		{"constraint", Request{Runtime: "wasm", Count: 1, Self: "self", Constraints: map[string]string{"region": "eu"}}, []peer.ID{"b"}, ""},
		{"no match", Request{Runtime: "wasm", Count: 1, Self: "self", Constraints: map[string]string{"region": "us"}}, nil, "0 of 4 known peers match region=us"},
		{"no runtime", Request{Runtime: "docker", Count: 1, Self: "self"}, nil, "0 of 4 known peers offer runtime docker"},
		{"self allowed ranks first", Request{Runtime: "wasm", Count: 1, Self: "self", AllowSelf: true}, []peer.ID{"self"}, ""},
		{"self as last resort", Request{Runtime: "wasm", Count: 4, Self: "self"}, []peer.ID{"b", "c", "a", "self"}, ""},
		{"exclude", Request{Runtime: "wasm", Count: 1, Self: "self", Exclude: map[peer.ID]bool{"b": true}}, []peer.ID{"c"}, ""},
		{"too many", Request{Runtime: "wasm", Count: 5, Self: "self"}, []peer.ID{"b", "c", "a", "self"}, "1 more worker(s) needed"},
		{"convicted skipped", Request{Runtime: "wasm", Count: 1, Self: "self", Convicted: func(p peer.ID) bool { return p == "b" }}, []peer.ID{"c"}, ""},
		{"all convicted", Request{Runtime: "wasm", Count: 1, Self: "self", Constraints: map[string]string{"region": "eu"},
			AllowSelf: true, Exclude: map[peer.ID]bool{"self": true}, Convicted: func(p peer.ID) bool { return p != "self" }},
			nil, "2 of 2 eligible peers are excluded: convicted of forking their ledger"},
		{"convicted and excluded", Request{Runtime: "wasm", Count: 2, Self: "self", Exclude: map[peer.ID]bool{"a": true, "self": true},
			AllowSelf: true, Convicted: func(p peer.ID) bool { return p == "b" }},
			[]peer.ID{"c"}, "1 of 3 eligible peers are already running or have failed this job, 1 are convicted"},
		{"self never asked", Request{Runtime: "wasm", Count: 1, Self: "self", AllowSelf: true, Convicted: func(p peer.ID) bool { return p == "self" }}, []peer.ID{"self"}, ""},
	}
	for _, tt := range tests {
		plan := Pick(view, tt.req, nil, nil)
		if !slices.Equal(plan.Peers, tt.want) {
			t.Errorf("%s: Pick = %v, want %v", tt.name, plan.Peers, tt.want)
		}
		if tt.blocker == "" && plan.Blocker != "" || !strings.Contains(plan.Blocker, tt.blocker) {
			t.Errorf("%s: Blocker = %q, want it to contain %q", tt.name, plan.Blocker, tt.blocker)
		}
	}
	if plan := Pick(nil, Request{Runtime: "wasm", Count: 1}, nil, nil); !strings.Contains(plan.Blocker, "no other peer is known") {
		t.Errorf("Pick(empty view) blocker = %q", plan.Blocker)
	}
	busy := []capacity.Entry{entry("a", 0, nil), entry("b", 0, nil)}
	if plan := Pick(busy, Request{Runtime: "wasm", Count: 1}, nil, nil); !strings.Contains(plan.Blocker, "no peer has a free slot") {
		t.Errorf("Pick(busy view) blocker = %q", plan.Blocker)
	}
}

func TestPickLoadAndLatency(t *testing.T) {
	view := []capacity.Entry{entry("a", 2, nil), entry("b", 2, nil)}
	var load Load
	load.Add("a")
	if plan := Pick(view, Request{Runtime: "wasm", Count: 1}, &load, nil); !slices.Equal(plan.Peers, []peer.ID{"b"}) {
		t.Errorf("Pick with a loaded = %v, want [b]", plan.Peers)
	}
	load.Done("a")
	if load.Get("a") != 0 {
		t.Errorf("Load.Get after Done = %d, want 0", load.Get("a"))
	}
	rtt := func(p peer.ID) time.Duration {
		if p == "a" {
			return 5 * time.Millisecond
		}
		return time.Millisecond
	}
	if plan := Pick(view, Request{Runtime: "wasm", Count: 1}, &load, rtt); !slices.Equal(plan.Peers, []peer.ID{"b"}) {
		t.Errorf("Pick with b nearer = %v, want [b]", plan.Peers)
	}
}
