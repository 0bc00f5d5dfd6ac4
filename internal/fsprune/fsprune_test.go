package fsprune

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestToSize(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name string, age time.Duration) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, make([]byte, 100), 0o600); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
		return p
	}
	oldest := write("sub/a.bin", 5*time.Hour) // spared
	old := write("b.bin", 4*time.Hour)
	skipped := write("c.txt", 6*time.Hour) // not included
	mid := write("sub/d.bin", 3*time.Hour)
	young := write("e.bin", time.Hour)
	opts := Options{
		Include: func(p string) bool { return strings.HasSuffix(p, ".bin") },
		Spare:   func(p string, _ time.Time) bool { return p == oldest },
	}
	// 400 bytes of .bin files, 250 allowed: the oldest two that may go, go.
	freed, err := ToSize(dir, 250, opts)
	if err != nil || freed != 200 {
		t.Fatalf("ToSize = %d, %v; want 200, nil", freed, err)
	}
	for p, want := range map[string]bool{oldest: true, old: false, skipped: true, mid: false, young: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s: exists = %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
	if freed, err := ToSize(dir, 250, opts); err != nil || freed != 0 {
		t.Fatalf("second ToSize = %d, %v; want 0, nil", freed, err)
	}
	if _, err := ToSize(filepath.Join(dir, "missing"), 1, Options{}); err == nil {
		t.Error("ToSize of a missing dir succeeded")
	}
}
