package node

import (
	"context"
	"testing"
	"time"

	"github.com/shoalnet/shoal/jobs/capacity"
	"github.com/shoalnet/shoal/jobs/dist"
	"github.com/shoalnet/shoal/jobs/proto"
	"github.com/shoalnet/shoal/ledger"
)

// TestLedgerReplicateWorkers checks that the end of a job makes the
// submitter replicate and verify its workers' ledgers, up to the entries
// they had when the job ended, without waiting for their gossip.
func TestLedgerReplicateWorkers(t *testing.T) {
	a := startNode(t, testRepo(t, nil))
	b := startNode(t, testRepo(t, func(c *Config) { c.Network.Bootstrap = []string{a.p2pAddrs()[0]} }))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for round, want := range []uint64{3, 10} {
		for b.Ledger().Size() < want {
			if _, err := b.Ledger().Record(ctx, "note", []byte("work")); err != nil {
				t.Fatal(err)
			}
		}
		// As the manager calls it when a job b worked on has ended; the
		// submitter itself is skipped.
		a.ledgerJobEnded(dist.Status{Results: []dist.ResultStatus{{Worker: b.PeerID()}, {Worker: a.PeerID()}, {Worker: b.PeerID()}}})
		waitFor(ctx, t, "a holds b's checkpoint", func() bool {
			cp := a.ledger.witness.Latest(b.PeerID())
			return cp != nil && cp.Size >= want
		})
		r, err := a.ledger.witness.Replica(ctx, b.PeerID())
		if err != nil {
			t.Fatal(err)
		}
		if r.Size() < want {
			t.Fatalf("round %d: replica of b has %d entries, want %d", round, r.Size(), want)
		}
		if cp := a.ledger.witness.Latest(a.PeerID()); cp != nil {
			t.Fatalf("a witnessed its own ledger")
		}
	}
	if a.LedgerConvicted(b.PeerID()) {
		t.Fatal("an honest worker was convicted")
	}
}

func TestPubSubScoresEveryTopic(t *testing.T) {
	n := &Node{cfg: DefaultConfig()}
	network := n.cfg.Network.Name
	p := n.pubSubScoreParams()
	for _, topic := range []string{capacity.Topic(network), ledger.GossipTopic(network), proto.ResultsTopic(network)} {
		tp := p.Topics[topic]
		if tp == nil || tp.InvalidMessageDeliveriesWeight >= 0 {
			t.Errorf("topic %s has score params %+v; want a penalty for invalid messages", topic, tp)
		}
	}
}
