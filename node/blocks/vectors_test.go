package blocks

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// The vectors of Kubo 0.43.0, `ipfs add --cid-version=1 -Q`.
func TestKuboVectors(t *testing.T) {
	ctx := context.Background()
	s := newService(t, newHost(t), nil)
	tests := []struct {
		name string
		r    func() *patternReader
		want string
	}{
		{"empty", func() *patternReader { return &patternReader{n: 0} }, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"},
		{"hello", func() *patternReader {
			msg := []byte("hello shoal\n")
			return &patternReader{n: int64(len(msg)), f: func(i int64) byte { return msg[i] }}
		}, "bafkreia2sbpknlj3ibwwdglinpxrsy7bc4xinezgmbwymbr7aigxnhirf4"},
		{"1e6 mod 251", func() *patternReader {
			return &patternReader{n: 1000000, f: func(i int64) byte { return byte(i % 251) }}
		}, "bafybeibx62obrkybp46hx3ivh53q4rnptgkunpgtwiib5lfelfgt2ekihm"},
		{"3MiB", func() *patternReader {
			return &patternReader{n: 3145728, f: func(i int64) byte { return byte((7*i + i/256) % 256) }}
		}, "bafybeigji6lsfhjqjbh7yrr3z6ugn5f5oya3cewcapegf5uoknxw63ce64"},
	}
	for _, tt := range tests {
		c, size, err := s.AddReader(ctx, tt.r())
		if err != nil {
			t.Fatalf("AddReader(%s): %v", tt.name, err)
		}
		if c.String() != tt.want {
			t.Errorf("AddReader(%s) = %s, want %s", tt.name, c, tt.want)
		}
		if want := uint64(tt.r().n); size != want {
			t.Errorf("AddReader(%s) size = %d, want %d", tt.name, size, want)
		}
		// Read it back, and through a file on disk via AddPath.
		rc, n, err := s.Open(ctx, c)
		if err != nil {
			t.Fatalf("Open(%s): %v", tt.name, err)
		}
		if got, want := sha(t, rc), sha(t, tt.r()); got != want || n != size {
			t.Errorf("Open(%s): sha/size mismatch (size %d, want %d)", tt.name, n, size)
		}
		rc.Close()
		p := filepath.Join(t.TempDir(), "f")
		var buf bytes.Buffer
		buf.ReadFrom(tt.r())
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		c2, _, err := s.AddPath(ctx, p)
		if err != nil || c2 != c {
			t.Errorf("AddPath(%s) = %s, %v, want %s", tt.name, c2, err, c)
		}
	}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("alpha\n"), 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "b.txt"), []byte("beta\n"), 0o644)
	os.WriteFile(filepath.Join(dir, ".hidden"), []byte("skipped as Kubo does\n"), 0o644)
	c, size, err := s.AddPath(ctx, dir)
	if err != nil {
		t.Fatalf("AddPath(dir): %v", err)
	}
	if want := "bafybeiawm7kjcgxpdxlhqj4qun2ikiqnotiln3r5bctmybgxnltwzlr4qy"; c.String() != want {
		t.Errorf("AddPath(dir) = %s, want %s", c, want)
	}
	if size != 11 {
		t.Errorf("AddPath(dir) size = %d, want 11", size)
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := s.ExportPath(ctx, c, out); err != nil {
		t.Fatalf("ExportPath(dir): %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "sub", "b.txt")); err != nil || string(b) != "beta\n" {
		t.Errorf("exported sub/b.txt = %q, %v", b, err)
	}
	if err := s.ExportPath(ctx, c, out); err == nil {
		t.Errorf("ExportPath onto an existing path succeeded")
	}
}
