package node

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/multiformats/go-multicodec"
	dto "github.com/prometheus/client_model/go"

	"github.com/shoalnet/shoal/crypto"
	"github.com/shoalnet/shoal/jobs"
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

// TestLedgerUnrecordedResult checks that a submitter notices a worker
// whose log does not record a result it returned, and not one that does.
func TestLedgerUnrecordedResult(t *testing.T) {
	a, b, ctx := ledgerPair(t)
	result := resultMaker(t, a, b)
	recorded, hidden := result("recorded"), result("hidden")
	recordExecuted(ctx, t, a, b, recorded)
	// b returned both results; its log holds only the first.
	a.ledgerJobEnded(dist.Status{Job: recorded.Result.Job, Results: []dist.ResultStatus{
		{Worker: b.PeerID(), CID: recorded.CID}, {Worker: b.PeerID(), CID: hidden.CID},
	}})
	waitFor(ctx, t, "a counts b's unrecorded result", func() bool {
		a.ledgerReplicate(b.PeerID())
		time.Sleep(100 * time.Millisecond)
		return counterValue(t, a) >= 1
	})
	time.Sleep(time.Second)
	a.ledgerReplicate(b.PeerID())
	time.Sleep(300 * time.Millisecond)
	if got := counterValue(t, a); got != 1 {
		t.Fatalf("shoal_ledger_unrecorded_results_total = %v, want 1 (the hidden result only)", got)
	}
	a.ledger.mu.Lock()
	left := len(a.ledger.expect[b.PeerID()])
	a.ledger.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d results still awaited in b's log, want 0", left)
	}
}

// TestLedgerResultSeenBeforeJobEnded checks that a result found in a
// worker's replicated log before its job ended at the submitter (the
// worker records before it answers) is not later reported as unrecorded.
func TestLedgerResultSeenBeforeJobEnded(t *testing.T) {
	a, b, ctx := ledgerPair(t)
	result := resultMaker(t, a, b)
	pending, early := result("pending"), result("early")
	// A job still awaiting b's record makes a scan b's log when it is
	// replicated; the early result's job has not ended yet.
	a.ledgerJobEnded(dist.Status{Job: pending.Result.Job, Results: []dist.ResultStatus{{Worker: b.PeerID(), CID: pending.CID}}})
	recordExecuted(ctx, t, a, b, early)
	replicateUntil(ctx, t, a, b, "a scans b's log past the early result", func(l *ledgerArea) bool {
		return l.scanned[b.PeerID()] >= b.Ledger().Size()
	})
	a.ledgerJobEnded(dist.Status{Job: early.Result.Job, Results: []dist.ResultStatus{{Worker: b.PeerID(), CID: early.CID}}})
	recordExecuted(ctx, t, a, b, pending)
	replicateUntil(ctx, t, a, b, "a finds the pending result", func(l *ledgerArea) bool {
		return len(l.expect[b.PeerID()]) == 0
	})
	time.Sleep(time.Second) // past the grace
	a.ledgerReplicate(b.PeerID())
	time.Sleep(300 * time.Millisecond)
	if got := counterValue(t, a); got != 0 {
		t.Fatalf("shoal_ledger_unrecorded_results_total = %v, want 0: b recorded every result", got)
	}
}

// replicateUntil has a replicate b's log until cond, called with a's
// ledger locked, holds.
func replicateUntil(ctx context.Context, t *testing.T, a, b *Node, what string, cond func(l *ledgerArea) bool) {
	t.Helper()
	waitFor(ctx, t, what, func() bool {
		a.ledgerReplicate(b.PeerID())
		time.Sleep(100 * time.Millisecond)
		a.ledger.mu.Lock()
		defer a.ledger.mu.Unlock()
		return cond(a.ledger)
	})
}

// ledgerPair starts a submitter a (with a short record grace) and a
// worker b connected to it.
func ledgerPair(t *testing.T) (a, b *Node, ctx context.Context) {
	t.Helper()
	a = startNode(t, testRepo(t, nil))
	b = startNode(t, testRepo(t, func(c *Config) { c.Network.Bootstrap = []string{a.p2pAddrs()[0]} }))
	a.ledger.mu.Lock()
	a.ledger.recordGrace = 500 * time.Millisecond
	a.ledger.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return a, b, ctx
}

// resultMaker returns a function making b's signed result, with the
// given stdout, of a fresh job of a's.
func resultMaker(t *testing.T, a, b *Node) func(stdout string) *jobs.SignedResult {
	return func(stdout string) *jobs.SignedResult {
		t.Helper()
		env, err := jobs.NewEnvelope(a.PeerID(), jobs.Computation{Module: crypto.CIDOf(multicodec.Raw, []byte("m"))}, bytes.NewReader(append([]byte(stdout), make([]byte, 16)...)), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		spec, err := jobs.SignSpec(a.key, env)
		if err != nil {
			t.Fatal(err)
		}
		r := &jobs.Result{Version: jobs.FormatVersion, Job: spec.ID, Computation: spec.CompCID, Worker: b.PeerID(),
			Stdout: crypto.CIDOf(multicodec.Raw, []byte(stdout)), Stderr: crypto.CIDOf(multicodec.Raw, nil), Outputs: crypto.CIDOf(multicodec.Raw, nil)}
		sr, err := jobs.SignResult(b.key, r)
		if err != nil {
			t.Fatal(err)
		}
		return sr
	}
}

// recordExecuted has b's log record res, a result of a's job.
func recordExecuted(ctx context.Context, t *testing.T, a, b *Node, res *jobs.SignedResult) {
	t.Helper()
	body, err := (&jobs.ExecutedEntry{Job: res.Result.Job, Submitter: a.PeerID(), Result: res}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Ledger().Record(ctx, jobs.LedgerKindExecuted, body); err != nil {
		t.Fatal(err)
	}
}

// counterValue reads a's shoal_ledger_unrecorded_results_total.
func counterValue(t *testing.T, a *Node) float64 {
	t.Helper()
	var m dto.Metric
	if err := a.ledger.unrecorded.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
