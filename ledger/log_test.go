package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

func TestAppendReopen(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir, 1)
	appendN(t, l, 100)
	cp, err := l.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != 100 {
		t.Fatalf("checkpoint size = %d, want 100", cp.Size)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openTestLog(t, dir, 1)
	if l2.Size() != 100 {
		t.Fatalf("Size after reopen = %d, want 100", l2.Size())
	}
	h, err := l2.TreeHash(100)
	if err != nil {
		t.Fatal(err)
	}
	if h != cp.Hash {
		t.Fatalf("TreeHash after reopen = %s, want %s", h, cp.Hash)
	}
	e, err := l2.Append(context.Background(), KindNote, []byte("after"))
	if err != nil {
		t.Fatal(err)
	}
	prev, _ := l2.Entry(99)
	if e.Seq != 100 || !e.Prev.Equals(prev.CID()) {
		t.Fatalf("entry after reopen: seq %d prev %s, want 100 and %s", e.Seq, e.Prev, prev.CID())
	}
	if _, err := l2.Entry(101); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Entry(101) err = %v, want ErrNotFound", err)
	}
}

func TestOpenWrongKey(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir, 1)
	appendN(t, l, 3)
	l.Close()
	if _, err := Open(context.Background(), dir, testKey(t, 2), testNetwork, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with another key: err = %v, want ErrCorrupt", err)
	}
}

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	openTestLog(t, dir, 1)
	if l, err := Open(context.Background(), dir, testKey(t, 1), testNetwork, Options{}); err == nil {
		l.Close()
		t.Fatal("second Open of one dir succeeded")
	}
}

