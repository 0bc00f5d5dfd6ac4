package sandbox

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPruneCache checks that the compilation cache is trimmed oldest
// first, files in subdirectories included (internal/fsprune tests the
// rest).
func TestPruneCache(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "wazero-v1", "old")
	fresh := filepath.Join(dir, "fresh")
	if err := os.MkdirAll(filepath.Dir(old), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, make([]byte, 100), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(old, time.Now().Add(-time.Hour), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if freed, err := PruneCache(dir, 150); err != nil || freed != 100 {
		t.Fatalf("PruneCache = %d, %v; want 100, nil", freed, err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("the older compiled module is still there (%v)", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("the newer compiled module went: %v", err)
	}
	if _, err := PruneCache(filepath.Join(dir, "missing"), 1); err == nil {
		t.Error("PruneCache of a missing dir succeeded")
	}
}
