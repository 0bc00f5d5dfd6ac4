package main

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
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

func TestJobStatusShowsVerdict(t *testing.T) {
	exit := int64(0)
	j := client.JobInfo{Job: "bafyjob", State: "done", ExitCode: &exit, Verdict: "verified",
		Reason: "2 of 3 results agree (quorum 2)", Disagreeing: []string{"12D3KooWCheat"},
		Results: []client.JobResult{
			{Worker: "12D3KooWHonest", Result: "bafyres1", WallMS: 1.5, PeakMemory: 1 << 20},
			{Worker: "12D3KooWCheat", Result: "bafyres2", ExitCode: 3, WallMS: 1.2, PeakMemory: 1 << 20},
			{Worker: "12D3KooWSlow", Result: "bafyres3", Failure: "timeout"},
		}}
	var buf bytes.Buffer
	writeJobInfo(&buf, j)
	out := squeeze(buf.String())
	for _, want := range []string{
		"verdict verified (2 of 3 results agree (quorum 2))\n",
		"disagreeing 12D3KooWCheat (its result lost the vote)\n",
		"bafyres1 by 12D3KooWHonest (exit 0, 1.5 ms",
		"bafyres2 by 12D3KooWCheat (exit 3, 1.2 ms",
		"bafyres3 by 12D3KooWSlow (timeout, 0.0 ms",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}

	// A failed job names its failure once, with the verdict bare.
	j = client.JobInfo{Job: "bafyjob", State: "failed", Verdict: "mismatch", Failure: "mismatch", Reason: "no 2 of 3 results agree"}
	buf.Reset()
	writeJobInfo(&buf, j)
	out = squeeze(buf.String())
	if !strings.Contains(out, "failure mismatch: no 2 of 3 results agree\n") || !strings.Contains(out, "verdict mismatch\n") {
		t.Errorf("failed job's status:\n%s", out)
	}
}

// squeeze turns each run of spaces into one, so that checks do not depend
// on the column widths.
func squeeze(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

func TestReadBatch(t *testing.T) {
	good := "# a sweep\n{\"module\":\"pi.wasm\",\"args\":[\"1\"]}\n\n  {\"module\":\"bafkqaaa\",\"replicas\":3,\"quorum\":2}  \n"
	reqs, err := readBatch(strings.NewReader(good))
	if err != nil || len(reqs) != 2 || reqs[0].Args[0] != "1" || reqs[1].Replicas != 3 {
		t.Fatalf("readBatch = %+v, %v", reqs, err)
	}
	for _, tt := range []struct{ in, want string }{
		{"", "no jobs"},
		{"# only a comment\n", "no jobs"},
		{"{\"module\":\"a.wasm\"}\nnot json\n", "line 2"},
		{"{\"module\":\"a.wasm\",\"modul\":1}\n", "line 1"},
		{"{\"args\":[\"x\"]}\n", "names no module"},
		{"{\"module\":\"a\"} {\"module\":\"b\"}\n", "one job per line"},
		{"{\"module\":\"" + strings.Repeat("a", maxBatchLine) + "\"}\n", "at most"},
	} {
		if _, err := readBatch(strings.NewReader(tt.in)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("readBatch(%.40q) = %v, want an error containing %q", tt.in, err, tt.want)
		}
	}
}
