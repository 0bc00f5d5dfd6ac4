package blocks

import (
	"bufio"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/multiformats/go-multicodec"

	"github.com/shoalnet/shoal/crypto"
)

func addRandom(t testing.TB, s *Service, seed uint64, n int64) (cid.Cid, [32]byte) {
	t.Helper()
	c, size, err := s.AddReader(context.Background(), &randReader{state: seed, n: n})
	if err != nil {
		t.Fatalf("AddReader: %v", err)
	}
	if size != uint64(n) {
		t.Fatalf("AddReader size = %d, want %d", size, n)
	}
	return c, sha(t, &randReader{state: seed, n: n})
}

func openSHA(t testing.TB, s *Service, c cid.Cid) ([32]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rc, _, err := s.Open(ctx, c)
	if err != nil {
		return [32]byte{}, err
	}
	defer rc.Close()
	return sha(t, rc), nil
}

func TestTransferTwoHosts(t *testing.T) {
	ha, hb := newHost(t), newHost(t)
	a, b := newService(t, ha, nil), newService(t, hb, nil)
	connect(t, hb, ha)
	c, want := addRandom(t, a, 1, 5<<20+12345)
	got, err := openSHA(t, b, c)
	if err != nil {
		t.Fatalf("Open on B: %v", err)
	}
	if got != want {
		t.Fatalf("B read different bytes than A added")
	}
	// The DAG is now complete on B: Fetch is local, and B serves it.
	if missing, err := b.missingLocally(context.Background(), c); err != nil || missing {
		t.Fatalf("after Open, missingLocally = %v, %v; want false", missing, err)
	}
}

func TestTransferThreeHostsAtOnce(t *testing.T) {
	ha, hb, hc := newHost(t), newHost(t), newHost(t)
	a, b, cs := newService(t, ha, nil), newService(t, hb, nil), newService(t, hc, nil)
	connect(t, hb, ha)
	connect(t, hc, ha)
	root, want := addRandom(t, a, 2, 9<<20)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []*Service{b, cs} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := s.Fetch(ctx, root); err != nil {
				errs[i] = err
				return
			}
			got, err := openSHA(t, s, root)
			if err == nil && got != want {
				err = errors.New("sha256 mismatch")
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("fetcher %d: %v", i, err)
		}
	}
}

func TestBitswapFallback(t *testing.T) {
	ha, hb := newHost(t), newHost(t)
	a, b := newService(t, ha, nil), newService(t, hb, nil)
	// A speaks only bitswap, like any IPFS node.
	ha.RemoveStreamHandler(ProtocolDAG)
	connect(t, hb, ha)
	c, want := addRandom(t, a, 3, 3<<20)
	got, err := openSHA(t, b, c)
	if err != nil {
		t.Fatalf("Open over bitswap: %v", err)
	}
	if got != want {
		t.Fatal("sha256 mismatch over bitswap")
	}
}

