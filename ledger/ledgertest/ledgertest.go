// Package ledgertest provides a conformance suite for implementations of
// ledger.Source and a tool that rewrites a log's history under its own key,
// for testing fork detection.
package ledgertest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/shoalnet/shoal/ledger"
)

// TestSource checks that src serves the log l (which must hold at least 10
// entries) the way every ledger.Source must: the newest checkpoint of l,
// every entry in order with bounded ranges, consistency proofs that verify,
// and errors wrapping ledger.ErrNotFound beyond the end of the log.
func TestSource(t *testing.T, l *ledger.Log, src ledger.Source) {
	ctx := context.Background()
	size := l.Size()
	if size < 10 {
		t.Fatalf("TestSource needs a log of at least 10 entries, got %d", size)
	}
	t.Run("Origin", func(t *testing.T) {
		if src.Origin() != l.Origin() {
			t.Fatalf("Origin() = %s, want %s", src.Origin(), l.Origin())
		}
	})
	t.Run("Checkpoint", func(t *testing.T) {
		cp, err := src.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want, err := l.TreeHash(cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		if cp.Size != size || cp.Hash != want {
			t.Fatalf("Checkpoint() = %v, want size %d root %s", cp, size, want)
		}
	})
	t.Run("Entries", func(t *testing.T) {
		for _, tc := range []struct {
			from uint64
			max  int
		}{{0, 1}, {0, 3}, {size - 1, 5}, {3, int(size)}} {
			es, err := src.Entries(ctx, tc.from, tc.max)
			if err != nil {
				t.Fatalf("Entries(%d, %d) = %v", tc.from, tc.max, err)
			}
			if len(es) == 0 || len(es) > tc.max || uint64(len(es)) > size-tc.from {
				t.Fatalf("Entries(%d, %d) returned %d entries", tc.from, tc.max, len(es))
			}
			for i, raw := range es {
				e, err := l.Entry(tc.from + uint64(i))
				if err != nil {
					t.Fatal(err)
				}
				if string(raw) != string(e.Encoded()) {
					t.Fatalf("Entries(%d, %d)[%d] differs from entry %d", tc.from, tc.max, i, tc.from+uint64(i))
				}
			}
		}
		if _, err := src.Entries(ctx, size, 1); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("Entries(%d, 1) err = %v, want ErrNotFound", size, err)
		}
	})
	t.Run("ProveTree", func(t *testing.T) {
		root, _ := l.TreeHash(size)
		for _, old := range []uint64{1, 2, size / 2, size - 1, size} {
			p, err := src.ProveTree(ctx, old, size)
			if err != nil {
				t.Fatalf("ProveTree(%d, %d) = %v", old, size, err)
			}
			oh, _ := l.TreeHash(old)
			if err := tlog.CheckTree(p, int64(size), root, int64(old), oh); err != nil {
				t.Fatalf("ProveTree(%d, %d) does not verify: %v", old, size, err)
			}
		}
		if _, err := src.ProveTree(ctx, 1, size+1); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("ProveTree(1, %d) err = %v, want ErrNotFound", size+1, err)
		}
	})
	t.Run("Fetch", func(t *testing.T) {
		n := 0
		cp, v, err := ledger.Fetch(ctx, src, func([]byte) error { n++; return nil })
		if err != nil {
			t.Fatal(err)
		}
		if cp.Size != size || v.Size() != size || n != int(size) {
			t.Fatalf("Fetch: checkpoint %d, verified %d, visited %d; want %d", cp.Size, v.Size(), n, size)
		}
	})
}

// Truncate cuts the log in dir (which must not be open) to its first keep
// entries, walking the documented file format. Appending to the reopened
// log then writes a different history under the same key: a fork.
func Truncate(dir string, keep uint64) error {
	path := filepath.Join(dir, ledger.LogFileName)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("ledgertest: %w", err)
	}
	// Header: two lines (magic, origin).
	off := 0
	for lines := 0; lines < 2; off++ {
		if off >= len(data) {
			return fmt.Errorf("ledgertest: %s has no header", path)
		}
		if data[off] == '\n' {
			lines++
		}
	}
	for i := uint64(0); i < keep; i++ {
		if off+12 > len(data) {
			return fmt.Errorf("ledgertest: %s has fewer than %d entries", path, keep)
		}
		off += 12 + int(binary.BigEndian.Uint32(data[off:]))
	}
	if off > len(data) {
		return fmt.Errorf("ledgertest: %s has fewer than %d entries", path, keep)
	}
	if err := os.Truncate(path, int64(off)); err != nil {
		return fmt.Errorf("ledgertest: %w", err)
	}
	return nil
}
