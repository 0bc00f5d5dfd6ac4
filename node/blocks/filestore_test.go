package blocks

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"
	pebbleds "github.com/ipfs/go-ds-pebble"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multicodec"

	"github.com/shoalnet/shoal/crypto"
)

// rawBlock returns a raw block of n bytes derived from seed, and its CID.
func rawBlock(t *testing.T, seed byte, n int) (cid.Cid, []byte) {
	t.Helper()
	data := bytes.Repeat([]byte{seed, seed + 1, seed + 2}, n/3+1)[:n]
	return crypto.CIDOf(multicodec.Raw, data), data
}

func TestFileBlockstore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ds, err := pebbleds.NewDatastore(t.TempDir())
	if err != nil {
		t.Fatalf("pebble: %v", err)
	}
	t.Cleanup(func() { ds.Close() })
	// Leftovers of an interrupted write and a stray file.
	if err := os.MkdirAll(filepath.Join(dir, "AB"), 0o700); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(dir, "AB", ".tmp-123")
	stray := filepath.Join(dir, "AB", "not-a-block")
	for _, p := range []string{leftover, stray} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := New(ctx, newHost(t), ds, nil, WithBlockDir(dir))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := os.Stat(leftover); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("temporary file of an interrupted write not removed: %v", err)
	}

	bigC, big := rawBlock(t, 1, fileBlockMin+7)
	smallC, small := rawBlock(t, 2, fileBlockMin-1)
	for _, b := range []struct {
		c    cid.Cid
		data []byte
	}{{bigC, big}, {smallC, small}} {
		if err := s.PutBlock(ctx, b.c, b.data); err != nil {
			t.Fatalf("PutBlock %s: %v", b.c, err)
		}
		got, err := s.GetBlock(ctx, b.c)
		if err != nil || !bytes.Equal(got, b.data) {
			t.Fatalf("GetBlock %s: %d bytes, %v", b.c, len(got), err)
		}
		if n, err := s.bs.GetSize(ctx, b.c); err != nil || n != len(b.data) {
			t.Errorf("GetSize %s = %d, %v; want %d", b.c, n, err, len(b.data))
		}
		if has, err := s.bs.Has(ctx, b.c); err != nil || !has {
			t.Errorf("Has %s = %v, %v", b.c, has, err)
		}
	}
	if _, err := os.Stat(s.files.path(bigC)); err != nil {
		t.Errorf("large block not kept as a file: %v", err)
	}
	if _, err := os.Stat(s.files.path(smallC)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("small block kept as a file: %v", err)
	}
	// A tampered large block is refused and leaves no file behind.
	bad := bytes.Clone(big)
	bad[0] ^= 1
	if err := s.PutBlock(ctx, bigC, bad); !errors.Is(err, ErrBadBlock) {
		t.Errorf("PutBlock of tampered bytes = %v, want ErrBadBlock", err)
	}

	st, err := s.Stat(ctx)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if st.Blocks != 2 || st.Bytes != uint64(len(big)+len(small)) {
		t.Errorf("Stat = %d blocks, %d bytes; want 2, %d", st.Blocks, st.Bytes, len(big)+len(small))
	}
	keys, err := s.bs.AllKeysChan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for k := range keys {
		listed[string(k.Hash())] = true
	}
	if len(listed) != 2 || !listed[string(bigC.Hash())] || !listed[string(smallC.Hash())] {
		t.Errorf("AllKeysChan listed %d keys, want the 2 blocks", len(listed))
	}

	// Nothing is pinned: GC removes both, files included.
	removed, freed, err := s.GC(ctx)
	if err != nil || removed != 2 || freed != uint64(len(big)+len(small)) {
		t.Fatalf("GC = %d, %d, %v; want 2, %d", removed, freed, err, len(big)+len(small))
	}
	if _, err := os.Stat(s.files.path(bigC)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("GC left the block file: %v", err)
	}
	if _, err := s.bs.Get(ctx, bigC); !ipld.IsNotFound(err) {
		t.Errorf("Get after GC = %v, want not found", err)
	}
	if _, err := os.Stat(stray); err != nil {
		t.Errorf("a file that is not a block was touched: %v", err)
	}
}
