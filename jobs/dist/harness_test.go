package dist

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multicodec"

	"github.com/shoalnet/shoal/crypto"
	"github.com/shoalnet/shoal/jobs"
	"github.com/shoalnet/shoal/jobs/capacity"
)

// testKey returns a reproducible identity for seed.
func testKey(t testing.TB, seed int) crypto.PrivKey {
	t.Helper()
	k, err := crypto.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{byte(seed), byte(seed >> 8), 0x5a}, 22)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newHost starts a libp2p host on 127.0.0.1 with key.
func newHost(t testing.TB, key crypto.PrivKey) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.DisableRelay(), libp2p.NATPortMap(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// fakeRunner stands in for the sandbox: its result is a function of the
// computation only, as a deterministic sandbox's is.
type fakeRunner struct {
	key   crypto.PrivKey
	self  peer.ID
	delay time.Duration
	// block, when set, holds runs until it is closed or their ctx ends.
	block   chan struct{}
	started chan struct{} // receives one value per started run, if set
	failure jobs.Failure  // reported failure, if any
	runs    atomic.Int32
	stopped atomic.Int32 // runs ended by their context
}

func (r *fakeRunner) Execute(ctx context.Context, spec *jobs.SignedSpec, _ func(jobs.State)) (*jobs.SignedResult, error) {
	r.runs.Add(1)
	if r.started != nil {
		select {
		case r.started <- struct{}{}:
		default:
		}
	}
	if r.block != nil {
		select {
		case <-r.block:
		case <-ctx.Done():
			r.stopped.Add(1)
			return nil, ctx.Err()
		}
	}
	if r.delay > 0 {
		select {
		case <-time.After(r.delay):
		case <-ctx.Done():
			r.stopped.Add(1)
			return nil, ctx.Err()
		}
	}
	return fakeResult(r.key, spec, r.failure)
}

func fakeResult(key crypto.PrivKey, spec *jobs.SignedSpec, failure jobs.Failure) (*jobs.SignedResult, error) {
	self, _ := crypto.PeerID(key)
	res := &jobs.Result{
		Version: jobs.FormatVersion, Job: spec.ID, Computation: spec.CompCID, Worker: self,
		Stdout:   crypto.CIDOf(multicodec.Raw, []byte("stdout of "+spec.CompCID.String())),
		Stderr:   crypto.CIDOf(multicodec.Raw, nil),
		Outputs:  crypto.CIDOf(multicodec.DagPb, []byte{0x0a, 0x02, 0x08, 0x01}),
		WallTime: time.Millisecond, Failure: failure,
	}
	if failure != jobs.FailureNone {
		res.ExitCode, res.Reason = -1, "fake failure"
	}
	return jobs.SignResult(key, res)
}

// staticView is a capacity view the test sets by hand.
type staticView struct {
	mu      sync.Mutex
	entries []capacity.Entry
	changed chan struct{}
}

func (v *staticView) View() []capacity.Entry {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]capacity.Entry(nil), v.entries...)
}

func (v *staticView) Changed() <-chan struct{} {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.changed == nil {
		v.changed = make(chan struct{})
	}
	return v.changed
}

func (v *staticView) set(entries []capacity.Entry) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.entries = entries
	if v.changed != nil {
		close(v.changed)
	}
	v.changed = make(chan struct{})
}

func entryFor(p peer.ID, free int) capacity.Entry {
	return capacity.Entry{Advert: capacity.Advert{Peer: p, SlotsTotal: max(free, 1), SlotsFree: free,
		Runtimes: []string{capacity.RuntimeWasm}}}
}

// A tnode is one test node: a host, and a worker unless disabled.
type tnode struct {
	h      host.Host
	key    crypto.PrivKey
	id     peer.ID
	runner *fakeRunner
	worker *Worker
}

// A cluster is a submitter (node 0, with a Manager) and workers 1..n-1,
// all connected on loopback.
type cluster struct {
	t     testing.TB
	nodes []*tnode
	view  *staticView
	ds    datastore.Batching
	mgr   *Manager
	mcfg  ManagerConfig
}

type clusterOpts struct {
	workerCfg func(i int, c *WorkerConfig)
	mgrCfg    func(c *ManagerConfig)
}

func newCluster(t testing.TB, n int, o clusterOpts) *cluster {
	t.Helper()
	c := &cluster{t: t, view: &staticView{}, ds: dssync.MutexWrap(datastore.NewMapDatastore())}
	for i := 0; i < n; i++ {
		key := testKey(t, 1000*len(t.Name())+i)
		h := newHost(t, key)
		nd := &tnode{h: h, key: key, id: h.ID(), runner: &fakeRunner{key: key, self: h.ID()}}
		c.nodes = append(c.nodes, nd)
		if i == 0 {
			continue
		}
		wc := WorkerConfig{Host: h, Key: key, Executor: nd.runner, Slots: 2}
		if o.workerCfg != nil {
			o.workerCfg(i, &wc)
		}
		if wc.Executor == nil {
			continue
		}
		w, err := NewWorker(wc)
		if err != nil {
			t.Fatal(err)
		}
		nd.worker = w
		t.Cleanup(func() { w.Close() })
	}
	for i, a := range c.nodes {
		for _, b := range c.nodes[i+1:] {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := a.h.Connect(ctx, peer.AddrInfo{ID: b.id, Addrs: b.h.Addrs()})
			cancel()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	var entries []capacity.Entry
	for _, nd := range c.nodes[1:] {
		entries = append(entries, entryFor(nd.id, 2))
	}
	c.view.set(entries)
	c.mcfg = ManagerConfig{Host: c.nodes[0].h, Key: c.nodes[0].key, Store: c.ds, View: c.view,
		OfferTimeout: 5 * time.Second, CommitWait: 5 * time.Second, FetchAllowance: 10 * time.Second}
	if o.mgrCfg != nil {
		o.mgrCfg(&c.mcfg)
	}
	c.startManager()
	return c
}

func (c *cluster) startManager() {
	m, err := NewManager(c.mcfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mgr = m
	c.t.Cleanup(func() { m.Close() })
}

var nonceSeq atomic.Int64

// spec returns a job of node 0 with the given replicas and quorum.
func (c *cluster) spec(replicas, quorum int, args ...string) *jobs.SignedSpec {
	c.t.Helper()
	comp := jobs.Computation{Module: crypto.CIDOf(multicodec.Raw, []byte("module")), Args: args}
	nonce := bytes.Repeat([]byte(fmt.Sprint(nonceSeq.Add(1))), 16)
	env, err := jobs.NewEnvelope(c.nodes[0].id, comp, bytes.NewReader(nonce), time.Now())
	if err != nil {
		c.t.Fatal(err)
	}
	env.Replicas, env.Quorum = replicas, quorum
	env.Limits.WallTime = 5 * time.Second
	s, err := jobs.SignSpec(c.nodes[0].key, env)
	if err != nil {
		c.t.Fatal(err)
	}
	return s
}

// run submits spec and waits for its end.
func (c *cluster) run(spec *jobs.SignedSpec) Status {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.mgr.Submit(ctx, spec); err != nil {
		c.t.Fatal(err)
	}
	st, err := c.mgr.Wait(ctx, spec.ID)
	if err != nil {
		c.t.Fatalf("Wait(%s) = %v; last status %+v", spec.ID, err, st)
	}
	return st
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func workersOf(st Status) map[peer.ID]bool {
	out := make(map[peer.ID]bool)
	for _, r := range st.Results {
		out[r.Worker] = true
	}
	return out
}

func testCID(s string) cid.Cid { return crypto.CIDOf(multicodec.Raw, []byte(s)) }
