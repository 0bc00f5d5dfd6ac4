package main

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/shoalnet/shoal/node/client"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"1048576", 1 << 20, true}, {"64MiB", 64 << 20, true}, {"64M", 64 << 20, true}, {"64mb", 64 << 20, true},
		{"1GiB", 1 << 30, true}, {"512KiB", 512 << 10, true}, {"10B", 10, true}, {" 2 G", 2 << 30, true},
		{"", 0, false}, {"-1", 0, false}, {"1.5G", 0, false}, {"lots", 0, false}, {"99999999999999999999G", 0, false},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestTarRoundTrip(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("A"), 0o644)
	os.WriteFile(filepath.Join(src, "sub", "b.txt"), []byte("BB"), 0o644)
	var buf bytes.Buffer
	if err := client.WriteInputTar(&buf, src); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "out")
	if err := extractOutputs(bytes.NewReader(buf.Bytes()), dst); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "sub", "b.txt")); err != nil || string(b) != "BB" {
		t.Fatalf("sub/b.txt = %q, %v", b, err)
	}
	// A symlink in the source is refused; so are unsafe archive entries.
	os.Symlink("/etc/passwd", filepath.Join(src, "link"))
	if err := client.WriteInputTar(&bytes.Buffer{}, src); err == nil {
		t.Error("writeTar with a symlink = nil error")
	}
	for _, h := range []*tar.Header{
		{Name: "../escape", Typeflag: tar.TypeReg, Size: 1},
		{Name: "/abs", Typeflag: tar.TypeReg, Size: 1},
		{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
	} {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		tw.WriteHeader(h)
		if h.Size > 0 {
			tw.Write([]byte("x"))
		}
		tw.Close()
		if err := extractOutputs(&b, filepath.Join(t.TempDir(), "x")); err == nil {
			t.Errorf("extractOutputs(%q) = nil error", h.Name)
		}
	}
}
