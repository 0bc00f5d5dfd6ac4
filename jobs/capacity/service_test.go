package capacity

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/shoalnet/shoal/crypto"
)

const testNetwork = "testnet"

// A testNode is one real libp2p host on loopback with gossipsub.
type testNode struct {
	key  crypto.PrivKey
	h    host.Host
	ps   *pubsub.PubSub
	svc  *Service // nil for a rogue node
	reg  *prometheus.Registry
	stop context.CancelFunc
}

func (n *testNode) id() peer.ID { return n.h.ID() }

func (n *testNode) close() {
	if n.svc != nil {
		n.svc.Close()
	}
	n.stop()
	n.h.Close()
}

// newTestNode starts a host on 127.0.0.1 with gossipsub (with capacity peer
// scoring) and, unless rogue, a capacity Service.
func newTestNode(t testing.TB, seed uint64, rogue bool, opts ...Option) *testNode {
	t.Helper()
	key := testKey(t, seed)
	h, err := libp2p.New(
		libp2p.Identity(key),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.DisableRelay(),
	)
	if err != nil {
		t.Fatalf("libp2p.New: %v", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	// A rogue speaks the network's message policy but neither validates
	// nor scores, and it gives each publication an ID of its own, so that
	// it can send the same bytes again until they arrive (its honest
	// peers still see one message: they hash the data).
	var published atomic.Uint64
	psOpts := append(MessagePolicy(), pubsub.WithMessageIdFn(func(*pb.Message) string {
		return fmt.Sprint("rogue-", published.Add(1))
	}))
	if !rogue {
		psOpts = PubSubOptions(testNetwork)
	}
	ps, err := pubsub.NewGossipSub(ctx, h, psOpts...)
	if err != nil {
		t.Fatalf("NewGossipSub: %v", err)
	}
	n := &testNode{key: key, h: h, ps: ps, reg: prometheus.NewRegistry(), stop: stop}
	if !rogue {
		opts = append([]Option{WithTiming(10*time.Second, time.Second), WithMinInterval(0),
			WithRegisterer(n.reg), WithVersion("test")}, opts...)
		n.svc, err = New(ctx, ps, h, key, testNetwork, opts...)
		if err != nil {
			t.Fatalf("capacity.New: %v", err)
		}
	}
	return n
}

func connect(t testing.TB, a, b *testNode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.h.Connect(ctx, peer.AddrInfo{ID: b.h.ID(), Addrs: b.h.Addrs()}); err != nil {
		t.Fatalf("connect %s to %s: %v", a.id(), b.id(), err)
	}
}

// newCluster starts n nodes; node i connects to nodes i-1, i-2 and i-3.
func newCluster(t testing.TB, n int, opts ...Option) []*testNode {
	t.Helper()
	nodes := make([]*testNode, n)
	for i := range nodes {
		nodes[i] = newTestNode(t, uint64(100+i), false, opts...)
		t.Cleanup(nodes[i].close)
		for j := max(0, i-3); j < i; j++ {
			connect(t, nodes[i], nodes[j])
		}
	}
	return nodes
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rejections returns s's rejected or ignored counter for reason.
func rejections(s *Service, reason Reason) float64 {
	vec := s.m.rejected
	if reason.Ignored() {
		vec = s.m.ignored
	}
	var m dto.Metric
	if err := vec.WithLabelValues(string(reason)).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func viewHas(s *Service, p peer.ID) bool {
	_, ok := s.Lookup(p)
	return ok
}

func TestViewsConverge(t *testing.T) {
	nodes := newCluster(t, 10)
	waitFor(t, 30*time.Second, "every view to hold 10 adverts", func() bool {
		for _, n := range nodes {
			if len(n.svc.View()) != len(nodes) {
				return false
			}
		}
		return true
	})
	for _, n := range nodes {
		for _, e := range n.svc.View() {
			if e.Self != (e.Peer == n.id()) {
				t.Errorf("node %s: entry %s has Self = %v", n.id(), e.Peer, e.Self)
			}
			if !e.Offers(RuntimeWasm) || e.Version != "test" || e.Network != testNetwork {
				t.Errorf("node %s: entry %s = %+v, want a wasm advert of version test", n.id(), e.Peer, e.Advert)
			}
		}
		if got := rejections(n.svc, ReasonReplay); got != 0 {
			t.Errorf("node %s rejected %v honest adverts as replays", n.id(), got)
		}
	}
}

func TestKilledNodeExpires(t *testing.T) {
	nodes := newCluster(t, 4)
	victim := nodes[3]
	waitFor(t, 30*time.Second, "every view to hold 4 adverts", func() bool {
		for _, n := range nodes {
			if len(n.svc.View()) != 4 {
				return false
			}
		}
		return true
	})
	// Stop the victim without any goodbye: its last advert must expire.
	last, _ := nodes[0].svc.Lookup(victim.id())
	victim.close()
	waitFor(t, 30*time.Second, "the killed node to leave every view", func() bool {
		for _, n := range nodes[:3] {
			if viewHas(n.svc, victim.id()) {
				return false
			}
		}
		return true
	})
	// It left no earlier than its last advert said.
	if now := time.Now(); now.Before(last.Expiry) {
		t.Errorf("killed node left the view at %v, before its advert's expiry %v", now, last.Expiry)
	}
}

func TestSlotChangeSeen(t *testing.T) {
	nodes := newCluster(t, 3)
	src := nodes[0]
	if err := src.svc.SetSlots(7, 5); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "slots 7/5 to reach every view", func() bool {
		for _, n := range nodes {
			e, ok := n.svc.Lookup(src.id())
			if !ok || e.SlotsTotal != 7 || e.SlotsFree != 5 {
				return false
			}
		}
		return true
	})
	if err := src.svc.SetFree(2); err != nil {
		t.Fatal(err)
	}
	if free, err := src.svc.SetTotal(4); err != nil || free != 0 {
		t.Fatalf("SetTotal(4) with 5 busy = %d, %v; want 0, nil", free, err)
	}
	waitFor(t, 30*time.Second, "slots 4/0 to reach every view", func() bool {
		for _, n := range nodes {
			e, ok := n.svc.Lookup(src.id())
			if !ok || e.SlotsTotal != 4 || e.SlotsFree != 0 {
				return false
			}
		}
		return true
	})
	for _, bad := range [][2]int{{-1, 0}, {2, 3}, {MaxSlots + 1, 0}} {
		if err := src.svc.SetSlots(bad[0], bad[1]); err == nil {
			t.Errorf("SetSlots(%d, %d) = nil, want an error", bad[0], bad[1])
		}
	}
	if err := src.svc.SetFree(5); err == nil {
		t.Error("SetFree(5) with 4 slots = nil, want an error")
	}
}

func TestChangedNotifies(t *testing.T) {
	nodes := newCluster(t, 2)
	ch := nodes[1].svc.Changed()
	if err := nodes[0].svc.SetFree(0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatal("Changed did not fire within 30s of a peer's slot change")
	}
}

// publishUntil publishes data on topic, as a new message each time, until
// done holds or 30 s have passed.
func publishUntil(t *testing.T, topic *pubsub.Topic, data []byte, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := topic.Publish(context.Background(), data); err != nil {
			t.Fatalf("publish: %v", err)
		}
		for range 25 {
			if done() {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 30s waiting for %s", what)
		}
	}
}

// rogueAdvert is a valid advert of the rogue node, to be mangled.
func rogueAdvert(r *testNode, seq uint64) Advert {
	return Advert{
		Peer:        r.id(),
		Network:     testNetwork,
		Seq:         seq,
		Expiry:      time.UnixMilli(time.Now().Add(time.Minute).UnixMilli()),
		SlotsTotal:  999,
		SlotsFree:   999,
		Cores:       1,
		MemoryBytes: 1,
		Runtimes:    []string{RuntimeWasm},
	}
}

func sealT(t *testing.T, a Advert, key crypto.PrivKey) []byte {
	t.Helper()
	data, err := a.Seal(key)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// joinRogue starts a rogue node (gossipsub without validator or scoring),
// connects it to nodes and waits until they all see each other on the topic.
func joinRogue(t *testing.T, seed uint64, nodes []*testNode) (*testNode, *pubsub.Topic) {
	t.Helper()
	rogue := newTestNode(t, seed, true)
	t.Cleanup(rogue.close)
	for _, n := range nodes {
		connect(t, rogue, n)
	}
	topic, err := rogue.ps.Join(Topic(testNetwork))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := topic.Subscribe() // be in the mesh
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Cancel)
	waitFor(t, 30*time.Second, "the rogue and the honest nodes to see each other on the topic", func() bool {
		if len(topic.ListPeers()) != len(nodes) {
			return false
		}
		for _, n := range nodes {
			if !slices.Contains(n.svc.topic.ListPeers(), rogue.id()) {
				return false
			}
		}
		return true
	})
	return rogue, topic
}

// TestValidatorRejects publishes each kind of bad advert from its own rogue
// node (a rogue is graylisted after a few rejections) and checks that every
// honest node turns it down and that no view changes.
func TestValidatorRejects(t *testing.T) {
	nodes := newCluster(t, 3)
	honest := nodes[0]
	honestAdvert, ok := honest.svc.Lookup(honest.id())
	if !ok {
		t.Fatal("honest node has no own advert")
	}
	bad := []struct {
		name string
		make func(rogue *testNode) []byte
		want Reason
	}{
		{"forged: signed by the rogue, claiming an honest peer", func(r *testNode) []byte {
			claim := honestAdvert.Advert
			claim.Seq += 1 << 40
			claim.SlotsTotal, claim.SlotsFree = 999, 999
			payload, err := claim.MarshalPayload()
			if err != nil {
				t.Fatal(err)
			}
			data, err := crypto.Seal(r.key, crypto.DomainCapacityAdvert, PayloadType, payload)
			if err != nil {
				t.Fatal(err)
			}
			return data
		}, ReasonSigner},
		{"garbage", func(*testNode) []byte { return []byte("garbage bytes, not an advert") }, ReasonEnvelope},
		{"oversize", func(r *testNode) []byte {
			data, err := crypto.Seal(r.key, crypto.DomainCapacityAdvert, PayloadType, bytes.Repeat([]byte{0xa0}, MaxAdvertSize))
			if err != nil {
				t.Fatal(err)
			}
			return data
		}, ReasonSize},
		{"expired", func(r *testNode) []byte {
			a := rogueAdvert(r, 10)
			a.Expiry = time.UnixMilli(time.Now().Add(-time.Second).UnixMilli())
			return sealT(t, a, r.key)
		}, ReasonExpired},
		{"expiry too far", func(r *testNode) []byte {
			a := rogueAdvert(r, 10)
			a.Expiry = time.UnixMilli(time.Now().Add(time.Hour).UnixMilli())
			return sealT(t, a, r.key)
		}, ReasonFarExpiry},
		{"other network", func(r *testNode) []byte {
			a := rogueAdvert(r, 10)
			a.Network = "othernet"
			return sealT(t, a, r.key)
		}, ReasonNetwork},
	}
	for i, b := range bad {
		rogue, topic := joinRogue(t, uint64(600+i), nodes)
		data := b.make(rogue)
		// Publish until every honest node has turned it down: a message sent
		// while a stream is still being set up may be lost.
		publishUntil(t, topic, data, fmt.Sprintf("every honest node to reject %s", b.name), func() bool {
			for _, n := range nodes {
				if rejections(n.svc, b.want) < 1 {
					return false
				}
			}
			return true
		})
		for _, n := range nodes {
			if viewHas(n.svc, rogue.id()) {
				t.Errorf("%s: node %s holds an advert of the rogue", b.name, n.id())
			}
		}
	}

	// A valid advert of a rogue enters the views; another advert with the
	// same seq (the rogue signed two) is rejected as a replay, an older one
	// is ignored as stale, and neither changes the views. (The same advert
	// published again is the same message: gossipsub drops it as seen.)
	rogue, topic := joinRogue(t, 700, nodes)
	good := sealT(t, rogueAdvert(rogue, 100), rogue.key)
	publishUntil(t, topic, good, "the rogue's valid advert to reach every view", func() bool {
		for _, n := range nodes {
			if !viewHas(n.svc, rogue.id()) {
				return false
			}
		}
		return true
	})
	replays := []struct {
		data []byte
		want Reason
	}{
		{sealT(t, func() Advert { a := rogueAdvert(rogue, 100); a.SlotsFree = 1; return a }(), rogue.key), ReasonReplay},
		{sealT(t, rogueAdvert(rogue, 50), rogue.key), ReasonStale},
	}
	for _, r := range replays {
		before := make([]float64, len(nodes))
		for i, n := range nodes {
			before[i] = rejections(n.svc, r.want)
		}
		publishUntil(t, topic, r.data, fmt.Sprintf("every honest node to turn down a replay (%s)", r.want), func() bool {
			for i, n := range nodes {
				if rejections(n.svc, r.want) < before[i]+1 {
					return false
				}
			}
			return true
		})
	}
	for _, n := range nodes {
		if e, _ := n.svc.Lookup(rogue.id()); e.Seq != 100 {
			t.Errorf("node %s holds rogue advert seq %d, want 100", n.id(), e.Seq)
		}
		if e, ok := n.svc.Lookup(honest.id()); !ok || e.SlotsTotal == 999 {
			t.Errorf("node %s holds a forged advert of %s: %+v", n.id(), honest.id(), e.Advert)
		}
		if got := len(n.svc.View()); got != len(nodes)+1 {
			t.Errorf("node %s: view has %d entries, want %d", n.id(), got, len(nodes)+1)
		}
	}
}

// TestFloodScoredDown checks that a peer that floods invalid adverts falls
// below the graylist threshold of an honest node.
func TestFloodScoredDown(t *testing.T) {
	key := testKey(t, 7)
	h, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	scores := make(chan map[peer.ID]float64, 16)
	ps, err := pubsub.NewGossipSub(ctx, h, append(PubSubOptions(testNetwork),
		pubsub.WithPeerScoreInspect(func(m map[peer.ID]float64) {
			select {
			case scores <- m:
			default:
			}
		}, 100*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(ctx, ps, h, key, testNetwork, WithMinInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	honest := &testNode{key: key, h: h, ps: ps, svc: svc}
	rogue := newTestNode(t, 667, true)
	defer rogue.close()
	connect(t, rogue, honest)
	topic, err := rogue.ps.Join(Topic(testNetwork))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the rogue to see the honest node on the topic", func() bool {
		return len(topic.ListPeers()) == 1
	})
	for i := range 10 {
		if err := topic.Publish(ctx, []byte(fmt.Sprintf("garbage %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(30 * time.Second)
	for {
		select {
		case m := <-scores:
			if m[rogue.id()] < PeerScoreThresholds().GraylistThreshold {
				return
			}
		case <-deadline:
			t.Fatal("the flooding peer was not scored below the graylist threshold within 30s")
		}
	}
}

func TestNewChecks(t *testing.T) {
	n := newTestNode(t, 5, true)
	defer n.close()
	ctx := context.Background()
	if _, err := New(ctx, n.ps, n.h, testKey(t, 6), testNetwork); err == nil {
		t.Error("New with a key that is not the host's = nil error, want one")
	}
	if _, err := New(ctx, n.ps, n.h, n.key, ""); err == nil {
		t.Error("New with an empty network = nil error, want one")
	}
	for _, o := range []Option{WithSlots(-1), WithTiming(time.Second, time.Second), WithTiming(time.Hour, time.Second),
		WithLabels(map[string]string{"bad key": "v"}), WithRuntimes("WASM"), WithMinInterval(-1)} {
		if _, err := New(ctx, n.ps, n.h, n.key, testNetwork, o); err == nil {
			t.Error("New with a bad option = nil error, want one")
		}
	}
	reg := prometheus.NewRegistry()
	s, err := New(ctx, n.ps, n.h, n.key, testNetwork, WithRegisterer(reg), WithSlots(3), WithLabels(map[string]string{"region": "eu"}))
	if err != nil {
		t.Fatal(err)
	}
	e, ok := s.Lookup(n.id())
	if !ok || !e.Self || e.SlotsTotal != 3 || e.SlotsFree != 3 || e.Labels["region"] != "eu" {
		t.Errorf("own entry after New = %+v, %v; want 3 free slots, region=eu, Self", e, ok)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// The topic, validator and metrics are free again.
	s, err = New(ctx, n.ps, n.h, n.key, testNetwork, WithRegisterer(reg))
	if err != nil {
		t.Fatalf("New after Close: %v", err)
	}
	s.Close()
}

// TestLateJoinerSeesAdverts checks that a node joining later gets the
// others' adverts without waiting for their heartbeat: they republish when
// a neighbour joins the topic.
func TestLateJoinerSeesAdverts(t *testing.T) {
	slow := WithTiming(4*time.Minute, 2*time.Minute) // no heartbeat within the test
	nodes := newCluster(t, 3, slow)
	waitFor(t, 30*time.Second, "the first three views to converge", func() bool {
		for _, n := range nodes {
			if len(n.svc.View()) != 3 {
				return false
			}
		}
		return true
	})
	late := newTestNode(t, 200, false, slow)
	t.Cleanup(late.close)
	connect(t, late, nodes[0])
	waitFor(t, 60*time.Second, "the late node to see every advert (long before any heartbeat)", func() bool {
		return len(late.svc.View()) == 4
	})
}
