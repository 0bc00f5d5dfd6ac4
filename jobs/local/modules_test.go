package local

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPruneModules(t *testing.T) {
	dir := t.TempDir()
	r := &Runner{cfg: Config{ModulesMaxBytes: 250}, modules: dir, touched: make(map[string]time.Time)}
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
	oldest := write("a.wasm", 3*time.Hour)
	old := write("b.wasm", 2*time.Hour)
	recent := write("c.wasm", time.Minute) // inside the grace period
	kept := write("d.wasm", 4*time.Hour)   // the one just exported
	other := write("notes.txt", 5*time.Hour)

	// 400 bytes of modules, 250 allowed: the two oldest that may go, go.
	if freed := r.pruneModules(kept); freed != 200 {
		t.Fatalf("pruneModules freed %d bytes, want 200", freed)
	}
	for _, p := range []string{oldest, old} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", filepath.Base(p), err)
		}
	}
	for _, p := range []string{recent, kept, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was deleted: %v", filepath.Base(p), err)
		}
	}
	// Under the cap, nothing more goes.
	if freed := r.pruneModules(""); freed != 0 {
		t.Fatalf("second pruneModules freed %d bytes, want 0", freed)
	}
}
