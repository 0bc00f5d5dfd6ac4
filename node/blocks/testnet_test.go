package blocks_test

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shoalnet/shoal/node"
	"github.com/shoalnet/shoal/testnet"
)

// seqReader yields n pseudo-random bytes (xorshift), the same for a seed.
type seqReader struct {
	s uint64
	n int64
}

func (r *seqReader) Read(b []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > r.n {
		b = b[:r.n]
	}
	for i := range b {
		r.s ^= r.s << 13
		r.s ^= r.s >> 7
		r.s ^= r.s << 17
		b[i] = byte(r.s >> 24)
	}
	r.n -= int64(len(b))
	return len(b), nil
}

// TestTestnetPayload is the scenario of the payloads issue on five real
// daemons: a 64 MiB random file added on node1 is fetched by CID on node4
// and node2 at once, and both read the bytes that were added. node4's
// rendezvous discovery is slowed down so that, at the start, it knows the
// network through node0 and the DHT rather than through a connection to
// node1.
func TestTestnetPayload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds shoal and starts 5 daemons")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bin, err := testnet.BuildBinary(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tn, err := testnet.Setup(testnet.Options{
		N: 5, Dir: filepath.Join(t.TempDir(), "tn"), Binary: bin, Network: "payloads",
		Configure: func(i int, cfg *node.Config) {
			if i == 4 {
				cfg.Network.DiscoveryMin = node.Duration(time.Hour)
				cfg.Network.DiscoveryMax = node.Duration(time.Hour)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tn.Stop() })
	if err := tn.Start(ctx); err != nil {
		t.Fatal(err)
	}

	const size = 64 << 20
	res, err := tn.Node(1).Client().Add(ctx, &seqReader{s: 42, n: size}, "random.bin")
	if err != nil {
		t.Fatalf("add on node1: %v", err)
	}
	want := sha256.New()
	io.Copy(want, &seqReader{s: 42, n: size})

	peers, err := tn.Node(4).Client().Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		if p.ID == tn.Node(1).PeerID.String() {
			t.Logf("node4 was already connected to node1 (through a DHT query) before the fetch")
		}
	}

	var wg sync.WaitGroup
	for _, i := range []int{4, 2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc, n, err := tn.Node(i).Client().Cat(ctx, res.CID)
			if err != nil {
				t.Errorf("cat on node%d: %v", i, err)
				return
			}
			defer rc.Close()
			h := sha256.New()
			got, err := io.Copy(h, rc)
			if err != nil || got != size || n != size {
				t.Errorf("cat on node%d: %d bytes (Content-Length %d), %v; want %d", i, got, n, err, size)
				return
			}
			if string(h.Sum(nil)) != string(want.Sum(nil)) {
				t.Errorf("cat on node%d: sha256 differs from the added file", i)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		for _, nd := range tn.Nodes() {
			if b, err := os.ReadFile(filepath.Join(nd.Repo, testnet.LogFileName)); err == nil && len(b) > 0 {
				t.Logf("%s log tail:\n%s", nd.Name, tail(b, 2000))
			}
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
