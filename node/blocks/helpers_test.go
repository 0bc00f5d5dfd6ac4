package blocks

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"testing"
	"time"

	pebbleds "github.com/ipfs/go-ds-pebble"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
)

// newHost starts a libp2p host listening on 127.0.0.1 only.
func newHost(t testing.TB) host.Host {
	t.Helper()
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.DisableRelay(),
	)
	if err != nil {
		t.Fatalf("libp2p.New: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// newService starts a Service on h over a pebble store in a temp dir, with
// large blocks in files in another temp dir (unless
// SHOAL_BENCH_BLOCKS_IN_DATASTORE is set).
func newService(t testing.TB, h host.Host, router routing.ContentRouting, opts ...Option) *Service {
	t.Helper()
	var popts []pebbleds.Option
	if os.Getenv("SHOAL_BENCH_PEBBLE_DEFAULTS") == "" {
		popts = append(popts, pebbleds.WithPebbleOpts(PebbleOptions()))
	}
	ds, err := pebbleds.NewDatastore(t.TempDir(), popts...)
	if err != nil {
		t.Fatalf("pebble: %v", err)
	}
	if os.Getenv("SHOAL_BENCH_BLOCKS_IN_DATASTORE") == "" {
		opts = append([]Option{WithBlockDir(t.TempDir())}, opts...)
	}
	s, err := New(context.Background(), h, ds, router, opts...)
	if err != nil {
		ds.Close()
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		s.Close()
		ds.Close()
	})
	return s
}

func connect(t testing.TB, a, b host.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatalf("connect: %v", err)
	}
}

// patternReader yields n bytes with byte i = f(i).
type patternReader struct {
	i, n int64
	f    func(i int64) byte
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.i >= p.n {
		return 0, io.EOF
	}
	k := 0
	for k < len(b) && p.i < p.n {
		b[k] = p.f(p.i)
		k++
		p.i++
	}
	return k, nil
}

// randReader yields n pseudo-random bytes from seed (fast, deterministic).
type randReader struct {
	state uint64
	n     int64
}

func (r *randReader) Read(b []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > r.n {
		b = b[:r.n]
	}
	for i := range b {
		r.state ^= r.state << 13
		r.state ^= r.state >> 7
		r.state ^= r.state << 17
		b[i] = byte(r.state >> 24)
	}
	r.n -= int64(len(b))
	return len(b), nil
}

func sha(t testing.TB, r io.Reader) [32]byte {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatalf("reading: %v", err)
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}
