package testnet

import (
	"archive/tar"
	"bytes"
	"context"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoalnet/shoal/node/client"
)

// logWriter sends the demo's progress to the test log, a line at a time.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log(line)
	}
	return len(p), nil
}

// TestDemo runs the demo's stages against a real 4-node testnet and
// checks what each job printed and that the results agreed.
func TestDemo(t *testing.T) {
	tn := startTestnet(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	if err := tn.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep, err := RunDemo(ctx, tn, DemoOptions{Out: io.MultiWriter(&out, logWriter{t})})
	if err != nil {
		t.Fatalf("RunDemo: %v", err)
	}
	if len(rep.Results) != 4 {
		t.Fatalf("RunDemo ran %d jobs, want 4", len(rep.Results))
	}
	byName := map[string]DemoResult{}
	for _, r := range rep.Results {
		byName[r.Job.Example] = r
		if r.State != "done" || r.Verdict != "verified" {
			t.Errorf("%s: state %s verdict %s (%s), want done and verified", r.Job.Example, r.State, r.Verdict, r.Reason)
		}
		if len(r.Workers) != r.Job.Replicas {
			t.Errorf("%s: workers %v, want %d distinct", r.Job.Example, r.Workers, r.Job.Replicas)
		}
		for _, w := range r.Workers {
			if !strings.HasPrefix(w, "node") {
				t.Errorf("%s: worker %q is not a node of the testnet", r.Job.Example, w)
			}
		}
		if r.ID == "" || !strings.Contains(out.String(), r.ID) {
			t.Errorf("%s: job ID %q not printed", r.Job.Example, r.ID)
		}
	}

	hello := byName["hello"]
	if hello.Submitter != "node1" || len(hello.Workers) != 3 {
		t.Errorf("hello: submitter %s workers %v, want node1 and 3 workers", hello.Submitter, hello.Workers)
	}
	for _, a := range hello.Job.Args {
		if !strings.Contains(hello.Stdout, a) {
			t.Errorf("hello stdout = %q, want it to contain its argument %q", hello.Stdout, a)
		}
	}

	m := regexp.MustCompile(`pi ≈ ([0-9.]+)`).FindStringSubmatch(byName["pi"].Stdout)
	if m == nil {
		t.Fatalf("pi stdout = %q, want a line with pi ≈ X", byName["pi"].Stdout)
	}
	if pi, err := strconv.ParseFloat(m[1], 64); err != nil || math.Abs(pi-math.Pi) > 0.01 {
		t.Errorf("pi estimate = %s, want within 0.01 of π", m[1])
	}

	wc := byName["wordcount"]
	want := len(demoText())
	if !strings.HasPrefix(wc.Stdout, strconv.Itoa(want)+" files, ") {
		t.Errorf("wordcount stdout = %q, want it to count %d files", wc.Stdout, want)
	}

	mb := byName["mandelbrot"]
	if mb.OutputFile != filepath.Join(tn.Dir(), DemoDirName, "mandelbrot.png") {
		t.Fatalf("mandelbrot output file = %q, want DIR/demo/mandelbrot.png", mb.OutputFile)
	}
	f, err := os.Open(mb.OutputFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("mandelbrot output is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 480 || b.Dy() != 320 {
		t.Errorf("mandelbrot PNG is %dx%d, want 480x320", b.Dx(), b.Dy())
	}

	if len(rep.Ledgers) != tn.N()-1 {
		t.Errorf("ledger checks = %d, want %d (every node but node0)", len(rep.Ledgers), tn.N()-1)
	}
	for _, ch := range rep.Ledgers {
		if ch.Verifier != "node0" || !ch.Report.OK {
			t.Errorf("ledger check %+v, want ok by node0", ch)
		}
		sum := 0
		for _, n := range ch.Kinds {
			sum += n
		}
		if uint64(sum) != ch.Report.Entries {
			t.Errorf("ledger of %s: kinds %v count %d entries, want %d", ch.Subject, ch.Kinds, sum, ch.Report.Entries)
		}
	}

	// A job that fails is an error that names it and where to look.
	mods, err := BuildExamples(ctx, t.TempDir(), []string{"misbehave"})
	if err != nil {
		t.Fatal(err)
	}
	bad := DemoJob{Example: "misbehave", Node: 2, Args: []string{"exit", "3"}, Replicas: 2, Quorum: 2}
	res, err := tn.RunDemoJob(ctx, mods, bad)
	if err == nil {
		t.Fatalf("RunDemoJob(misbehave exit 3) = %+v, want an error", res)
	}
	for _, want := range []string{res.ID, "job status", LogFileName} {
		if res.ID == "" || !strings.Contains(err.Error(), want) {
			t.Errorf("RunDemoJob(misbehave exit 3) error %q does not name %q", err, want)
		}
	}
	if res.State != "failed" {
		t.Errorf("misbehave exit 3: state %q, want failed", res.State)
	}

	var hints bytes.Buffer
	PrintDemoHints(&hints, tn, rep.Plan, "shoal")
	for _, want := range []string{"job run " + rep.Plan.Modules["hello"], "peers --capacity", "ledger show", "ledger verify --peer " + tn.Node(1).PeerID.String()} {
		if !strings.Contains(hints.String(), want) {
			t.Errorf("hints lack %q:\n%s", want, hints.String())
		}
	}
}

func TestDemoJobs(t *testing.T) {
	for _, n := range []int{3, 4, 5, 8} {
		jobs := DemoJobs("/tn", n)
		if len(jobs) != 4 {
			t.Fatalf("DemoJobs(%d) = %d jobs, want 4", n, len(jobs))
		}
		for _, j := range jobs {
			if j.Node < 0 || j.Node >= n {
				t.Errorf("DemoJobs(%d): %s from node%d, want a node below %d", n, j.Example, j.Node, n)
			}
			if j.Replicas > n || j.Quorum < 1 || j.Quorum > j.Replicas {
				t.Errorf("DemoJobs(%d): %s replicas %d quorum %d, want 1 <= quorum <= replicas <= %d", n, j.Example, j.Replicas, j.Quorum, n)
			}
			if !slices.Contains(demoExamples(), j.Example) {
				t.Errorf("DemoJobs(%d): example %s is not built by the demo", n, j.Example)
			}
		}
	}
	if got := DemoJobs("/tn", 5)[0].Title(); got != "hello from node1 on 3 peers, quorum 2" {
		t.Errorf("Title() = %q, want %q", got, "hello from node1 on 3 peers, quorum 2")
	}
}

func TestPrepareDemoTooFewNodes(t *testing.T) {
	tn, err := Setup(Options{N: 2, Dir: filepath.Join(t.TempDir(), "tn"), Binary: binary(t)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = PrepareDemo(context.Background(), tn, DemoOptions{})
	if err == nil || !strings.Contains(err.Error(), "at least 3 nodes") {
		t.Errorf("PrepareDemo on 2 nodes = %v, want an error asking for at least 3 nodes", err)
	}
}

func TestPrebuiltExamples(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "hello.wasm"), []byte("\x00asm\x01\x00\x00\x00"), 0o600)
	os.WriteFile(filepath.Join(dir, "pi.wasm"), []byte("#!/bin/sh\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "short.wasm"), []byte("\x00a"), 0o600)
	got, err := PrebuiltExamples(dir, []string{"hello"})
	if err != nil || got["hello"] != filepath.Join(dir, "hello.wasm") {
		t.Errorf("PrebuiltExamples(hello) = %v, %v; want its path", got, err)
	}
	for _, name := range []string{"pi", "short", "missing"} {
		if _, err := PrebuiltExamples(dir, []string{"hello", name}); err == nil {
			t.Errorf("PrebuiltExamples(%s) succeeded; want an error", name)
		} else if !strings.Contains(err.Error(), "make -C examples") {
			t.Errorf("PrebuiltExamples(%s) error %q does not say how to build the modules", name, err)
		}
	}
}

func TestWriteDemoTextAndTar(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "text")
	if err := WriteDemoText(dir); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "sub"), 0o700)
	os.WriteFile(filepath.Join(dir, "sub", "more.txt"), []byte("more words\n"), 0o600)
	var buf bytes.Buffer
	if err := client.WriteInputTar(&buf, dir); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	want := []string{"jobs.txt", "ledger.txt", "shoal.txt", "sub/", "sub/more.txt"}
	if !slices.Equal(names, want) {
		t.Errorf("tar of the demo text = %v, want %v", names, want)
	}
	if err := os.Symlink("shoal.txt", filepath.Join(dir, "link")); err != nil {
		t.Skip(err)
	}
	if err := client.WriteInputTar(io.Discard, dir); err == nil {
		t.Error("writeDirTar with a symlink succeeded; want an error")
	}
}

func TestKindsText(t *testing.T) {
	for _, tt := range []struct {
		in   map[string]int
		want string
	}{
		{nil, ""},
		{map[string]int{"job.submitted": 1}, " (1 job.submitted)"},
		{map[string]int{"job.verdict": 1, "job.executed": 3}, " (3 job.executed, 1 job.verdict)"},
	} {
		if got := kindsText(tt.in); got != tt.want {
			t.Errorf("kindsText(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
