package ledger_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoalnet/shoal/crypto"
	"github.com/shoalnet/shoal/ledger"
	"github.com/shoalnet/shoal/ledger/ledgertest"
)

const network = "testnet"

func key(t testing.TB, seed int64) crypto.PrivKey {
	t.Helper()
	k, err := crypto.GenerateKey(rand.New(rand.NewSource(seed)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newHost starts a libp2p host with key listening on 127.0.0.1 only.
func newHost(t testing.TB, k crypto.PrivKey) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.Identity(k), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatalf("libp2p.New: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func connect(t testing.TB, a, b host.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

func openLog(t testing.TB, dir string, k crypto.PrivKey) *ledger.Log {
	t.Helper()
	l, err := ledger.Open(context.Background(), dir, k, network, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func appendN(t testing.TB, l *ledger.Log, n int, tag string) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := l.Append(context.Background(), ledger.KindNote, fmt.Appendf(nil, "%s %d", tag, i)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSourceConformance(t *testing.T) {
	k := key(t, 1)
	l := openLog(t, t.TempDir(), k)
	appendN(t, l, 40, "e")
	t.Run("local", func(t *testing.T) { ledgertest.TestSource(t, l, ledger.LocalSource(l)) })
	t.Run("remote", func(t *testing.T) {
		server := newHost(t, k)
		server.SetStreamHandler(ledger.ProtocolID, ledger.NewServer(l).Handle)
		client := newHost(t, key(t, 2))
		connect(t, client, server)
		ledgertest.TestSource(t, l, ledger.NewRemote(client, server.ID(), network))
	})
}

func TestRemoteProveEntry(t *testing.T) {
	k := key(t, 1)
	l := openLog(t, t.TempDir(), k)
	appendN(t, l, 9, "e")
	server := newHost(t, k)
	server.SetStreamHandler(ledger.ProtocolID, ledger.NewServer(l).Handle)
	client := newHost(t, key(t, 2))
	connect(t, client, server)
	r := ledger.NewRemote(client, server.ID(), network)
	ctx := context.Background()
	cp, err := r.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(0); seq < cp.Size; seq++ {
		e, p, err := r.ProveEntry(ctx, seq, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := ledger.CheckInclusion(p, cp.Size, cp.Hash, seq, e.Encoded()); err != nil {
			t.Fatalf("inclusion of %d: %v", seq, err)
		}
	}
	if _, _, err := r.ProveEntry(ctx, 9, 9); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("ProveEntry(9, 9) err = %v, want ErrNotFound", err)
	}
}

// forkHarness runs a node (host + log) whose log can be rewritten under the
// same key, and a witness on a second host.
type forkHarness struct {
	t       *testing.T
	k       crypto.PrivKey
	dir     string
	log     *ledger.Log
	server  host.Host
	witness *ledger.Witness
	remote  *ledger.Remote

	witnessDirPath string
}

func newForkHarness(t *testing.T) *forkHarness {
	f := &forkHarness{t: t, k: key(t, 1), dir: t.TempDir()}
	f.log = openLog(t, f.dir, f.k)
	f.server = newHost(t, f.k)
	f.server.SetStreamHandler(ledger.ProtocolID, ledger.NewServer(f.log).Handle)
	client := newHost(t, key(t, 2))
	connect(t, client, f.server)
	f.witnessDirPath = t.TempDir()
	w, err := ledger.OpenWitness(f.witnessDirPath, network)
	if err != nil {
		t.Fatal(err)
	}
	f.witness = w
	f.remote = ledger.NewRemote(client, f.server.ID(), network)
	return f
}

// rewrite closes the log, cuts it to keep entries, reopens it and appends
// extra entries with different content: a second history under one key.
func (f *forkHarness) rewrite(keep uint64, extra int) {
	f.t.Helper()
	if err := f.log.Close(); err != nil {
		f.t.Fatal(err)
	}
	if err := ledgertest.Truncate(f.dir, keep); err != nil {
		f.t.Fatal(err)
	}
	f.log = openLog(f.t, f.dir, f.k)
	appendN(f.t, f.log, extra, "rewritten")
	f.server.SetStreamHandler(ledger.ProtocolID, ledger.NewServer(f.log).Handle)
}

// observe hands the peer's newest checkpoint to the witness's Observe.
func (f *forkHarness) observe() (*ledger.Evidence, error) {
	f.t.Helper()
	return f.offer(f.witness.Observe)
}

// watch hands the peer's newest checkpoint to the witness's Watch.
func (f *forkHarness) watch() (*ledger.Evidence, error) {
	f.t.Helper()
	return f.offer(f.witness.Watch)
}

func (f *forkHarness) offer(to func(context.Context, *ledger.Checkpoint, ledger.Source) (*ledger.Evidence, error)) (*ledger.Evidence, error) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cp, err := f.remote.Checkpoint(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return to(ctx, cp, f.remote)
}

func TestWitnessAcceptsExtension(t *testing.T) {
	f := newForkHarness(t)
	appendN(t, f.log, 10, "e")
	if ev, err := f.observe(); ev != nil || err != nil {
		t.Fatalf("first observe = %v, %v", ev, err)
	}
	appendN(t, f.log, 7, "more")
	if ev, err := f.observe(); ev != nil || err != nil {
		t.Fatalf("observe of an extension = %v, %v", ev, err)
	}
	if got := f.witness.Latest(f.server.ID()); got == nil || got.Size != 17 {
		t.Fatalf("witness holds %v, want size 17", got)
	}
	r, err := f.witness.Replica(context.Background(), f.server.ID())
	if err != nil {
		t.Fatal(err)
	}
	if r.Size() != 17 {
		t.Fatalf("replica holds %d entries, want 17", r.Size())
	}
	for seq := uint64(0); seq < 17; seq++ {
		got, err := r.Entry(seq)
		want, _ := f.log.Entry(seq)
		if err != nil || string(got) != string(want.Encoded()) {
			t.Fatalf("replica entry %d differs from the log's (%v)", seq, err)
		}
	}
}

// TestWitnessWatch checks that Watch holds checkpoints without fetching
// entries, still convicts a peer whose checkpoints contradict each other,
// and that a later Observe replicates the whole log.
func TestWitnessWatch(t *testing.T) {
	f := newForkHarness(t)
	appendN(t, f.log, 10, "e")
	if ev, err := f.watch(); ev != nil || err != nil {
		t.Fatalf("first watch = %v, %v", ev, err)
	}
	appendN(t, f.log, 5, "more")
	if ev, err := f.watch(); ev != nil || err != nil {
		t.Fatalf("watch of an extension = %v, %v", ev, err)
	}
	if got := f.witness.Latest(f.server.ID()); got == nil || got.Size != 15 {
		t.Fatalf("witness holds %v, want size 15", got)
	}
	r, err := f.witness.Replica(context.Background(), f.server.ID())
	if err != nil {
		t.Fatal(err)
	}
	if r.Size() != 0 {
		t.Fatalf("watching replicated %d entries, want none", r.Size())
	}
	// Observe of the same checkpoint fetches the entries.
	if ev, err := f.observe(); ev != nil || err != nil {
		t.Fatalf("observe after watch = %v, %v", ev, err)
	}
	if r.Size() != 15 {
		t.Fatalf("replica holds %d entries after observe, want 15", r.Size())
	}

	// A rewritten history is caught by checkpoints alone.
	g := newForkHarness(t)
	appendN(t, g.log, 10, "e")
	if _, err := g.watch(); err != nil {
		t.Fatal(err)
	}
	g.rewrite(5, 8)
	ev, err := g.watch()
	if err != nil || ev == nil {
		t.Fatalf("watch of a rewritten log = %v, %v; want evidence", ev, err)
	}
	checkOffline(t, ev, g.server.ID())
	if !g.witness.Convicted(g.server.ID()) {
		t.Fatal("watching witness does not hold the peer convicted")
	}
}

// checkOffline checks that evidence verifies from its bytes alone and that
// any single flipped byte makes it fail.
func checkOffline(t *testing.T, ev *ledger.Evidence, offender peer.ID) {
	t.Helper()
	got, err := ledger.DecodeEvidence(ev.Encoded())
	if err != nil {
		t.Fatalf("evidence does not verify offline: %v", err)
	}
	if got.Offender() != offender {
		t.Fatalf("evidence convicts %s, want %s", got.Offender(), offender)
	}
	enc := ev.Encoded()
	for i := 0; i < len(enc); i += 7 {
		m := append([]byte(nil), enc...)
		m[i] ^= 0x10
		if _, err := ledger.DecodeEvidence(m); err == nil {
			t.Fatalf("evidence with byte %d flipped verifies", i)
		}
	}
}

func TestForkDetectedLonger(t *testing.T) {
	f := newForkHarness(t)
	appendN(t, f.log, 10, "e")
	if _, err := f.observe(); err != nil {
		t.Fatal(err)
	}
	var hooked []*ledger.Evidence
	f.witness.OnEvidence(func(ev *ledger.Evidence) { hooked = append(hooked, ev) })
	f.rewrite(5, 8) // 13 entries, differing from seq 5 on
	ev, err := f.observe()
	if err != nil {
		t.Fatalf("observe of a rewritten log: %v", err)
	}
	if again, err := f.observe(); err != nil || again == nil || again.CID() != ev.CID() {
		t.Fatalf("second observe of the rewritten log = %v, %v; want the same evidence", again, err)
	}
	if len(hooked) != 1 || hooked[0].CID() != ev.CID() {
		t.Fatalf("OnEvidence called %d times, want once", len(hooked))
	}
	// The witness replicated entries 0..9: it convicts with two entries.
	if ev == nil || ev.Kind != ledger.EntryFork {
		t.Fatalf("observe of a rewritten log: evidence %v, want entry-fork", ev)
	}
	checkOffline(t, ev, f.server.ID())
	if !f.witness.Convicted(f.server.ID()) {
		t.Fatal("witness does not hold the peer convicted")
	}
	if got := f.witness.Latest(f.server.ID()); got.Size != 10 {
		t.Fatalf("witness moved to the forked checkpoint (size %d)", got.Size)
	}
	// Evidence survives a restart of the witness.
	w2, err := ledger.OpenWitness(f.witnessDir(), network)
	if err != nil {
		t.Fatal(err)
	}
	if !w2.Convicted(f.server.ID()) || len(w2.Evidence()) != 1 {
		t.Fatalf("reopened witness holds %d pieces of evidence, want 1", len(w2.Evidence()))
	}
}

func (f *forkHarness) witnessDir() string { return f.witnessDirPath }

// TestForkDetectedWithoutReplica checks conviction from checkpoints alone:
// the witness lost its replica, so it proves that the rewritten tree does
// not extend the checkpoint it holds.
func TestForkDetectedWithoutReplica(t *testing.T) {
	f := newForkHarness(t)
	appendN(t, f.log, 10, "e")
	if _, err := f.observe(); err != nil {
		t.Fatal(err)
	}
	f.witness.Close()
	if err := os.RemoveAll(filepath.Join(f.witnessDirPath, "replicas")); err != nil {
		t.Fatal(err)
	}
	w, err := ledger.OpenWitness(f.witnessDirPath, network)
	if err != nil {
		t.Fatal(err)
	}
	f.witness = w
	f.rewrite(5, 8)
	ev, err := f.observe()
	if err != nil || ev == nil || ev.Kind != ledger.InconsistentCheckpoints {
		t.Fatalf("observe of a rewritten log without replica = %v, %v; want inconsistent-checkpoints evidence", ev, err)
	}
	checkOffline(t, ev, f.server.ID())
}

func TestForkDetectedSameSize(t *testing.T) {
	f := newForkHarness(t)
	appendN(t, f.log, 10, "e")
	if _, err := f.observe(); err != nil {
		t.Fatal(err)
	}
	f.rewrite(4, 6) // again 10 entries
	ev, err := f.observe()
	if err != nil || ev == nil || ev.Kind != ledger.CheckpointFork {
		t.Fatalf("observe of a same-size rewrite = %v, %v; want checkpoint-fork evidence", ev, err)
	}
	checkOffline(t, ev, f.server.ID())
}

func TestForkDetectedShorter(t *testing.T) {
	f := newForkHarness(t)
	appendN(t, f.log, 10, "e")
	if _, err := f.observe(); err != nil {
		t.Fatal(err)
	}
	f.rewrite(3, 3) // 6 entries: the peer rolled its log back and rewrote it
	ev, err := f.observe()
	if err != nil || ev == nil || ev.Kind != ledger.EntryFork {
		t.Fatalf("observe of a shortened, rewritten log = %v, %v; want entry-fork evidence", ev, err)
	}
	checkOffline(t, ev, f.server.ID())
}

func newPubSub(t *testing.T, h host.Host) *pubsub.PubSub {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithMessageSignaturePolicy(pubsub.StrictSign))
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestGossip publishes a checkpoint and evidence between two real hosts
// and checks what the validator lets through.
func TestGossip(t *testing.T) {
	ka, kb := key(t, 1), key(t, 2)
	ha, hb := newHost(t, ka), newHost(t, kb)
	connect(t, hb, ha)
	ga, err := ledger.JoinGossip(newPubSub(t, ha), network)
	if err != nil {
		t.Fatal(err)
	}
	defer ga.Close()
	gb, err := ledger.JoinGossip(newPubSub(t, hb), network)
	if err != nil {
		t.Fatal(err)
	}
	defer gb.Close()
	l := openLog(t, t.TempDir(), ka)
	appendN(t, l, 3, "g")
	cp, err := l.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Publish until the mesh forms and b receives it.
	got := make(chan *ledger.GossipMessage, 1)
	go func() {
		m, err := gb.Next(ctx)
		if err == nil {
			got <- m
		}
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		if err := ga.PublishCheckpoint(ctx, cp); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			if m.Checkpoint == nil || m.Checkpoint.Size != 3 || m.Checkpoint.Origin != ledger.OriginOf(network, ha.ID()) {
				t.Fatalf("b received %+v", m)
			}
			break wait
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("b never received a's checkpoint")
		}
	}
}

// TestGossipValidation checks DecodeGossip, which the topic validator runs:
// a checkpoint verifies by its own origin's key, whoever relays it; one of
// another network, a changed signature, bogus evidence and junk are
// rejected.
func TestGossipValidation(t *testing.T) {
	ka := key(t, 1)
	ida, _ := crypto.PeerID(ka)
	l := openLog(t, t.TempDir(), ka)
	appendN(t, l, 2, "v")
	cp, _ := l.Checkpoint()
	msg := ledger.EncodeGossipCheckpoint(cp)
	gm, err := ledger.DecodeGossip(network, msg)
	if err != nil {
		t.Fatalf("checkpoint rejected: %v", err)
	}
	if gm.Checkpoint == nil || gm.Checkpoint.Origin != ledger.OriginOf(network, ida) || gm.Checkpoint.Size != 2 {
		t.Fatalf("decoded %+v", gm.Checkpoint)
	}
	if _, err := ledger.DecodeGossip("othernet", msg); err == nil {
		t.Fatal("checkpoint of another network accepted")
	}
	forged := bytes.Clone(msg)
	forged[len(forged)-3] ^= 1 // inside the base64 signature
	if _, err := ledger.DecodeGossip(network, forged); err == nil {
		t.Fatal("checkpoint with a changed signature accepted")
	}
	for _, junk := range [][]byte{nil, {0}, {byte(ledger.GossipEvidence), 1, 2, 3}, {9, 9}} {
		if _, err := ledger.DecodeGossip(network, junk); err == nil {
			t.Fatalf("junk %x accepted", junk)
		}
	}
}

func TestReplicaReopenAndReject(t *testing.T) {
	ctx := context.Background()
	k := key(t, 1)
	l := openLog(t, t.TempDir(), k)
	appendN(t, l, 30, "r")
	path := filepath.Join(t.TempDir(), "replica")
	r, err := ledger.OpenReplica(ctx, path, l.Origin())
	if err != nil {
		t.Fatal(err)
	}
	cp, _ := l.Checkpoint()
	if err := r.Sync(ctx, ledger.LocalSource(l), cp); err != nil {
		t.Fatal(err)
	}
	r.Close()
	appendN(t, l, 5, "more")
	r, err = ledger.OpenReplica(ctx, path, l.Origin())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Size() != 30 {
		t.Fatalf("reopened replica holds %d, want 30", r.Size())
	}
	cp2, _ := l.Checkpoint()
	if err := r.Sync(ctx, ledger.LocalSource(l), cp2); err != nil {
		t.Fatal(err)
	}
	if r.Size() != 35 {
		t.Fatalf("replica holds %d after sync, want 35", r.Size())
	}
	// A checkpoint of another history under the same key is refused and
	// leaves the replica as it was.
	other := openLog(t, t.TempDir(), k)
	appendN(t, other, 40, "other")
	cpo, _ := other.Checkpoint()
	if err := r.Sync(ctx, ledger.LocalSource(other), cpo); err == nil {
		t.Fatal("sync from another history succeeded")
	}
	if r.Size() != 35 {
		t.Fatalf("replica holds %d after a refused sync, want 35", r.Size())
	}
	if err := r.Sync(ctx, ledger.LocalSource(l), cp2); err != nil {
		t.Fatalf("sync after a refused one: %v", err)
	}
}

// tamperedSource serves its log with one byte of entry at flipped.
type tamperedSource struct {
	ledger.Source
	at uint64
}

func (s tamperedSource) Entries(ctx context.Context, from uint64, max int) ([][]byte, error) {
	es, err := s.Source.Entries(ctx, from, max)
	for i := range es {
		if from+uint64(i) == s.at {
			e := append([]byte(nil), es[i]...)
			e[len(e)-1] ^= 1 // the last byte is the signature's
			es[i] = e
		}
	}
	return es, err
}

// A replica checks entries against the signed checkpoint instead of one
// by one: an entry whose bytes (here its signature) differ from what the
// checkpoint commits to is still refused, and nothing of the batch is kept.
func TestReplicaRefusesTamperedEntry(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, t.TempDir(), key(t, 1))
	appendN(t, l, 20, "t")
	cp, _ := l.Checkpoint()
	r, err := ledger.OpenReplica(ctx, filepath.Join(t.TempDir(), "replica"), l.Origin())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Sync(ctx, tamperedSource{ledger.LocalSource(l), 13}, cp); err == nil {
		t.Fatal("replica accepted a tampered entry")
	}
	if r.Size() != 0 {
		t.Fatalf("replica holds %d entries after a refused sync, want 0", r.Size())
	}
	if err := r.Sync(ctx, ledger.LocalSource(l), cp); err != nil {
		t.Fatalf("sync from the honest source: %v", err)
	}
	if r.Size() != 20 {
		t.Fatalf("replica holds %d, want 20", r.Size())
	}
}
