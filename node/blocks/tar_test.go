package blocks

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"sort"
	"testing"
)

func TestAddTarMatchesKubo(t *testing.T) {
	s := newService(t, newHost(t), nil)
	ctx := context.Background()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// Out of order on purpose: the CID must not depend on tar order.
	for _, e := range []struct{ name, body string }{{"sub/b.txt", "beta\n"}, {"a.txt", "alpha\n"}} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.name, Size: int64(len(e.body)), Mode: 0o644})
		tw.Write([]byte(e.body))
	}
	tw.Close()
	c, size, err := s.AddTar(ctx, &buf)
	if err != nil {
		t.Fatalf("AddTar: %v", err)
	}
	if want := "bafybeiawm7kjcgxpdxlhqj4qun2ikiqnotiln3r5bctmybgxnltwzlr4qy"; c.String() != want || size != 11 {
		t.Fatalf("AddTar = %s, %d; want %s, 11", c, size, want)
	}
	if k, _, err := s.KindOf(ctx, c); err != nil || k != KindDirectory {
		t.Errorf("KindOf(dir) = %q, %v", k, err)
	}
	var out bytes.Buffer
	if err := s.WriteTar(ctx, c, "", &out); err != nil {
		t.Fatalf("WriteTar: %v", err)
	}
	tr := tar.NewReader(&out)
	var got []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		got = append(got, h.Name+"="+string(b))
	}
	sort.Strings(got)
	want := []string{"a.txt=alpha\n", "sub/=", "sub/b.txt=beta\n"}
	if len(got) != len(want) {
		t.Fatalf("WriteTar entries = %q, want %q", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("WriteTar entry %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestAddTarRejectsUnsafeNames(t *testing.T) {
	s := newService(t, newHost(t), nil)
	for _, name := range []string{"../evil", "a/../../evil", "/abs/../x", "a/./b/.."} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: 1, Mode: 0o644})
		tw.Write([]byte("x"))
		tw.Close()
		if _, _, err := s.AddTar(context.Background(), &buf); err == nil {
			t.Errorf("AddTar(%q) succeeded", name)
		}
	}
}
