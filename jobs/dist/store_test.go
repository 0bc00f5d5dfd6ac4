package dist

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/multiformats/go-multicodec"

	"github.com/shoalnet/shoal/crypto"
)

func TestPruneAnnounced(t *testing.T) {
	ctx := context.Background()
	st := &store{ds: dssync.MutexWrap(datastore.NewMapDatastore())}
	old := crypto.CIDOf(multicodec.DagCbor, []byte("old job"))
	newer := crypto.CIDOf(multicodec.DagCbor, []byte("newer job"))
	if err := st.putAnnounced(ctx, old, []byte("announcement 1")); err != nil {
		t.Fatal(err)
	}
	// Heard again: still indexed by the first time.
	if err := st.putAnnounced(ctx, old, []byte("announcement 1, again")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	cutoff := time.Now()
	time.Sleep(5 * time.Millisecond)
	if err := st.putAnnounced(ctx, newer, []byte("announcement 2")); err != nil {
		t.Fatal(err)
	}
	n, err := st.pruneAnnounced(ctx, cutoff)
	if err != nil || n != 1 {
		t.Fatalf("pruneAnnounced = %d, %v; want 1 (the old job only)", n, err)
	}
	if _, err := st.ds.Get(ctx, seenKey(old)); !errors.Is(err, datastore.ErrNotFound) {
		t.Fatalf("the old announcement is still there: %v", err)
	}
	if b, err := st.ds.Get(ctx, seenKey(newer)); err != nil || string(b) != "announcement 2" {
		t.Fatalf("the newer announcement: %q, %v", b, err)
	}
	// Pruned once, the index entry is gone too: a second pass finds nothing.
	if n, err := st.pruneAnnounced(ctx, cutoff); err != nil || n != 0 {
		t.Fatalf("second pruneAnnounced = %d, %v; want 0", n, err)
	}
	if n, err := st.pruneAnnounced(ctx, time.Now().Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("pruneAnnounced of everything = %d, %v; want 1", n, err)
	}
}