// newDHT starts a kad-dht server on h with Shoal's prefix; loopback
// addresses are kept (the default filters are for the public network).
func newDHT(t testing.TB, h host.Host) *dht.IpfsDHT {
	t.Helper()
	d, err := dht.New(h, dht.Mode(dht.ModeServer), dht.ProtocolPrefix("/shoal"),
		dht.AddressFilter(nil), dht.DisableAutoRefresh())
	if err != nil {
		t.Fatalf("dht.New: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestProviderFoundThroughDHT(t *testing.T) {
	ha, hb, hc := newHost(t), newHost(t), newHost(t)
	da, db, dc := newDHT(t, ha), newDHT(t, hb), newDHT(t, hc)
	a := newService(t, ha, da)
	newService(t, hb, db)
	c := newService(t, hc, dc)
	connect(t, ha, hb)
	connect(t, hc, hb)
	waitFor(t, "routing tables", 20*time.Second, func() bool {
		return da.RoutingTable().Size() > 0 && dc.RoutingTable().Size() > 0
	})
	root, want := addRandom(t, a, 4, 2<<20)
	// Wait until C's DHT names A as a provider (A provides asynchronously).
	waitFor(t, "provider record", 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for ai := range dc.FindProvidersAsync(ctx, root, 1) {
			if ai.ID == ha.ID() {
				return true
			}
		}
		return false
	})
	// DHT queries may have connected A and C; cut that link so that C
	// starts the fetch knowing A only as a provider record.
	hc.Network().ClosePeer(ha.ID())
	ha.Network().ClosePeer(hc.ID())
	waitFor(t, "A and C disconnected", 10*time.Second, func() bool {
		return hc.Network().Connectedness(ha.ID()) != network.Connected
	})
	got, err := openSHA(t, c, root)
	if err != nil {
		t.Fatalf("Open on C: %v", err)
	}
	if got != want {
		t.Fatal("sha256 mismatch")
	}
	if hc.Network().Connectedness(ha.ID()) != network.Connected {
		t.Error("C did not connect to A, the provider it learned through the DHT")
	}
}

func TestMissingCIDTimesOut(t *testing.T) {
	ha, hb := newHost(t), newHost(t)
	newService(t, ha, nil)
	b := newService(t, hb, nil, WithFetchTimeout(time.Second))
	connect(t, hb, ha)
	missing := crypto.CIDOf(multicodec.Raw, []byte("nobody has this"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for name, f := range map[string]func() error{
		"Fetch":    func() error { return b.Fetch(ctx, missing) },
		"GetBlock": func() error { _, err := b.GetBlock(ctx, missing); return err },
		"Open":     func() error { _, _, err := b.Open(ctx, missing); return err },
	} {
		err := f()
		if !errors.Is(err, ErrNoProvider) {
			t.Errorf("%s(missing) = %v, want ErrNoProvider", name, err)
			continue
		}
		if !strings.Contains(err.Error(), "no provider found for CID "+missing.String()+" within 1s") {
			t.Errorf("%s(missing) error %q does not name the CID and timeout", name, err)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("fetch did not honour its own timeout")
	}
}

// serveEvil makes h answer DAG streams with the frames of frames(root).
func serveEvil(h host.Host, frames func(root cid.Cid) []byte) {
	h.SetStreamHandler(ProtocolDAG, func(st network.Stream) {
		defer st.Close()
		root, err := readRequest(bufio.NewReader(st))
		if err != nil {
			st.Reset()
			return
		}
		st.Write(frames(root))
	})
}

func TestTamperedBlockRejected(t *testing.T) {
	good := []byte("the real bytes")
	other := []byte("some other block")
	root := crypto.CIDOf(multicodec.Raw, good)
	otherCID := crypto.CIDOf(multicodec.Raw, other)
	cases := map[string]func(cid.Cid) []byte{
		"wrong bytes": func(c cid.Cid) []byte {
			b := appendBlockHeader(nil, c, len(other))
			return appendEnd(append(b, other...))
		},
		"unrequested block": func(c cid.Cid) []byte {
			b := appendBlockHeader(nil, otherCID, len(other))
			return appendEnd(append(b, other...))
		},
		"extra block after DAG": func(c cid.Cid) []byte {
			b := appendBlockHeader(nil, c, len(good))
			b = append(b, good...)
			b = appendBlockHeader(b, otherCID, len(other))
			return appendEnd(append(b, other...))
		},
		"oversize": func(c cid.Cid) []byte {
			return appendBlockHeader(nil, c, MaxBlockSize+1)
		},
		"early end": func(c cid.Cid) []byte { return appendEnd(nil) },
	}
	for name, frames := range cases {
		t.Run(name, func(t *testing.T) {
			he, hf := newHost(t), newHost(t)
			serveEvil(he, frames)
			f := newService(t, hf, nil, WithFetchTimeout(2*time.Second))
			connect(t, hf, he)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := f.GetBlock(ctx, root)
			if name == "extra block after DAG" {
				// The root itself is genuine and may be kept; the extra
				// block must not be.
				if err != nil {
					t.Fatalf("GetBlock of the genuine root: %v", err)
				}
			} else if err == nil {
				t.Fatal("GetBlock succeeded from a peer that only has tampered data")
			}
			for _, c := range []cid.Cid{root, otherCID} {
				if has, _ := f.bs.Has(ctx, c); has && name != "extra block after DAG" {
					t.Errorf("block %s was stored", c)
				}
			}
			if has, _ := f.bs.Has(ctx, otherCID); has {
				t.Errorf("unrequested block was stored")
			}
			waitFor(t, "penalty", 20*time.Second, func() bool { return f.isPenalised(he.ID()) })
		})
	}
}

func TestPutBlockChecks(t *testing.T) {
	s := newService(t, newHost(t), nil)
	ctx := context.Background()
	data := []byte("job spec bytes")
	c := crypto.CIDOf(multicodec.DagCbor, data)
	if err := s.PutBlock(ctx, c, []byte("other bytes")); !errors.Is(err, ErrBadBlock) {
		t.Errorf("PutBlock(wrong bytes) = %v, want ErrBadBlock", err)
	}
	big := make([]byte, MaxBlockSize+1)
	if err := s.PutBlock(ctx, crypto.CIDOf(multicodec.Raw, big), big); !errors.Is(err, ErrBadBlock) {
		t.Errorf("PutBlock(oversize) = %v, want ErrBadBlock", err)
	}
	odd := cid.NewCidV1(uint64(multicodec.GitRaw), c.Hash())
	if err := s.PutBlock(ctx, odd, data); err == nil || !strings.Contains(err.Error(), "codec") {
		t.Errorf("PutBlock(git-raw codec) = %v, want an unsupported codec error", err)
	}
	if err := s.PutBlock(ctx, c, data); err != nil {
		t.Fatalf("PutBlock: %v", err)
	}
	got, err := s.GetBlock(ctx, c)
	if err != nil || string(got) != string(data) {
		t.Fatalf("GetBlock = %q, %v", got, err)
	}
	if _, _, err := s.Open(ctx, c); !errors.Is(err, ErrNotFile) {
		t.Errorf("Open(dag-cbor) = %v, want ErrNotFile", err)
	}
}

func TestGCKeepsPinned(t *testing.T) {
	s := newService(t, newHost(t), nil)
	ctx := context.Background()
	keep, want := addRandom(t, s, 5, 1<<20+7)
	drop, _ := addRandom(t, s, 6, 1<<20+9)
	for range 2 { // the second answer comes from the cache of pinned roots
		if ok, err := s.IsPinned(ctx, drop); !ok || err != nil {
			t.Fatalf("IsPinned(added) = %v, %v", ok, err)
		}
	}
	if err := s.Unpin(ctx, drop); err != nil {
		t.Fatalf("Unpin: %v", err)
	}
	if ok, err := s.IsPinned(ctx, drop); ok || err != nil {
		t.Fatalf("IsPinned(unpinned) = %v, %v; want false", ok, err)
	}
	if err := s.Unpin(ctx, drop); err == nil {
		t.Error("Unpin of an unpinned CID succeeded")
	}
	before, err := s.Stat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	removed, freed, err := s.GC(ctx)
	if err != nil {
		t.Fatalf("GC: %v", err)
	}
	if removed != 6 || freed < 1<<20 {
		t.Errorf("GC removed %d blocks, %d bytes; want 6 blocks, over 1 MiB", removed, freed)
	}
	after, _ := s.Stat(ctx)
	if after.Blocks != before.Blocks-removed || after.Bytes != before.Bytes-freed || after.Pins != 1 {
		t.Errorf("Stat after GC = %+v, before %+v", after, before)
	}
	if has, _ := s.bs.Has(ctx, drop); has {
		t.Error("unpinned root survived GC")
	}
	got, err := openSHA(t, s, keep)
	if err != nil || got != want {
		t.Fatalf("pinned file after GC: %v", err)
	}
	pins, err := s.Pins(ctx)
	if err != nil || len(pins) != 1 || pins[0].CID != keep {
		t.Errorf("Pins = %v, %v; want [%s]", pins, err, keep)
	}
}

func TestPinFetchesFromPeer(t *testing.T) {
	ha, hb := newHost(t), newHost(t)
	a, b := newService(t, ha, nil), newService(t, hb, nil)
	connect(t, hb, ha)
	c, _ := addRandom(t, a, 7, 600<<10)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.Pin(ctx, c); err != nil {
		t.Fatalf("Pin: %v", err)
	}
	if _, _, err := b.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if missing, err := b.missingLocally(ctx, c); err != nil || missing {
		t.Fatalf("pinned DAG incomplete after GC: %v %v", missing, err)
	}
}

// TestPinCacheUnpinRace checks that lookups racing with Unpin never leave
// the cache of pinned roots answering true once Unpin has returned.
func TestPinCacheUnpinRace(t *testing.T) {
	s := newService(t, newHost(t), nil)
	ctx := context.Background()
	c, _ := addRandom(t, s, 7, 1000)
	for round := range 30 {
		if round > 0 {
			if err := s.Pin(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
						s.IsPinned(ctx, c)
					}
				}
			}()
		}
		time.Sleep(time.Millisecond)
		if err := s.Unpin(ctx, c); err != nil {
			t.Fatal(err)
		}
		close(stop)
		wg.Wait()
		if ok, err := s.IsPinned(ctx, c); ok || err != nil {
			t.Fatalf("round %d: IsPinned after Unpin = %v, %v; want false", round, ok, err)
		}
	}
}
