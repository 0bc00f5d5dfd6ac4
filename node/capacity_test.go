package node

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shoalnet/shoal/jobs/capacity"
	"github.com/shoalnet/shoal/node/client"
)

// TestCapacityAPI starts two nodes, checks that each one's capacity view
// (through the API) holds both adverts with the configured slots and
// labels, and that a slot change through the API reaches the other node.
func TestCapacityAPI(t *testing.T) {
	first := startNode(t, testRepo(t, func(c *Config) {
		c.Jobs.Slots = 3
		c.Jobs.Labels = []string{"region=eu"}
	}))
	second := startNode(t, testRepo(t, func(c *Config) { c.Network.Bootstrap = []string{first.p2pAddrs()[0]} }))
	c1, err := client.New(first.RepoDir())
	if err != nil {
		t.Fatal(err)
	}
	c2, err := client.New(second.RepoDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	find := func(c *client.Client, id string) (client.CapacityEntry, bool) {
		view, err := c.Capacity(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range view {
			if e.ID == id {
				return e, true
			}
		}
		return client.CapacityEntry{}, false
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitUntil("both views to hold both adverts", func() bool {
		_, a := find(c1, second.PeerID().String())
		_, b := find(c2, first.PeerID().String())
		return a && b
	})
	e, _ := find(c2, first.PeerID().String())
	if e.Slots != 3 || e.SlotsFree != 3 || e.Labels["region"] != "eu" || e.Version != "shoal/"+Version ||
		len(e.Runtimes) != 1 || e.Runtimes[0] != "wasm" || e.Self || e.Cores < 1 {
		t.Errorf("second node's entry of the first = %+v, want 3/3 slots, region=eu, wasm, version shoal/%s", e, Version)
	}
	if own, ok := find(c1, first.PeerID().String()); !ok || !own.Self {
		t.Errorf("first node's own entry = %+v, %v; want Self", own, ok)
	}

	info, err := c1.SetSlots(ctx, 5)
	if err != nil || info != (client.SlotsInfo{Slots: 5, SlotsFree: 5}) {
		t.Fatalf("SetSlots(5) = %+v, %v; want 5/5", info, err)
	}
	if got, err := c1.Slots(ctx); err != nil || got != info {
		t.Fatalf("Slots() = %+v, %v; want %+v", got, err, info)
	}
	waitUntil("the slot change to reach the second node", func() bool {
		e, ok := find(c2, first.PeerID().String())
		return ok && e.Slots == 5 && e.SlotsFree == 5
	})
	var apiErr *client.APIError
	if _, err := c1.SetSlots(ctx, -1); !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
		t.Errorf("SetSlots(-1) = %v, want a 400 APIError", err)
	}

	// Each node counted the adverts it sent and received, under the
	// capacity topic's name.
	topic := capacity.Topic(first.Network())
	for _, c := range []*client.Client{c1, c2} {
		fams, err := c.Metrics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"shoal_pubsub_sent_messages_total", "shoal_pubsub_received_messages_total"} {
			if got := client.CounterWith(fams, name, "topic", topic); got < 1 {
				t.Errorf("%s: %s{topic=%q} = %v, want ≥ 1 (an advert each way)", c.Addr(), name, topic, got)
			}
		}
		if got := client.CounterSum(fams, "shoal_pubsub_sent_rpcs_total"); got < 1 {
			t.Errorf("%s: shoal_pubsub_sent_rpcs_total = %v, want ≥ 1", c.Addr(), got)
		}
	}
}

func TestConfigLabels(t *testing.T) {
	for _, bad := range [][]string{{"region"}, {"a=1", "a=2"}, {"a=b c"}, {"-x=1"}} {
		cfg := DefaultConfig()
		cfg.Jobs.Labels = bad
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "jobs.labels") {
			t.Errorf("Validate with labels %q = %v, want an error naming jobs.labels", bad, err)
		}
	}
	cfg := DefaultConfig()
	cfg.Jobs.Labels = []string{"region=eu", "tier=gold"}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate with good labels = %v", err)
	}
}
