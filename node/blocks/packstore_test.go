package blocks

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	dshelp "github.com/ipfs/boxo/datastore/dshelp"
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

// packFixture is a datastore and a block directory that services are
// opened over, one after another, as a node restarting would.
type packFixture struct {
	t   *testing.T
	ds  *pebbleds.Datastore
	dir string
}

func newPackFixture(t *testing.T) *packFixture {
	ds, err := pebbleds.NewDatastore(t.TempDir())
	if err != nil {
		t.Fatalf("pebble: %v", err)
	}
	t.Cleanup(func() { ds.Close() })
	return &packFixture{t: t, ds: ds, dir: t.TempDir()}
}

// open starts a Service over the fixture; target, if not 0, is the size
// at which its packs are sealed.
func (f *packFixture) open(target int64) *Service {
	f.t.Helper()
	s, err := New(context.Background(), newHost(f.t), f.ds, nil, WithBlockDir(f.dir))
	if err != nil {
		f.t.Fatalf("New: %v", err)
	}
	if target != 0 {
		s.packs.target = target
	}
	f.t.Cleanup(func() { s.Close() })
	return s
}

// packFiles returns the names of the pack files in the block directory.
func (f *packFixture) packFiles() []string {
	f.t.Helper()
	m, err := filepath.Glob(filepath.Join(f.dir, "*"+packExt))
	if err != nil {
		f.t.Fatal(err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}

func mustGet(t *testing.T, s *Service, c cid.Cid, want []byte) {
	t.Helper()
	got, err := s.GetBlock(context.Background(), c)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("GetBlock %s: %d bytes, %v; want %d bytes", c, len(got), err, len(want))
	}
}

func TestPackStore(t *testing.T) {
	ctx := context.Background()
	f := newPackFixture(t)
	s := f.open(0)

	bigC, big := rawBlock(t, 1, packBlockMin+7)
	smallC, small := rawBlock(t, 2, packBlockMin-1)
	for _, b := range []struct {
		c    cid.Cid
		data []byte
	}{{bigC, big}, {smallC, small}} {
		if err := s.PutBlock(ctx, b.c, b.data); err != nil {
			t.Fatalf("PutBlock %s: %v", b.c, err)
		}
		mustGet(t, s, b.c, b.data)
		if n, err := s.bs.GetSize(ctx, b.c); err != nil || n != len(b.data) {
			t.Errorf("GetSize %s = %d, %v; want %d", b.c, n, err, len(b.data))
		}
		if has, err := s.bs.Has(ctx, b.c); err != nil || !has {
			t.Errorf("Has %s = %v, %v", b.c, has, err)
		}
	}
	if _, ok, err := s.packs.place(ctx, bigC); err != nil || !ok {
		t.Errorf("large block not in a pack: %v, %v", ok, err)
	}
	if _, ok, err := s.packs.place(ctx, smallC); err != nil || ok {
		t.Errorf("small block in a pack: %v, %v", ok, err)
	}
	if got := f.packFiles(); len(got) != 1 {
		t.Errorf("pack files = %v, want one", got)
	}
	// Storing it again appends nothing.
	_, _, before := s.packs.stat()
	if err := s.PutBlock(ctx, bigC, big); err != nil {
		t.Fatal(err)
	}
	if _, _, after := s.packs.stat(); after != before {
		t.Errorf("storing a stored block grew the packs from %d to %d bytes", before, after)
	}
	// A tampered large block is refused and not stored.
	bad := bytes.Clone(big)
	bad[0] ^= 1
	if err := s.PutBlock(ctx, bigC, bad); !errors.Is(err, ErrBadBlock) {
		t.Errorf("PutBlock of tampered bytes = %v, want ErrBadBlock", err)
	}
	mustGet(t, s, bigC, big)

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

	// Nothing is pinned: GC removes both, and the pack, now dead, goes.
	removed, freed, err := s.GC(ctx)
	if err != nil || removed != 2 || freed != uint64(len(big)+len(small)) {
		t.Fatalf("GC = %d, %d, %v; want 2, %d", removed, freed, err, len(big)+len(small))
	}
	if got := f.packFiles(); len(got) != 0 {
		t.Errorf("pack files after GC = %v, want none", got)
	}
	if _, err := s.bs.Get(ctx, bigC); !ipld.IsNotFound(err) {
		t.Errorf("Get after GC = %v, want not found", err)
	}
	if st, _ := s.Stat(ctx); st.Blocks != 0 || st.Bytes != 0 {
		t.Errorf("Stat after GC = %d blocks, %d bytes; want 0, 0", st.Blocks, st.Bytes)
	}
	// And the store still takes blocks.
	if err := s.PutBlock(ctx, bigC, big); err != nil {
		t.Fatal(err)
	}
	mustGet(t, s, bigC, big)
}

// TestPackStoreCompact: GC moves the live blocks of a mostly dead pack
// into a new one and removes it, and keeps a mostly live one.
func TestPackStoreCompact(t *testing.T) {
	ctx := context.Background()
	f := newPackFixture(t)
	const n = packBlockMin + 100
	s := f.open(3 * n) // three blocks to a pack
	var cids []cid.Cid
	var datas [][]byte
	for i := range 6 {
		c, d := rawBlock(t, byte(10*i), n)
		if err := s.PutBlock(ctx, c, d); err != nil {
			t.Fatal(err)
		}
		cids, datas = append(cids, c), append(datas, d)
	}
	if got := f.packFiles(); len(got) != 2 {
		t.Fatalf("pack files = %v, want two of three blocks", got)
	}
	// Keep block 2 (first pack: two of three dead) and blocks 3 to 5
	// (second pack: all live).
	for _, i := range []int{2, 3, 4, 5} {
		if err := s.Pin(ctx, cids[i]); err != nil {
			t.Fatal(err)
		}
	}
	removed, _, err := s.GC(ctx)
	if err != nil || removed != 2 {
		t.Fatalf("GC = %d, %v; want 2 removed", removed, err)
	}
	got := f.packFiles()
	if len(got) != 2 || got[0] != packName(2) || got[1] != packName(3) {
		t.Errorf("pack files after GC = %v, want %s (kept) and %s (block 2 moved there)", got, packName(2), packName(3))
	}
	for _, i := range []int{2, 3, 4, 5} {
		mustGet(t, s, cids[i], datas[i])
	}
	for _, i := range []int{0, 1} {
		if has, _ := s.bs.Has(ctx, cids[i]); has {
			t.Errorf("block %d still stored after GC", i)
		}
	}
	if st, _ := s.Stat(ctx); st.Blocks != 4 || st.Bytes != 4*n {
		t.Errorf("Stat = %d blocks, %d bytes; want 4, %d", st.Blocks, st.Bytes, 4*n)
	}

	// After a restart the blocks are there, and so is the accounting.
	s.Close()
	s = f.open(3 * n)
	for _, i := range []int{2, 3, 4, 5} {
		mustGet(t, s, cids[i], datas[i])
	}
	if st, _ := s.Stat(ctx); st.Blocks != 4 || st.Bytes != 4*n {
		t.Errorf("Stat after restart = %d blocks, %d bytes; want 4, %d", st.Blocks, st.Bytes, 4*n)
	}
}

// TestPackStoreRestart: blocks survive a restart; a pack that lost its
// file makes its blocks absent (and fetchable again), not an error.
func TestPackStoreRestart(t *testing.T) {
	ctx := context.Background()
	f := newPackFixture(t)
	const n = packBlockMin + 1
	s := f.open(n) // one block to a pack
	c1, d1 := rawBlock(t, 1, n)
	c2, d2 := rawBlock(t, 2, n)
	for _, b := range []struct {
		c cid.Cid
		d []byte
	}{{c1, d1}, {c2, d2}} {
		if err := s.PutBlock(ctx, b.c, b.d); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if err := os.Remove(filepath.Join(f.dir, packName(1))); err != nil {
		t.Fatal(err)
	}
	s = f.open(0)
	mustGet(t, s, c2, d2)
	if has, err := s.bs.Has(ctx, c1); err != nil || has {
		t.Errorf("Has of a block whose pack is gone = %v, %v; want false", has, err)
	}
	if _, err := s.bs.Get(ctx, c1); !ipld.IsNotFound(err) {
		t.Errorf("Get of a block whose pack is gone = %v, want not found", err)
	}
	if st, _ := s.Stat(ctx); st.Blocks != 1 {
		t.Errorf("Stat = %d blocks, want 1", st.Blocks)
	}
	// It can be stored again.
	if err := s.PutBlock(ctx, c1, d1); err != nil {
		t.Fatal(err)
	}
	mustGet(t, s, c1, d1)
}

// TestPackStoreMigratesBlockFiles: a block directory of an earlier
// version, one file per block in shard directories, is moved into a pack;
// leftovers of interrupted writes go, other files stay.
func TestPackStoreMigratesBlockFiles(t *testing.T) {
	ctx := context.Background()
	f := newPackFixture(t)
	c, d := rawBlock(t, 7, packBlockMin+3)
	name := dshelp.MultihashToDsKey(c.Hash()).String()[1:]
	shard := filepath.Join(f.dir, name[len(name)-3:len(name)-1])
	if err := os.MkdirAll(shard, 0o700); err != nil {
		t.Fatal(err)
	}
	blockFile := filepath.Join(shard, name)
	leftover := filepath.Join(shard, ".tmp-123")
	stray := filepath.Join(shard, "not-a-block")
	for p, data := range map[string][]byte{blockFile: d, leftover: []byte("x"), stray: []byte("y")} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := f.open(0)
	mustGet(t, s, c, d)
	if _, ok, err := s.packs.place(ctx, c); err != nil || !ok {
		t.Errorf("migrated block not in a pack: %v, %v", ok, err)
	}
	for _, p := range []string{blockFile, leftover} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there after migration: %v", filepath.Base(p), err)
		}
	}
	if _, err := os.Stat(stray); err != nil {
		t.Errorf("a file that is not a block was touched: %v", err)
	}
}

