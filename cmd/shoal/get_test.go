package main

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func tarOf(t *testing.T, entries ...tar.Header) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range entries {
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	tw.Close()
	return &b
}

func TestExtractTreeTarRefusesEscapes(t *testing.T) {
	reg := func(name string) tar.Header {
		return tar.Header{Typeflag: tar.TypeReg, Name: name, Size: 1, Mode: 0o644}
	}
	cases := map[string][]tar.Header{
		"dotdot":          {reg("../evil")},
		"absolute":        {reg("/tmp/evil")},
		"through symlink": {{Typeflag: tar.TypeSymlink, Name: "link", Linkname: "/tmp"}, reg("link/evil")},
		"no parent dir":   {reg("missing/evil")},
	}
	for name, entries := range cases {
		dir := t.TempDir()
		if err := extractTreeTar(tarOf(t, entries...), dir); err == nil {
			t.Errorf("extractTreeTar(%s) succeeded", name)
		}
	}
	dir := t.TempDir()
	ok := tarOf(t, tar.Header{Typeflag: tar.TypeDir, Name: "sub/", Mode: 0o755}, reg("sub/a"), reg("b"))
	if err := extractTreeTar(ok, dir); err != nil {
		t.Fatalf("extractTreeTar(valid) = %v", err)
	}
	for _, p := range []string{"sub/a", "b"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s not extracted: %v", p, err)
		}
	}
}

func TestWriteDirTarSkipsHidden(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("alpha\n"), 0o644)
	os.WriteFile(filepath.Join(dir, ".hidden"), []byte("h"), 0o644)
	var b bytes.Buffer
	if err := writeDirTar(&b, dir, false); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&b)
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	if len(names) != 1 || names[0] != "a.txt" {
		t.Errorf("writeDirTar entries = %v, want [a.txt]", names)
	}
}
