package dist

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
)

func TestPruneAnnounced(t *testing.T) {
	ctx := context.Background()
	st := &store{ds: dssync.MutexWrap(datastore.NewMapDatastore())}
	key := testKey(t, 1)
	specs, b1 := sealedBatch(t, key, 2)
	all1, err := CheckAnnouncements(b1)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.putAnnouncedBatch(ctx, b1, jobIDs(all1)); err != nil {
		t.Fatal(err)
	}
	old := specs[0].ID
	time.Sleep(5 * time.Millisecond)
	cutoff := time.Now()
	time.Sleep(5 * time.Millisecond)
	// Job 1 heard again, in a batch of its own: its reference names the
	// newer batch and goes with it.
	newer := specs[1].ID
	body, err := announcementBody(specs[1], all1[1].Status())
	if err != nil {
		t.Fatal(err)
	}
	b2, err := SealAnnouncements(key, [][]byte{body})
	if err != nil {
		t.Fatal(err)
	}
	all2, err := CheckAnnouncements(b2)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.putAnnouncedBatch(ctx, b2, jobIDs(all2)); err != nil {
		t.Fatal(err)
	}
	if got, err := st.openAnnounced(ctx, newer); err != nil || got.Spec.ID != newer {
		t.Fatalf("job 1 after it was heard again: %v", err)
	}
	// The same envelope heard twice is stored once.
	if err := st.putAnnouncedBatch(ctx, b2, jobIDs(all2)); err != nil {
		t.Fatal(err)
	}
	n, err := st.pruneAnnounced(ctx, cutoff)
	if err != nil || n != 1 {
		t.Fatalf("pruneAnnounced = %d, %v; want 1 (job 0, whose only batch is before the cutoff)", n, err)
	}
	if _, err := st.openAnnounced(ctx, old); !errors.Is(err, datastore.ErrNotFound) {
		t.Fatalf("the old announcement is still there: %v", err)
	}
	if got, err := st.openAnnounced(ctx, newer); err != nil || got.Spec.ID != newer {
		t.Fatalf("job 1, announced again after the cutoff, was pruned: %v", err)
	}
	// The newer batch stays until its own time comes.
	if n, err := st.pruneAnnounced(ctx, cutoff); err != nil || n != 0 {
		t.Fatalf("second pruneAnnounced = %d, %v; want 0", n, err)
	}
	if ok, _ := st.ds.Has(ctx, seenBatchKey(hashOf(b2))); !ok {
		t.Error("the newer batch was pruned before its time")
	}
	if ok, _ := st.ds.Has(ctx, seenBatchKey(hashOf(b1))); ok {
		t.Error("the old batch is still stored")
	}
	if _, err := st.pruneAnnounced(ctx, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if ok, _ := st.ds.Has(ctx, seenBatchKey(hashOf(b2))); ok {
		t.Error("the newer batch outlived a cutoff after it")
	}
	if _, err := st.ds.Get(ctx, seenKey(newer)); !errors.Is(err, datastore.ErrNotFound) {
		t.Fatalf("job 1's reference outlived its batch: %v", err)
	}
	// An index written by an earlier version (per job, no job list).
	legacy := specs[0].ID
	if err := st.ds.Put(ctx, seenKey(legacy), []byte(batchRef+hashOf(b1))); err != nil {
		t.Fatal(err)
	}
	if err := st.ds.Put(ctx, seenAtKey(cutoff.Add(-time.Second), legacy), nil); err != nil {
		t.Fatal(err)
	}
	if n, err := st.pruneAnnounced(ctx, cutoff); err != nil || n != 1 {
		t.Fatalf("pruneAnnounced of an earlier version's index = %d, %v; want 1", n, err)
	}
	if _, err := st.ds.Get(ctx, seenKey(legacy)); !errors.Is(err, datastore.ErrNotFound) {
		t.Fatalf("the earlier version's reference is still there: %v", err)
	}
}

func TestDecodeIDs(t *testing.T) {
	specs, _ := sealedBatch(t, testKey(t, 1), 3)
	ids := []cid.Cid{specs[0].ID, specs[1].ID, specs[2].ID}
	b := encodeIDs(ids)
	got, err := decodeIDs(b)
	if err != nil || len(got) != 3 || got[2] != ids[2] {
		t.Fatalf("decodeIDs(encodeIDs) = %v, %v", got, err)
	}
	if got, err := decodeIDs(nil); err != nil || len(got) != 0 {
		t.Fatalf("decodeIDs(empty) = %v, %v; want none", got, err)
	}
	if got, err := decodeIDs(b[:len(b)-3]); err == nil || len(got) != 2 {
		t.Fatalf("decodeIDs(truncated) = %d IDs, %v; want the first 2 and an error", len(got), err)
	}
}

func TestAnnouncedBatchRead(t *testing.T) {
	ctx := context.Background()
	st := &store{ds: dssync.MutexWrap(datastore.NewMapDatastore())}
	specs, b := sealedBatch(t, testKey(t, 1), 3)
	all, err := CheckAnnouncements(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.putAnnouncedBatch(ctx, b, jobIDs(all)); err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		got, err := st.announced(ctx, s.ID)
		if err != nil || got.Job != s.ID || !got.Remote {
			t.Errorf("announced(%s) = %+v, %v", s.ID, got, err)
		}
	}
	// One stored copy of the batch, whatever the number of jobs in it.
	if v, err := st.ds.Get(ctx, seenKey(specs[2].ID)); err != nil || string(v) != batchRef+hashOf(b) {
		t.Errorf("/seen entry = %q, %v; want a reference to the batch", v, err)
	}
}

// FuzzDecodeIDs checks that any stored job list decodes without a panic,
// and that what decodes encodes back to the bytes it came from.
func FuzzDecodeIDs(f *testing.F) {
	specs, _ := sealedBatch(f, testKey(f, 1), 2)
	f.Add(encodeIDs([]cid.Cid{specs[0].ID, specs[1].ID}))
	f.Add([]byte{})
	f.Add([]byte{0x24, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, err := decodeIDs(b)
		if err == nil && !bytes.Equal(encodeIDs(ids), b) {
			t.Fatalf("decodeIDs(%x) = %v, which encodes differently", b, ids)
		}
	})
}