// TestPackStoreConcurrentPuts: the same blocks stored from several
// goroutines at once are stored once each, and the count says so.
func TestPackStoreConcurrentPuts(t *testing.T) {
	ctx := context.Background()
	f := newPackFixture(t)
	s := f.open(4 * (packBlockMin + 10))
	var cids []cid.Cid
	var datas [][]byte
	for i := range 8 {
		c, d := rawBlock(t, byte(i*3), packBlockMin+10)
		cids, datas = append(cids, c), append(datas, d)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range cids {
				j := (i + g) % len(cids)
				if err := s.PutBlock(ctx, cids[j], datas[j]); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for i := range cids {
		mustGet(t, s, cids[i], datas[i])
	}
	if st, _ := s.Stat(ctx); st.Blocks != len(cids) || st.Bytes != uint64(len(cids)*(packBlockMin+10)) {
		t.Errorf("Stat = %d blocks, %d bytes; want %d blocks", st.Blocks, st.Bytes, len(cids))
	}
	// GC of everything leaves no pack behind.
	if _, _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.packFiles(); len(got) != 0 {
		t.Errorf("pack files after GC = %v, want none", got)
	}
}

func FuzzDecodePackPlace(f *testing.F) {
	f.Add(packPlace{pack: 1, offset: 0, length: 1}.encode())
	f.Add(packPlace{pack: 1<<32 - 1, offset: 1 << 40, length: MaxBlockSize}.encode())
	f.Add([]byte{})
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		pl, err := decodePackPlace(b)
		if err != nil {
			return
		}
		if pl.length > MaxBlockSize || pl.offset < 0 {
			t.Fatalf("decoded an out-of-range place %+v", pl)
		}
		again, err := decodePackPlace(pl.encode())
		if err != nil || again != pl {
			t.Fatalf("round trip of %+v = %+v, %v", pl, again, err)
		}
	})
}

