package node

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoalnet/shoal/crypto"
	"github.com/shoalnet/shoal/ledger"
	"github.com/shoalnet/shoal/ledger/ledgertest"
	"github.com/shoalnet/shoal/node/client"
)

// TestLedgerAcrossNodes runs two nodes: the first records entries; the
// second witnesses its gossiped checkpoint and verifies, shows, exports and
// proves its ledger through the API.
func TestLedgerAcrossNodes(t *testing.T) {
	a := startNode(t, testRepo(t, nil))
	b := startNode(t, testRepo(t, func(c *Config) { c.Network.Bootstrap = []string{a.p2pAddrs()[0]} }))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := 0; i < 25; i++ {
		if _, err := a.Ledger().Record(ctx, "job.executed", []byte("result")); err != nil {
			t.Fatal(err)
		}
	}
	// b witnesses a's checkpoint from gossip.
	for {
		if cp := b.ledger.witness.Latest(a.PeerID()); cp != nil && cp.Size == 25 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("b never witnessed a's checkpoint of 25 entries (holds %v)", b.ledger.witness.Latest(a.PeerID()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	cb, err := client.New(b.RepoDir())
	if err != nil {
		t.Fatal(err)
	}
	peerA := a.PeerID().String()
	rep, err := cb.LedgerVerify(ctx, peerA)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Entries != 25 {
		t.Fatalf("verify --peer a = %+v", rep)
	}
	own, err := cb.LedgerVerify(ctx, "")
	if err != nil || !own.OK {
		t.Fatalf("verify of own ledger = %+v, %v", own, err)
	}
	es, err := cb.LedgerEntries(ctx, peerA, 20, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 5 || es[0].Seq != 20 || es[0].Kind != "job.executed" || string(es[0].Body) != "result" {
		t.Fatalf("entries of a from 20 = %v", es)
	}
	p, err := cb.LedgerProof(ctx, peerA, 7)
	if err != nil || !p.Verified || p.TreeSize != 25 {
		t.Fatalf("proof of a's entry 7 = %+v, %v", p, err)
	}
	body, err := cb.LedgerExport(ctx, peerA)
	if err != nil {
		t.Fatal(err)
	}
	exp, err := io.ReadAll(body)
	body.Close()
	if err != nil {
		t.Fatal(err)
	}
	res, err := ledger.VerifyExport(ctx, bytes.NewReader(exp), ledger.OriginOf("test", a.PeerID()))
	if err != nil || res.Entries != 25 {
		t.Fatalf("verify of a's export fetched by b = %+v, %v", res, err)
	}
	if _, err := cb.LedgerProof(ctx, peerA, 25); err == nil {
		t.Fatal("proof of an entry beyond the checkpoint succeeded")
	}
	evs, err := cb.LedgerEvidence(ctx)
	if err != nil || len(evs) != 0 {
		t.Fatalf("evidence = %v, %v; want none", evs, err)
	}
}

// TestLedgerForkAcrossNodes rewrites a node's ledger under its own key
// while it is down; when it comes back and announces its checkpoint, the
// witness convicts it with evidence, records it in its own ledger and stops
// trusting it.
func TestLedgerForkAcrossNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b := startNode(t, testRepo(t, nil))
	dirA := testRepo(t, func(c *Config) { c.Network.Bootstrap = []string{b.p2pAddrs()[0]} })
	a, err := New(ctx, dirA)
	if err != nil {
		t.Fatal(err)
	}
	idA := a.PeerID()
	for i := 0; i < 10; i++ {
		if _, err := a.Ledger().Record(ctx, "job.executed", []byte("honest")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(ctx, t, "b witnesses a's 10 entries", func() bool {
		cp := b.ledger.witness.Latest(idA)
		return cp != nil && cp.Size == 10
	})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// Rewrite a's history from entry 4 on, under a's own key.
	if err := ledgertest.Truncate(filepath.Join(dirA, LedgerDirName), 4); err != nil {
		t.Fatal(err)
	}
	key, err := crypto.ReadKeyFile(filepath.Join(dirA, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(ctx, filepath.Join(dirA, LedgerDirName), key, "test", ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 8; i++ {
		if _, err := l.Append(ctx, ledger.KindJobExecuted, []byte("rewritten")); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	a2 := startNode(t, dirA)
	waitFor(ctx, t, "b convicts a", func() bool { return b.LedgerConvicted(idA) })
	cb, err := client.New(b.RepoDir())
	if err != nil {
		t.Fatal(err)
	}
	evs, err := cb.LedgerEvidence(ctx)
	if err != nil || len(evs) != 1 || evs[0].Offender != idA.String() {
		t.Fatalf("b's evidence = %+v, %v; want one against %s", evs, err, idA)
	}
	if _, err := ledger.DecodeEvidence(evs[0].Encoded); err != nil {
		t.Fatalf("evidence does not verify offline: %v", err)
	}
	// b recorded it in its own ledger.
	waitFor(ctx, t, "b records the evidence", func() bool {
		es, err := cb.LedgerEntries(ctx, "", 0, 100)
		return err == nil && len(es) > 0 && es[len(es)-1].Kind == string(ledger.KindEvidence)
	})
	// Auditing a from b reports the conflict.
	rep, err := cb.LedgerVerify(ctx, idA.String())
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.EvidenceCID == "" {
		t.Fatalf("verify --peer of the forked node = %+v, want a failure with evidence", rep)
	}
	// The evidence reaches a by gossip too (a holds evidence against itself).
	waitFor(ctx, t, "the evidence reaches a", func() bool { return a2.LedgerConvicted(idA) })
}

func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if ctx.Err() != nil {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
