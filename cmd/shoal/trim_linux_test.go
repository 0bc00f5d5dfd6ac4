package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestTrimExecutable(t *testing.T) {
	n, err := trimExecutable()
	if err != nil {
		t.Fatal(err)
	}
	if n <= 0 {
		t.Fatalf("trimExecutable dropped %d bytes, want the read-only mappings of the test binary", n)
	}
	// The process goes on running code and reading data of the binary,
	// mapped back on demand.
	if got := strings.Repeat("ab", 3); got != "ababab" {
		t.Fatalf("after the trim: %q", got)
	}
	if n2, err := trimExecutable(); err != nil || n2 != n {
		t.Fatalf("second trim: %d, %v; want %d, nil", n2, err, n)
	}
}

func TestExecutableMappings(t *testing.T) {
	smaps := `00400000-00402000 r--p 00000000 fe:00 42                                 /opt/shoal
Size:                  8 kB
Anonymous:             0 kB
00402000-01503000 r-xp 00002000 fe:00 42                                 /opt/shoal
Size:              17412 kB
Anonymous:             0 kB
02969000-02a7c000 r--p 02569000 fe:00 42                                 /opt/shoal
Size:               1100 kB
Anonymous:            12 kB
02a7c000-02a90000 rw-p 0267c000 fe:00 42                                 /opt/shoal
Anonymous:            80 kB
7f0000000000-7f0000001000 r--p 00000000 fe:00 7                          /usr/lib/libc.so.6
Anonymous:             0 kB
7f0000002000-7f0000003000 rw-p 00000000 00:00 0 
Anonymous:             4 kB
`
	path := filepath.Join(t.TempDir(), "smaps")
	if err := os.WriteFile(path, []byte(smaps), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := executableMappings(path, "/opt/shoal")
	if err != nil {
		t.Fatal(err)
	}
	want := []mapping{
		{start: 0x400000, end: 0x402000},
		{start: 0x402000, end: 0x1503000},
		{start: 0x2969000, end: 0x2a7c000, anonKB: 12},
		{start: 0x2a7c000, end: 0x2a90000, writable: true, anonKB: 80},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("executableMappings = %+v, want %+v", got, want)
	}
}
