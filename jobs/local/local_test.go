package local

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/crypto"
	"github.com/shoalnet/shoal/examples"
	"github.com/shoalnet/shoal/jobs"
	"github.com/shoalnet/shoal/jobs/jobstest"
	"github.com/shoalnet/shoal/jobs/sandbox"
)

func TestMain(m *testing.M) {
	if sandbox.IsWorker() {
		os.Exit(sandbox.RunWorker())
	}
	dir, err := os.MkdirTemp("", "shoal-local-test-")
	if err != nil {
		panic(err)
	}
	builtDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	builtDir string
	builtMu  sync.Mutex
	built    = map[string][]byte{}
)

// wasm returns the bytes of example name, built once per test run.
func wasm(t testing.TB, name string) []byte {
	t.Helper()
	builtMu.Lock()
	defer builtMu.Unlock()
	if b, ok := built[name]; ok {
		return b
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p, err := examples.Build(ctx, builtDir, name, false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	built[name] = b
	return b
}

// testNode is one node's job runner: its key, its blocks and its pool.
type testNode struct {
	key    crypto.PrivKey
	blocks *jobstest.MemBlocks
	runner *Runner
}

func newNode(t testing.TB, seed int64) *testNode {
	t.Helper()
	key, err := crypto.GenerateKey(rand.New(rand.NewSource(seed)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := sandbox.NewPool(ctx, sandbox.Config{Slots: 1, Dir: t.TempDir(), CacheDir: filepath.Join(builtDir, "cache")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	blocks := &jobstest.MemBlocks{}
	r, err := New(Config{Sandbox: pool, Blocks: blocks, Key: key, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return &testNode{key: key, blocks: blocks, runner: r}
}

// spec signs a job for comp submitted by n.
func (n *testNode) spec(t testing.TB, comp jobs.Computation, nonce int64) *jobs.SignedSpec {
	t.Helper()
	id, _ := crypto.PeerID(n.key)
	env, err := jobs.NewEnvelope(id, comp, rand.New(rand.NewSource(nonce)), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s, err := jobs.SignSpec(n.key, env)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (n *testNode) execute(t testing.TB, s *jobs.SignedSpec) (*jobs.SignedResult, []jobs.State) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var states []jobs.State
	res, err := n.runner.Execute(ctx, s, func(st jobs.State) { states = append(states, st) })
	if err != nil {
		t.Fatalf("Execute = %v", err)
	}
	// The result is a valid signed record.
	b, err := res.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jobs.DecodeSignedResult(b); err != nil {
		t.Fatalf("result does not decode: %v", err)
	}
	return res, states
}

func (n *testNode) cat(t testing.TB, c cid.Cid) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "out")
	if err := n.blocks.ExportPath(context.Background(), c, dst); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWordcount(t *testing.T) {
	n := newNode(t, 1)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("the cat and the hat\n"), 0o600)
	os.Mkdir(filepath.Join(src, "sub"), 0o700)
	os.WriteFile(filepath.Join(src, "sub", "b.txt"), []byte("The end\n"), 0o600)
	in, _, err := n.blocks.AddPath(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	mod := n.blocks.AddBytes(wasm(t, "wordcount"))
	s := n.spec(t, jobs.Computation{Module: mod, Inputs: map[string]cid.Cid{"text": in}, Args: []string{"-top", "2"}}, 1)
	res, states := n.execute(t, s)
	r := res.Result
	if !r.OK() || r.Job != s.ID || r.Computation != s.CompCID {
		t.Fatalf("result = %+v", r)
	}
	want := "2 files, 2 lines, 7 words, 28 bytes\n      3 the\n      1 and\n"
	if got := n.cat(t, r.Stdout); got != want {
		t.Fatalf("stdout = %q, want %q", got, want)
	}
	wantStates := []jobs.State{jobs.StateFetching, jobs.StateRunning, jobs.StateUploading}
	if len(states) != 3 || states[0] != wantStates[0] || states[1] != wantStates[1] || states[2] != wantStates[2] {
		t.Errorf("states = %v, want %v", states, wantStates)
	}
}

func TestMandelbrotOutputs(t *testing.T) {
	if testing.Short() {
		t.Skip("renders an image")
	}
	n := newNode(t, 1)
	mod := n.blocks.AddBytes(wasm(t, "mandelbrot"))
	s := n.spec(t, jobs.Computation{Module: mod, Args: []string{"-w", "64", "-h", "64"}}, 1)
	res, _ := n.execute(t, s)
	if !res.Result.OK() {
		t.Fatalf("result = %+v", res.Result)
	}
	dst := filepath.Join(t.TempDir(), "out")
	if err := n.blocks.ExportPath(context.Background(), res.Result.Outputs, dst); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dst, "mandelbrot.png"))
	if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatalf("outputs/mandelbrot.png: %d bytes, %v", len(b), err)
	}
}

// TestDeterminism submits the same computations from two nodes, with
// different envelopes, and runs each on both: stdout and outputs agree.
func TestDeterminism(t *testing.T) {
	a, b := newNode(t, 1), newNode(t, 2)
	for _, tc := range []struct {
		name string
		args []string
	}{{"clockrand", nil}, {"pi", []string{"-seed", "42", "-n", "100000"}}} {
		code := wasm(t, tc.name)
		comp := jobs.Computation{Module: a.blocks.AddBytes(code), Args: tc.args}
		b.blocks.AddBytes(code)
		sa, sb := a.spec(t, comp, 1), b.spec(t, comp, 2)
		if sa.ID == sb.ID || sa.CompCID != sb.CompCID {
			t.Fatalf("job IDs %s %s, computation CIDs %s %s", sa.ID, sb.ID, sa.CompCID, sb.CompCID)
		}
		ra, _ := a.execute(t, sa)
		rb, _ := b.execute(t, sb)
		if ra.Result.Outcome() != rb.Result.Outcome() || !ra.Result.OK() {
			t.Fatalf("%s: outcomes differ: %+v vs %+v", tc.name, ra.Result.Outcome(), rb.Result.Outcome())
		}
		if ra.Result.Worker == rb.Result.Worker {
			t.Fatal("both results name the same worker")
		}
		t.Logf("%s: %s", tc.name, strings.TrimSpace(a.cat(t, ra.Result.Stdout)))
	}
}

func TestBadInputs(t *testing.T) {
	n := newNode(t, 1)
	missing := crypto.CIDOf(0x55, []byte("never stored"))
	hello := n.blocks.AddBytes(wasm(t, "hello"))
	tests := []struct {
		name string
		comp jobs.Computation
		set  func(*jobs.Envelope)
		want jobs.Failure
	}{
		{"missing module", jobs.Computation{Module: missing}, nil, jobs.FailureInput},
		{"missing input", jobs.Computation{Module: hello, Inputs: map[string]cid.Cid{"x": missing}}, nil, jobs.FailureInput},
		{"not wasm", jobs.Computation{Module: n.blocks.AddBytes([]byte("plain text"))}, nil, jobs.FailureInvalidModule},
		{"loop", jobs.Computation{Module: n.blocks.AddBytes(wasm(t, "misbehave")), Args: []string{"loop"}},
			func(e *jobs.Envelope) { e.Limits.WallTime = 200 * time.Millisecond }, jobs.FailureWallTime},
	}
	for i, tt := range tests {
		id, _ := crypto.PeerID(n.key)
		env, err := jobs.NewEnvelope(id, tt.comp, rand.New(rand.NewSource(int64(i))), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if tt.set != nil {
			tt.set(env)
		}
		s, err := jobs.SignSpec(n.key, env)
		if err != nil {
			t.Fatal(err)
		}
		res, _ := n.execute(t, s)
		if res.Result.Failure != tt.want || res.Result.Reason == "" || res.Result.OK() {
			t.Errorf("%s: result = %+v, want failure %q", tt.name, res.Result, tt.want)
		}
	}
	// The node keeps serving.
	res, _ := n.execute(t, n.spec(t, jobs.Computation{Module: hello}, 99))
	if !res.Result.OK() {
		t.Fatalf("hello after bad inputs: %+v", res.Result)
	}
}

// Scratch directories are reused when a job leaves them clean, and a
// reused one shows nothing of the job before: a job that never runs its
// program (its module cannot be fetched) reports empty captures, not the
// previous job's; a dir with outputs left in it is not reused.
func TestScratchReuse(t *testing.T) {
	n := newNode(t, 1)
	hello := n.blocks.AddBytes(wasm(t, "hello"))
	idle := func() []string {
		n.runner.mu.Lock()
		defer n.runner.mu.Unlock()
		return slices.Clone(n.runner.idle)
	}
	res, _ := n.execute(t, n.spec(t, jobs.Computation{Module: hello, Args: []string{"first"}}, 1))
	if got := n.cat(t, res.Result.Stdout); !strings.Contains(got, "arg 1: first") {
		t.Fatalf("stdout = %q", got)
	}
	first := idle()
	if len(first) != 1 {
		t.Fatalf("%d idle scratch dirs after a clean job, want 1", len(first))
	}
	missing := crypto.CIDOf(0x55, []byte("never stored"))
	res, _ = n.execute(t, n.spec(t, jobs.Computation{Module: missing}, 2))
	if res.Result.Failure != jobs.FailureInput || n.cat(t, res.Result.Stdout) != "" || n.cat(t, res.Result.Stderr) != "" {
		t.Fatalf("job that never ran: %+v, stdout %q", res.Result, n.cat(t, res.Result.Stdout))
	}
	res, _ = n.execute(t, n.spec(t, jobs.Computation{Module: hello, Args: []string{"second"}}, 3))
	if got := n.cat(t, res.Result.Stdout); strings.Contains(got, "first") || !strings.Contains(got, "arg 1: second") {
		t.Fatalf("stdout of the third job = %q", got)
	}
	if got := idle(); !slices.Equal(got, first) {
		t.Fatalf("idle scratch dirs %v, want the same one %v", got, first)
	}
	// Outputs left behind: the dir is removed, not reused.
	dir, err := n.runner.takeScratch()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "outputs", "left"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	n.runner.returnScratch(dir, true, false)
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("scratch dir with outputs left in it: stat = %v, want it removed", err)
	}
	if len(idle()) != 0 {
		t.Fatal("a dirty scratch dir was kept for reuse")
	}
}

// TestEmptyOutputs checks that a job that leaves outputs/ alone gets the CID
// of the empty directory without it being read back, that the block behind
// that CID is there (imported again if it went), and that a job that
// writes outputs after it still gets its own.
func TestEmptyOutputs(t *testing.T) {
	n := newNode(t, 1)
	hello := n.blocks.AddBytes(wasm(t, "hello"))
	emptyDir, _, err := n.blocks.AddPath(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n.blocks.Remove(emptyDir)
	for i := range 3 {
		if i == 2 {
			n.blocks.Remove(emptyDir) // as a garbage collection would
		}
		res, _ := n.execute(t, n.spec(t, jobs.Computation{Module: hello}, int64(i)))
		if res.Result.Outputs != emptyDir {
			t.Fatalf("job %d: outputs %s, want the empty directory %s", i, res.Result.Outputs, emptyDir)
		}
		if ok, _ := n.blocks.Has(context.Background(), emptyDir); !ok {
			t.Fatalf("job %d: the empty directory's block is not held", i)
		}
	}
	mod := n.blocks.AddBytes(wasm(t, "mandelbrot"))
	res, _ := n.execute(t, n.spec(t, jobs.Computation{Module: mod, Args: []string{"-w", "16", "-h", "16"}}, 9))
	if res.Result.Failure != "" || res.Result.Outputs == emptyDir {
		t.Fatalf("mandelbrot: %+v, want its own outputs", res.Result)
	}
}
