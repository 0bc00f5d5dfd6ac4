package ledger

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// Fuzz targets for every decoder of bytes from peers or files. Seed
// corpora live in testdata/fuzz/<target>; regenerate them with
// SHOAL_LEDGER_WRITE_CORPUS=1 go test -run TestWriteFuzzCorpus ./ledger/

func FuzzDecodeEntry(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeEntry(data)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Encoded(), data) {
			t.Fatal("decoded entry does not keep its bytes")
		}
		again := appendBytes(encodeUnsigned(e.Origin, e.Seq, e.Prev, e.Time, e.Kind, e.Body, e.Key), e.Sig)
		if !bytes.Equal(again, data) {
			t.Fatal("decoded entry re-encodes differently")
		}
	})
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		cp, err := ParseCheckpoint(data, "")
		if err != nil {
			return
		}
		if !bytes.HasPrefix(data, []byte(checkpointText(cp.Origin, cp.Size, cp.Hash)+"\n")) {
			t.Fatalf("accepted checkpoint %q is not in canonical form", data)
		}
	})
}

func FuzzDecodeEvidence(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeEvidence(data)
		if err != nil {
			return
		}
		if !bytes.Equal(ev.encode(), data) {
			t.Fatal("decoded evidence re-encodes differently")
		}
	})
}

func FuzzDecodeRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeRequest(data)
		if err != nil {
			return
		}
		if !bytes.Equal(r.encode(), data) {
			t.Fatal("decoded request re-encodes differently")
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		typ := RequestType(data[0]%4 + 1)
		r, err := DecodeResponse(typ, data[1:])
		if err != nil {
			return
		}
		if !bytes.Equal(r.encode(typ), data[1:]) {
			t.Fatal("decoded response re-encodes differently")
		}
	})
}

func FuzzDecodeGossip(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		gm, err := DecodeGossip(testNetwork, data)
		if err != nil {
			return
		}
		if (gm.Checkpoint == nil) == (gm.Evidence == nil) {
			t.Fatal("gossip message carries both or neither of checkpoint and evidence")
		}
	})
}

// TestWriteFuzzCorpus writes the seed corpora from valid examples.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("SHOAL_LEDGER_WRITE_CORPUS") == "" {
		t.Skip("set SHOAL_LEDGER_WRITE_CORPUS=1 to regenerate testdata/fuzz")
	}
	a := openTestLog(t, t.TempDir(), 1)
	b := openTestLog(t, t.TempDir(), 1)
	appendN(t, a, 4)
	appendN(t, b, 3)
	if _, err := b.Append(context.Background(), KindJobVerdict, []byte("other history")); err != nil {
		t.Fatal(err)
	}
	e0, _ := a.Entry(0)
	e3a, _ := a.Entry(3)
	e3b, _ := b.Entry(3)
	cpA, _ := a.Checkpoint()
	cpB, _ := b.Checkpoint()
	fork, err := NewEntryFork(e3a.Encoded(), e3b.Encoded())
	if err != nil {
		t.Fatal(err)
	}
	cfork, err := NewCheckpointFork(cpA.Note, cpB.Note)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, b, 3) // b: 7 entries, differing from a's at seq 3
	cpB7, _ := b.Checkpoint()
	proof, _ := b.ProveTree(4, 7)
	incons, err := NewInconsistentCheckpoints(cpA.Note, cpB7.Note, mustTreeHash(t, b, 4), proof)
	if err != nil {
		t.Fatal(err)
	}
	pr, _ := a.ProveEntry(1, 4)
	pt, _ := a.ProveTree(2, 4)
	seeds := map[string][][]byte{
		"FuzzDecodeEntry":     {e0.Encoded(), e3a.Encoded(), e3b.Encoded()},
		"FuzzParseCheckpoint": {cpA.Note, cpB.Note},
		"FuzzDecodeEvidence":  {fork.Encoded(), cfork.Encoded(), incons.Encoded()},
		"FuzzDecodeRequest":   {Request{Type: ReqCheckpoint}.encode(), Request{Type: ReqEntries, A: 3, B: 100}.encode(), Request{Type: ReqInclusion, A: 1, B: 4}.encode(), Request{Type: ReqConsistency, A: 2, B: 4}.encode()},
		"FuzzDecodeResponse": {
			append([]byte{0}, (&Response{Note: cpA.Note}).encode(ReqCheckpoint)...),
			append([]byte{1}, (&Response{Entries: [][]byte{e0.Encoded(), e3a.Encoded()}}).encode(ReqEntries)...),
			append([]byte{2}, (&Response{Entries: [][]byte{e0.Encoded()}, Proof: pr}).encode(ReqInclusion)...),
			append([]byte{3}, (&Response{Proof: pt}).encode(ReqConsistency)...),
			append([]byte{1}, (&Response{Status: StatusNotFound, Error: "no such entry"}).encode(ReqEntries)...),
		},
		"FuzzDecodeGossip": {EncodeGossipCheckpoint(cpA), EncodeGossipEvidence(fork)},
	}
	for target, list := range seeds {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, data := range list {
			body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(data)) + ")\n"
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func mustTreeHash(t *testing.T, l *Log, n uint64) tlog.Hash {
	t.Helper()
	x, err := l.TreeHash(n)
	if err != nil {
		t.Fatal(err)
	}
	return x
}
