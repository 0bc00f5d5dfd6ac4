package ledger

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// twoHistories returns two logs under one key that agree on entries
// 0..common-1 and differ after, with n entries each.
func twoHistories(t *testing.T, common, n int) (a, b *Log) {
	t.Helper()
	a = openTestLog(t, t.TempDir(), 1)
	b = openTestLog(t, t.TempDir(), 1)
	// Same clock sequence, so common entries are byte-identical.
	appendN(t, a, common)
	appendN(t, b, common)
	for i := common; i < n; i++ {
		if _, err := a.Append(context.Background(), KindNote, []byte("history a")); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Append(context.Background(), KindNote, []byte("history b")); err != nil {
			t.Fatal(err)
		}
	}
	return a, b
}

func TestEvidenceEntryFork(t *testing.T) {
	a, b := twoHistories(t, 3, 6)
	ea, _ := a.Entry(4)
	eb, _ := b.Entry(4)
	ev, err := NewEntryFork(ea.Encoded(), eb.Encoded())
	if err != nil {
		t.Fatal(err)
	}
	if ev.Offender() == "" || ev.Origin != a.Origin() {
		t.Fatalf("evidence origin %s, want %s", ev.Origin, a.Origin())
	}
	if _, err := DecodeEvidence(ev.Encoded()); err != nil {
		t.Fatal(err)
	}
	// The same entry twice, entries at different seqs, entries that agree.
	e2, _ := a.Entry(2)
	e3, _ := a.Entry(3)
	same, _ := b.Entry(2)
	for name, pair := range map[string][2][]byte{
		"same entry":      {ea.Encoded(), ea.Encoded()},
		"different seqs":  {e2.Encoded(), e3.Encoded()},
		"identical entry": {e2.Encoded(), same.Encoded()},
	} {
		if _, err := NewEntryFork(pair[0], pair[1]); !errors.Is(err, ErrBogusEvidence) {
			t.Errorf("NewEntryFork(%s) err = %v, want ErrBogusEvidence", name, err)
		}
	}
	// Entries of two different logs at one seq.
	other := openTestLog(t, t.TempDir(), 2)
	appendN(t, other, 5)
	eo, _ := other.Entry(4)
	if _, err := NewEntryFork(ea.Encoded(), eo.Encoded()); !errors.Is(err, ErrBogusEvidence) {
		t.Errorf("NewEntryFork(two logs) err = %v, want ErrBogusEvidence", err)
	}
}

// TestEvidenceForgedEntry checks that evidence with an entry not signed by
// the origin's author (a forgery of a fork) is rejected.
func TestEvidenceForgedEntry(t *testing.T) {
	a := openTestLog(t, t.TempDir(), 1)
	appendN(t, a, 2)
	ea, _ := a.Entry(1)
	forged := bytes.Clone(ea.Encoded())
	forged[len(forged)-1] ^= 1 // break the signature
	lo, hi := ea.Encoded(), forged
	if bytes.Compare(lo, hi) > 0 {
		lo, hi = hi, lo
	}
	ev := (&Evidence{Kind: EntryFork, A: lo, B: hi}).encode()
	if _, err := DecodeEvidence(ev); !errors.Is(err, ErrBogusEvidence) {
		t.Fatalf("DecodeEvidence(forged entry) err = %v, want ErrBogusEvidence", err)
	}
}

