package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func exportOf(t testing.TB, l *Log) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := l.Export(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestVerifyExport(t *testing.T) {
	l := openTestLog(t, t.TempDir(), 1)
	appendN(t, l, 300)
	exp := exportOf(t, l)
	rep, err := VerifyExport(context.Background(), bytes.NewReader(exp), "")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != 300 || rep.CheckpointSize != 300 || rep.Origin != l.Origin() {
		t.Fatalf("report = %+v", rep)
	}
	if _, err := VerifyExport(context.Background(), bytes.NewReader(exp), "shoal/othernet/12D3KooWHHzSeKaY8xuZVzkLbKFfvNgPPeKhFBGrMbNzbm5akpqu"); err == nil {
		t.Fatal("VerifyExport with another wanted origin succeeded")
	}
}

// entryStarts returns the offset in exp of each entry's length prefix.
func entryStarts(t *testing.T, exp []byte) (noteStart int, starts []int) {
	t.Helper()
	off := len(ExportMagic)
	noteStart = off
	for i := 0; off < len(exp); i++ {
		n, k := uvarint(exp[off:])
		if i > 0 {
			starts = append(starts, off)
		}
		off += k + int(n)
	}
	return noteStart, starts
}

func uvarint(b []byte) (uint64, int) {
	var x uint64
	var s uint
	for i, c := range b {
		if c < 0x80 {
			return x | uint64(c)<<s, i + 1
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
	return 0, 0
}

// TestVerifyTamperEveryByte flips every single byte of an export, one at a
// time, and checks that verification fails and names the right entry (or
// the checkpoint or header, for bytes outside entries).
func TestVerifyTamperEveryByte(t *testing.T) {
	l := openTestLog(t, t.TempDir(), 1)
	appendN(t, l, 12)
	exp := exportOf(t, l)
	noteStart, starts := entryStarts(t, exp)
	if len(starts) != 12 {
		t.Fatalf("found %d entries in the export, want 12", len(starts))
	}
	seqAt := func(off int) int {
		s := -1
		for i, o := range starts {
			if off >= o {
				s = i
			}
		}
		return s
	}
	for off := range exp {
		m := bytes.Clone(exp)
		m[off] ^= 0x01
		_, err := VerifyExport(context.Background(), bytes.NewReader(m), "")
		if err == nil {
			t.Fatalf("VerifyExport with byte %d flipped succeeded", off)
		}
		var ve *VerifyError
		if !errors.As(err, &ve) {
			t.Fatalf("VerifyExport with byte %d flipped: err = %v, want *VerifyError", off, err)
		}
		switch want := seqAt(off); {
		case off < noteStart:
			if ve.Seq != -1 || !strings.Contains(ve.Reason, "not a ledger export") {
				t.Fatalf("byte %d (header) flipped: %v", off, err)
			}
		case want < 0:
			if ve.Seq != -1 || !strings.Contains(ve.Reason, "checkpoint") {
				t.Fatalf("byte %d (checkpoint) flipped: %v", off, err)
			}
		default:
			// A flipped length prefix can make entry want-1 swallow bytes
			// of entry want only if it grows; it always breaks entry want
			// or an earlier one that reads into it. Require the seq named
			// to be want, or want-1 when the flip is in want's length prefix.
			if ve.Seq != int64(want) {
				t.Fatalf("byte %d (entry %d) flipped: error names entry %d: %v", off, want, ve.Seq, err)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("entry %d:", want)) {
				t.Fatalf("byte %d flipped: error %q does not name entry %d", off, err, want)
			}
		}
	}
}

func TestVerifyTruncatedAndReordered(t *testing.T) {
	l := openTestLog(t, t.TempDir(), 1)
	appendN(t, l, 5)
	exp := exportOf(t, l)
	_, starts := entryStarts(t, exp)
	// Missing last entry: the checkpoint covers 5.
	_, err := VerifyExport(context.Background(), bytes.NewReader(exp[:starts[4]]), "")
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Seq != 4 {
		t.Fatalf("VerifyExport without entry 4: %v, want a VerifyError naming entry 4", err)
	}
	// Entries 1 and 2 swapped.
	sw := bytes.Clone(exp[:starts[1]])
	sw = append(sw, exp[starts[2]:starts[3]]...)
	sw = append(sw, exp[starts[1]:starts[2]]...)
	sw = append(sw, exp[starts[3]:]...)
	_, err = VerifyExport(context.Background(), bytes.NewReader(sw), "")
	if !errors.As(err, &ve) || ve.Seq != 1 {
		t.Fatalf("VerifyExport with entries 1 and 2 swapped: %v, want a VerifyError naming entry 1", err)
	}
}
