package main

import (
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