func TestEvidenceCheckpointFork(t *testing.T) {
	c1 := testCheckpoint(t, 1, 10, 1)
	c2 := testCheckpoint(t, 1, 10, 2)
	ev, err := NewCheckpointFork(c1.Note, c2.Note)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeEvidence(ev.Encoded()); err != nil {
		t.Fatal(err)
	}
	c3 := testCheckpoint(t, 1, 11, 2)
	c4 := testCheckpoint(t, 2, 10, 2)
	for name, pair := range map[string][2][]byte{
		"same checkpoint": {c1.Note, c1.Note},
		"different sizes": {c1.Note, c3.Note},
		"two logs":        {c1.Note, c4.Note},
	} {
		if _, err := NewCheckpointFork(pair[0], pair[1]); !errors.Is(err, ErrBogusEvidence) {
			t.Errorf("NewCheckpointFork(%s) err = %v, want ErrBogusEvidence", name, err)
		}
	}
	// Out of canonical order.
	lo, hi := c1.Note, c2.Note
	if bytes.Compare(lo, hi) < 0 {
		lo, hi = hi, lo
	}
	if _, err := DecodeEvidence((&Evidence{Kind: CheckpointFork, A: lo, B: hi}).encode()); err == nil {
		t.Error("DecodeEvidence(checkpoints out of order) succeeded")
	}
}

func TestEvidenceInconsistent(t *testing.T) {
	a, b := twoHistories(t, 4, 12)
	oldA, _ := a.TreeHash(8)
	cpOld, err := SignCheckpoint(a.key, a.Origin(), 8, oldA)
	if err != nil {
		t.Fatal(err)
	}
	cpNew, _ := b.Checkpoint()
	rootB8, _ := b.TreeHash(8)
	proof, _ := b.ProveTree(8, 12)
	ev, err := NewInconsistentCheckpoints(cpOld.Note, cpNew.Note, rootB8, proof)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeEvidence(ev.Encoded()); err != nil {
		t.Fatal(err)
	}
	// Forgeries: the true old root, an altered proof, an altered root,
	// swapped checkpoints, a consistent pair.
	badProof := append(tlog.TreeProof(nil), proof...)
	badProof[0][0] ^= 1
	badRoot := rootB8
	badRoot[9] ^= 1
	cpA12, _ := a.Checkpoint()
	proofA, _ := a.ProveTree(8, 12)
	cases := map[string]*Evidence{
		"old root equals checkpoint": {A: cpOld.Note, B: cpNew.Note, OldRoot: oldA, Proof: proof},
		"altered proof":              {A: cpOld.Note, B: cpNew.Note, OldRoot: rootB8, Proof: badProof},
		"altered root":               {A: cpOld.Note, B: cpNew.Note, OldRoot: badRoot, Proof: proof},
		"swapped":                    {A: cpNew.Note, B: cpOld.Note, OldRoot: rootB8, Proof: proof},
		"consistent":                 {A: cpOld.Note, B: cpA12.Note, OldRoot: rootB8, Proof: proofA},
	}
	for name, ev := range cases {
		ev.Kind = InconsistentCheckpoints
		if _, err := DecodeEvidence(ev.encode()); !errors.Is(err, ErrBogusEvidence) {
			t.Errorf("DecodeEvidence(%s) err = %v, want ErrBogusEvidence", name, err)
		}
	}
}

func TestEvidenceMangled(t *testing.T) {
	c1 := testCheckpoint(t, 1, 10, 1)
	c2 := testCheckpoint(t, 1, 10, 2)
	ev, err := NewCheckpointFork(c1.Note, c2.Note)
	if err != nil {
		t.Fatal(err)
	}
	enc := ev.Encoded()
	for i := 0; i < len(enc); i++ {
		if _, err := DecodeEvidence(enc[:i]); err == nil {
			t.Fatalf("DecodeEvidence(first %d bytes) succeeded", i)
		}
		m := bytes.Clone(enc)
		m[i]++
		if _, err := DecodeEvidence(m); err == nil {
			t.Fatalf("DecodeEvidence(byte %d bumped) succeeded", i)
		}
	}
	if _, err := DecodeEvidence(make([]byte, MaxEvidenceSize+1)); !errors.Is(err, ErrMalformedEvidence) {
		t.Fatalf("DecodeEvidence(oversize) err = %v", err)
	}
	if _, err := DecodeEvidence(append(bytes.Clone(enc), 0)); err == nil {
		t.Fatal("DecodeEvidence with a trailing byte succeeded")
	}
}