// TestPackStoreDiskFull: a block whose write fails (the disk full) is not
// stored and not reported as stored; the store goes on with a new pack.
func TestPackStoreDiskFull(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no /dev/full here: %v", err)
	}
	ctx := context.Background()
	f := newPackFixture(t)
	s := f.open(0)
	p := s.packs
	// The current pack writes to /dev/full, as a pack on a full disk would.
	const fullID = 1 << 20
	p.wmu.Lock()
	p.mu.Lock()
	p.packs[fullID] = &pack{id: fullID, f: full}
	p.current = p.packs[fullID]
	p.mu.Unlock()
	p.wmu.Unlock()
	t.Cleanup(func() {
		// Never let anything treat /dev/full as a pack to remove.
		p.mu.Lock()
		delete(p.packs, fullID)
		p.mu.Unlock()
		full.Close()
	})
	c, d := rawBlock(t, 3, packBlockMin+5)
	err = s.PutBlock(ctx, c, d)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("PutBlock on a full disk = %v, want ENOSPC and a hint", err)
	}
	if has, _ := s.bs.Has(ctx, c); has {
		t.Fatal("a block whose write failed is reported as stored")
	}
	if st, _ := s.Stat(ctx); st.Blocks != 0 {
		t.Fatalf("Stat counts %d blocks after a failed write", st.Blocks)
	}
	// Space again: the next write goes to a new pack.
	if err := s.PutBlock(ctx, c, d); err != nil {
		t.Fatalf("PutBlock after the failure: %v", err)
	}
	mustGet(t, s, c, d)
}
