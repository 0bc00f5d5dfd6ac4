package sandbox

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPruneCache(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "wazero-v1")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name string, age time.Duration) string {
		p := filepath.Join(sub, name)
		if err := os.WriteFile(p, make([]byte, 100), 0o600); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
		return p
	}
	oldest, older, newer := write("a", 3*time.Hour), write("b", 2*time.Hour), write("c", time.Hour)
	if freed, err := PruneCache(dir, 1000); err != nil || freed != 0 {
		t.Fatalf("PruneCache under the bound = %d, %v; want 0, nil", freed, err)
	}
	freed, err := PruneCache(dir, 150)
	if err != nil || freed != 200 {
		t.Fatalf("PruneCache = %d, %v; want 200, nil", freed, err)
	}
	for p, want := range map[string]bool{oldest: false, older: false, newer: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s: exists = %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
	if _, err := PruneCache(filepath.Join(dir, "missing"), 1); err == nil {
		t.Error("PruneCache of a missing dir succeeded")
	}
}