func TestConcurrentAppend(t *testing.T) {
	l := openTestLog(t, t.TempDir(), 1)
	var wg sync.WaitGroup
	seen := make([]bool, 16*50)
	var mu sync.Mutex
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				e, err := l.Append(context.Background(), KindNote, fmt.Appendf(nil, "%d/%d", g, i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[e.Seq] {
					t.Errorf("seq %d returned twice", e.Seq)
				}
				seen[e.Seq] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if l.Size() != 800 {
		t.Fatalf("Size = %d, want 800", l.Size())
	}
	var buf bytes.Buffer
	if _, err := l.Export(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	rep, err := VerifyExport(context.Background(), &buf, l.Origin())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != 800 || rep.CheckpointSize != 800 {
		t.Fatalf("report = %+v", rep)
	}
}

func TestAppendAfterClose(t *testing.T) {
	l := openTestLog(t, t.TempDir(), 1)
	l.Close()
	if _, err := l.Append(context.Background(), KindNote, nil); err == nil {
		t.Fatal("Append after Close succeeded")
	}
}

func TestAppendRejectsBadInput(t *testing.T) {
	l := openTestLog(t, t.TempDir(), 1)
	if _, err := l.Append(context.Background(), "Bad Kind", nil); err == nil {
		t.Error("Append with kind \"Bad Kind\" succeeded")
	}
	if _, err := l.Append(context.Background(), KindNote, make([]byte, MaxBodySize+1)); err == nil {
		t.Error("Append with oversize body succeeded")
	}
	if _, err := l.Append(context.Background(), KindNote, make([]byte, MaxBodySize)); err != nil {
		t.Errorf("Append with max body: %v", err)
	}
}

// TestAppendAll appends groups of entries while other appends run: each
// group's entries are next to each other, in order, and a group with a bad
// entry appends none of them.
func TestAppendAll(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir, 1)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if _, err := l.Append(ctx, KindNote, fmt.Appendf(nil, "single %d.%d", g, i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var groups [][]*Entry
	for i := range 10 {
		es, err := l.AppendAll(ctx, []Pending{
			{Kind: KindJobSubmitted, Body: fmt.Appendf(nil, "submitted %d", i)},
			{Kind: KindJobVerdict, Body: fmt.Appendf(nil, "verdict %d", i)},
		})
		if err != nil {
			t.Fatal(err)
		}
		groups = append(groups, es)
	}
	wg.Wait()
	for i, es := range groups {
		if len(es) != 2 || es[1].Seq != es[0].Seq+1 || !es[1].Prev.Equals(es[0].CID()) {
			t.Fatalf("group %d: %d entries, seqs %d and %d; want two in a row", i, len(es), es[0].Seq, es[len(es)-1].Seq)
		}
		if es[0].Kind != KindJobSubmitted || string(es[1].Body) != fmt.Sprintf("verdict %d", i) {
			t.Fatalf("group %d: %s %q, %s %q; want the submitted entry, then the verdict", i, es[0].Kind, es[0].Body, es[1].Kind, es[1].Body)
		}
	}
	size := l.Size()
	if size != 4*20+2*10 {
		t.Fatalf("Size = %d, want %d", size, 4*20+2*10)
	}
	for _, bad := range [][]Pending{
		{{Kind: KindNote, Body: []byte("fine")}, {Kind: "Bad Kind"}},
		{{Kind: KindNote, Body: make([]byte, MaxBodySize+1)}},
		{},
		make([]Pending, MaxAppendAll+1),
	} {
		if _, err := l.AppendAll(ctx, bad); err == nil {
			t.Errorf("AppendAll of %d entries, one bad, succeeded", len(bad))
		}
	}
	if l.Size() != size {
		t.Fatalf("Size after rejected groups = %d, want %d", l.Size(), size)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openTestLog(t, dir, 1)
	last := groups[len(groups)-1][1]
	if e, err := l2.Entry(last.Seq); err != nil || !e.CID().Equals(last.CID()) {
		t.Fatalf("after reopen, entry %d = %v, %v; want %s", last.Seq, e, err, last.CID())
	}
}

// lastFrame returns the offset of the last record in the entry file.
func lastFrame(t *testing.T, l *Log) int64 {
	t.Helper()
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.offsets[len(l.offsets)-1]
}

func TestTruncateLastRecord(t *testing.T) {
	src := t.TempDir()
	l := openTestLog(t, src, 1)
	appendN(t, l, 5)
	last := lastFrame(t, l)
	l.Close()
	orig, err := os.ReadFile(filepath.Join(src, LogFileName))
	if err != nil {
		t.Fatal(err)
	}
	for cut := last; cut < int64(len(orig)); cut++ {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, LogFileName), orig[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := Open(context.Background(), dir, testKey(t, 1), testNetwork, Options{})
		if err != nil {
			t.Fatalf("Open after cutting at %d: %v", cut, err)
		}
		if l.Size() != 4 {
			t.Fatalf("Size after cutting at %d = %d, want 4", cut, l.Size())
		}
		// The log must go on from there.
		if e, err := l.Append(context.Background(), KindNote, []byte("again")); err != nil || e.Seq != 4 {
			t.Fatalf("Append after cut at %d = %v, %v; want seq 4", cut, e, err)
		}
		l.Close()
	}
}

func TestFlippedByteBeforeTail(t *testing.T) {
	src := t.TempDir()
	l := openTestLog(t, src, 1)
	appendN(t, l, 5)
	last := lastFrame(t, l)
	l.mu.RLock()
	offsets := append([]int64(nil), l.offsets...)
	l.mu.RUnlock()
	l.Close()
	orig, err := os.ReadFile(filepath.Join(src, LogFileName))
	if err != nil {
		t.Fatal(err)
	}
	seqAt := func(off int64) int {
		s := 0
		for i, o := range offsets {
			if off >= o {
				s = i
			}
		}
		return s
	}
	for off := offsets[0]; off < last; off++ {
		dir := t.TempDir()
		mangled := bytes.Clone(orig)
		mangled[off] ^= 0x40
		if err := os.WriteFile(filepath.Join(dir, LogFileName), mangled, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := Open(context.Background(), dir, testKey(t, 1), testNetwork, Options{})
		if err == nil {
			l.Close()
			t.Fatalf("Open with byte %d flipped succeeded", off)
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open with byte %d flipped: err = %v, want ErrCorrupt", off, err)
		}
		want := fmt.Sprintf("entry %d ", seqAt(off))
		if !bytes.Contains([]byte(err.Error()), []byte(want)) || !bytes.Contains([]byte(err.Error()), []byte(LogFileName)) {
			t.Fatalf("Open with byte %d flipped: err = %v, want it to name %q and the file", off, err, want)
		}
	}
}

func TestProofs(t *testing.T) {
	l := openTestLog(t, t.TempDir(), 1)
	appendN(t, l, 37)
	for _, size := range []uint64{1, 2, 7, 8, 36, 37} {
		th, err := l.TreeHash(size)
		if err != nil {
			t.Fatal(err)
		}
		for seq := uint64(0); seq < size; seq++ {
			p, err := l.ProveEntry(seq, size)
			if err != nil {
				t.Fatal(err)
			}
			e, _ := l.Entry(seq)
			rh := tlog.RecordHash(e.Encoded())
			if err := tlog.CheckRecord(p, int64(size), th, int64(seq), rh); err != nil {
				t.Fatalf("CheckRecord(seq %d, size %d) = %v", seq, size, err)
			}
			if err := CheckInclusion(p, size, th, seq, e.Encoded()); err != nil {
				t.Fatalf("CheckInclusion(seq %d, size %d) = %v", seq, size, err)
			}
			for i := range p {
				bad := append(tlog.RecordProof(nil), p...)
				bad[i][3] ^= 1
				if tlog.CheckRecord(bad, int64(size), th, int64(seq), rh) == nil {
					t.Fatalf("CheckRecord with proof hash %d altered passed", i)
				}
			}
			badTH := th
			badTH[0] ^= 1
			if tlog.CheckRecord(p, int64(size), badTH, int64(seq), rh) == nil {
				t.Fatal("CheckRecord with altered tree hash passed")
			}
		}
		for old := uint64(1); old <= size; old++ {
			oh, _ := l.TreeHash(old)
			p, err := l.ProveTree(old, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckTree(p, int64(size), th, int64(old), oh); err != nil {
				t.Fatalf("CheckTree(%d→%d) = %v", old, size, err)
			}
			for i := range p {
				bad := append(tlog.TreeProof(nil), p...)
				bad[i][0] ^= 1
				if tlog.CheckTree(bad, int64(size), th, int64(old), oh) == nil {
					t.Fatalf("CheckTree(%d→%d) with hash %d altered passed", old, size, i)
				}
			}
			badOH := oh
			badOH[5] ^= 1
			if old < size && tlog.CheckTree(p, int64(size), th, int64(old), badOH) == nil {
				t.Fatalf("CheckTree(%d→%d) with altered old root passed", old, size)
			}
		}
	}
}

// TestRawEntriesAndScan checks the ranged reads that serve replication
// (Log.RawEntries) and read replicas (Replica.Scan) against entry-by-entry
// reads, their limits, and that a damaged frame is reported.
func TestRawEntriesAndScan(t *testing.T) {
	ctx := context.Background()
	l := openTestLog(t, t.TempDir(), 1)
	const n = 600
	for i := range n {
		body := bytes.Repeat([]byte{byte('a' + i%26)}, 1+(i%7)*50)
		if _, err := l.Append(ctx, KindNote, body); err != nil {
			t.Fatal(err)
		}
	}
	want := func(seq uint64) []byte {
		t.Helper()
		e, err := l.Entry(seq)
		if err != nil {
			t.Fatal(err)
		}
		return e.Encoded()
	}
	for _, from := range []uint64{0, 1, 255, 599, 600} {
		got, err := l.RawEntries(from, 300, 1<<20)
		if err != nil {
			t.Fatalf("RawEntries(%d): %v", from, err)
		}
		if wantN := min(300, n-int(from)); len(got) != wantN {
			t.Fatalf("RawEntries(%d) gave %d entries, want %d", from, len(got), wantN)
		}
		for i, data := range got {
			if !bytes.Equal(data, want(from+uint64(i))) {
				t.Fatalf("RawEntries(%d)[%d] differs from entry %d", from, i, from+uint64(i))
			}
		}
	}
	if got, err := l.RawEntries(0, 100, 1); err != nil || len(got) != 1 {
		t.Fatalf("RawEntries with a 1-byte limit gave %d entries, %v; want the first alone", len(got), err)
	}
	three := len(want(0)) + len(want(1)) + len(want(2))
	if got, err := l.RawEntries(0, 100, three); err != nil || len(got) != 3 {
		t.Fatalf("RawEntries with room for 3 gave %d entries, %v", len(got), err)
	}
	if _, err := l.RawEntries(n+1, 10, 1<<20); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RawEntries past the end: %v, want ErrNotFound", err)
	}

	r, err := OpenReplica(ctx, filepath.Join(t.TempDir(), "replica"), l.Origin())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cp, err := l.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx, LocalSource(l), cp); err != nil {
		t.Fatal(err)
	}
	var seen []uint64
	next, err := r.Scan(0, func(e *Entry) bool {
		if !bytes.Equal(e.Encoded(), want(e.Seq)) {
			t.Fatalf("Scan entry %d differs from the log's", e.Seq)
		}
		seen = append(seen, e.Seq)
		return true
	})
	if err != nil || next != n || len(seen) != n || seen[n-1] != n-1 {
		t.Fatalf("Scan(0) = %d, %v after %d entries; want %d", next, err, len(seen), n)
	}
	seen = seen[:0]
	next, err = r.Scan(300, func(e *Entry) bool { seen = append(seen, e.Seq); return len(seen) < 3 })
	if err != nil || next != 303 || len(seen) != 3 || seen[0] != 300 {
		t.Fatalf("Scan(300) stopping after 3 = %d, %v, saw %v; want 303 and 300..302", next, err, seen)
	}

	// A flipped byte inside entry 5's frame is a checksum failure.
	f, err := os.OpenFile(l.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	l.mu.RLock()
	off := l.offsets[5] + frameHeaderSize + 3
	l.mu.RUnlock()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := l.RawEntries(0, 10, 1<<20); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("RawEntries over a damaged frame: %v, want ErrCorrupt", err)
	}
}
