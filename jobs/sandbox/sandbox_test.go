package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoalnet/shoal/examples"
	"github.com/shoalnet/shoal/jobs"
)

func TestMain(m *testing.M) {
	// The test binary doubles as the sandbox worker.
	if IsWorker() {
		os.Exit(RunWorker())
	}
	dir, err := os.MkdirTemp("", "shoal-sandbox-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	builtDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// builtDir holds the examples built for this test run.
var (
	builtDir string
	builtMu  sync.Mutex
	built    = map[string]string{}
)

// example returns the path of example name built for wasip1, building it
// once per test run.
func example(t testing.TB, name string) string {
	t.Helper()
	builtMu.Lock()
	defer builtMu.Unlock()
	if p, ok := built[name]; ok {
		return p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p, err := examples.Build(ctx, builtDir, name, false)
	if err != nil {
		t.Fatal(err)
	}
	built[name] = p
	return p
}

func newPool(t testing.TB, cfg Config) *Pool {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.CacheDir == "" {
		// Share one disk cache across tests so each module compiles once.
		cfg.CacheDir = filepath.Join(builtDir, "cache")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := NewPool(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// job is a task in a fresh scratch dir.
type job struct {
	task    *Task
	scratch string
}

func newJob(t testing.TB, module string, args ...string) *job {
	t.Helper()
	s := t.TempDir()
	out := filepath.Join(s, "outputs")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	return &job{scratch: s, task: &Task{
		ModuleCID:  "cid-of-" + filepath.Base(module),
		ModulePath: module,
		Seed:       "seed-1",
		Args:       args,
		OutputsDir: out,
		StdoutPath: filepath.Join(s, "stdout"),
		StderrPath: filepath.Join(s, "stderr"),
		Memory:     256 << 20,
		Stdout:     1 << 20,
		Stderr:     1 << 20,
		Outputs:    8 << 20,
	}}
}

func (j *job) stdout(t testing.TB) string {
	b, err := os.ReadFile(j.task.StdoutPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func run(t testing.TB, p *Pool, j *job, wall time.Duration) *Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o, err := p.Run(ctx, j.task, wall)
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	return o
}

func TestHello(t *testing.T) {
	p := newPool(t, Config{Slots: 1})
	j := newJob(t, example(t, "hello"), "world", "two words")
	o := run(t, p, j, time.Minute)
	if o.Failure != "" || o.ExitCode != 0 {
		t.Fatalf("outcome = %+v, want exit 0", o)
	}
	want := "hello from shoal\narg 1: world\narg 2: two words\n"
	if got := j.stdout(t); got != want {
		t.Fatalf("stdout = %q, want %q", got, want)
	}
	if o.PeakMemory == 0 {
		t.Error("peak memory = 0")
	}
}

// TestCaptureFiles checks that a capture file is made at the program's
// first write to it (hello writes no stderr, so none is made), that a
// stale capture is emptied by a write, and that a capture file that
// cannot be made fails the run with a reason naming it.
func TestCaptureFiles(t *testing.T) {
	p := newPool(t, Config{Slots: 1})
	j := newJob(t, example(t, "hello"))
	if err := os.WriteFile(j.task.StdoutPath, []byte("stale output of an earlier job, longer than hello's\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if o := run(t, p, j, time.Minute); o.Failure != "" || o.ExitCode != 0 {
		t.Fatalf("outcome = %+v, want exit 0", o)
	}
	if got, want := j.stdout(t), "hello from shoal\n"; got != want {
		t.Fatalf("stdout = %q, want %q", got, want)
	}
	if _, err := os.Lstat(j.task.StderrPath); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stderr capture of a program that wrote none: %v, want none made", err)
	}

	j = newJob(t, example(t, "hello"))
	j.task.StdoutPath = filepath.Join(j.scratch, "missing-dir", "stdout")
	o := run(t, p, j, time.Minute)
	if o.Failure != jobs.FailureInternal || !strings.Contains(o.Reason, "missing-dir/stdout") {
		t.Fatalf("outcome = %+v, want an internal failure naming the capture file", o)
	}
}

// TestCaptureInline checks that streams within Task.Inline come back in the
// Outcome with their files emptied, that a longer one is left in its file
// whole (up to the limit), that a run killed at its wall time leaves what
// it printed, and that the outcome says whether /outputs was touched.
func TestCaptureInline(t *testing.T) {
	p := newPool(t, Config{Slots: 1})
	j := newJob(t, example(t, "hello"), "world")
	j.task.Inline = 4 << 10
	o := run(t, p, j, time.Minute)
	if o.Failure != "" || o.ExitCode != 0 {
		t.Fatalf("outcome = %+v, want exit 0", o)
	}
	if want := "hello from shoal\narg 1: world\n"; !o.StdoutInline || string(o.Stdout) != want {
		t.Fatalf("stdout inline %v %q, want %q", o.StdoutInline, o.Stdout, want)
	}
	if !o.StderrInline || len(o.Stderr) != 0 || !o.OutputsUntouched {
		t.Fatalf("outcome = %+v, want empty inline stderr and untouched outputs", o)
	}
	if st, err := os.Stat(j.task.StdoutPath); err != nil || st.Size() != 0 {
		t.Fatalf("stdout file of an inline capture: %v, want it emptied", err)
	}
	if _, err := os.Lstat(j.task.StderrPath); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stderr file of a program that wrote none: %v, want none made", err)
	}

	mis := example(t, "misbehave")
	j = newJob(t, mis, "stdout")
	j.task.Inline, j.task.Stdout = 4<<10, 100<<10
	o = run(t, p, j, time.Minute)
	if o.Failure != jobs.FailureStdout || o.StdoutInline || len(o.Stdout) != 0 {
		t.Fatalf("outcome = %+v, want a stdout failure with the capture in its file", o)
	}
	b, err := os.ReadFile(j.task.StdoutPath)
	if err != nil || len(b) != 100<<10 || !strings.HasPrefix(string(b), "flood flood ") || strings.Count(string(b), "\n") != (100<<10)/601 {
		t.Fatalf("captured stdout: %d bytes, %v; want exactly the limit, in order", len(b), err)
	}

	// A run killed at its wall time keeps what it printed.
	j = newJob(t, mis, "loop")
	j.task.Inline = 4 << 10
	o = run(t, p, j, 600*time.Millisecond)
	if o.Failure != jobs.FailureWallTime || o.StdoutInline {
		t.Fatalf("outcome = %+v, want a wall-time failure with stdout in its file", o)
	}
	if got := j.stdout(t); got != "looping\n" {
		t.Fatalf("stdout of a run stopped at its wall time = %q, want what it printed", got)
	}

	j = newJob(t, mis, "outputs")
	j.task.Inline, j.task.Outputs = 4<<10, 1<<20
	if o = run(t, p, j, time.Minute); o.OutputsUntouched {
		t.Fatalf("outcome = %+v, want outputs touched", o)
	}
	j = newJob(t, mis, "read", "/outputs/none")
	j.task.Inline = 4 << 10
	if o = run(t, p, j, time.Minute); !o.OutputsUntouched || string(o.Stdout) != "/outputs/none: error\n" {
		t.Fatalf("outcome = %+v (stdout %q), want outputs untouched by a read", o, o.Stdout)
	}
}

// TestCompileCache checks that a module is compiled once per worker, and
// that a fresh worker finds it in the disk cache.
func TestCompileCache(t *testing.T) {
	cache := t.TempDir()
	p := newPool(t, Config{Slots: 1, CacheDir: cache})
	mod := example(t, "hello")
	o1 := run(t, p, newJob(t, mod), time.Minute)
	o2 := run(t, p, newJob(t, mod), time.Minute)
	if !o1.Compiled || o2.Compiled {
		t.Fatalf("compiled = %v then %v, want true then false", o1.Compiled, o2.Compiled)
	}
	files := cacheFiles(t, cache)
	if len(files) == 0 {
		t.Fatal("compilation cache dir is empty after a compile")
	}
	p.Close()
	p2 := newPool(t, Config{Slots: 1, CacheDir: cache})
	o3 := run(t, p2, newJob(t, mod), time.Minute)
	if o3.Failure != "" {
		t.Fatalf("outcome = %+v", o3)
	}
	if again := cacheFiles(t, cache); len(again) != len(files) {
		t.Fatalf("cache files %v after fresh worker, want unchanged %v", again, files)
	}
	t.Logf("compile from source %v, from disk cache %v", time.Duration(o1.Compile), time.Duration(o3.Compile))
}

func cacheFiles(t testing.TB, dir string) []string {
	var files []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, path)
		}
		return nil
	})
	return files
}

// TestDeterminism runs the same computations in two pools (as two nodes
// would) and requires the same bytes; another seed gives other bytes.
func TestDeterminism(t *testing.T) {
	p1 := newPool(t, Config{Slots: 1})
	p2 := newPool(t, Config{Slots: 1})
	for _, name := range []string{"clockrand", "pi"} {
		args := []string{}
		if name == "pi" {
			args = []string{"-seed", "7", "-n", "200000"}
		}
		j1, j2 := newJob(t, example(t, name), args...), newJob(t, example(t, name), args...)
		o1, o2 := run(t, p1, j1, time.Minute), run(t, p2, j2, time.Minute)
		if o1.Failure != "" || o2.Failure != "" {
			t.Fatalf("%s: outcomes %+v, %+v", name, o1, o2)
		}
		if a, b := j1.stdout(t), j2.stdout(t); a != b || a == "" {
			t.Fatalf("%s: stdout differs between runs:\n%s\n%s", name, a, b)
		}
	}
	j1, j2 := newJob(t, example(t, "clockrand")), newJob(t, example(t, "clockrand"))
	j2.task.Seed = "seed-2"
	run(t, p1, j1, time.Minute)
	run(t, p1, j2, time.Minute)
	if j1.stdout(t) == j2.stdout(t) {
		t.Fatalf("clockrand printed %q for two different seeds", j1.stdout(t))
	}
	if s := j1.stdout(t); !strings.Contains(s, "elapsed=") || strings.Contains(s, "now=1970") {
		t.Errorf("clockrand = %q", s)
	}
}

func TestLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("runs several limit-breaking programs")
	}
	p := newPool(t, Config{Slots: 1})
	mis := example(t, "misbehave")
	tests := []struct {
		name  string
		args  []string
		set   func(*Task)
		wall  time.Duration
		want  jobs.Failure
		check func(t *testing.T, j *job)
	}{
		{name: "wall time", args: []string{"loop"}, wall: 300 * time.Millisecond, want: jobs.FailureWallTime},
		{name: "memory", args: []string{"membomb"}, set: func(t *Task) { t.Memory = 64 << 20 }, want: jobs.FailureMemory},
		{name: "stdout", args: []string{"stdout"}, set: func(t *Task) { t.Stdout = 100 << 10 }, want: jobs.FailureStdout,
			check: func(t *testing.T, j *job) {
				if st, err := os.Stat(j.task.StdoutPath); err != nil || st.Size() != 100<<10 {
					t.Errorf("captured stdout = %v, %v; want exactly the limit", st.Size(), err)
				}
			}},
		{name: "stderr", args: []string{"stderr"}, set: func(t *Task) { t.Stderr = 10 << 10 }, want: jobs.FailureStderr},
		{name: "outputs", args: []string{"outputs"}, set: func(t *Task) { t.Outputs = 1 << 20 }, want: jobs.FailureOutputs},
		{name: "exit code", args: []string{"exit", "3"}},
		{name: "sleep is virtual", args: []string{"sleep", "1h"}, wall: 20 * time.Second,
			check: func(t *testing.T, j *job) {
				if got := j.stdout(t); got != "slept true\n" {
					t.Errorf("stdout = %q", got)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := newJob(t, mis, tt.args...)
			if tt.set != nil {
				tt.set(j.task)
			}
			wall := tt.wall
			if wall == 0 {
				wall = time.Minute
			}
			o := run(t, p, j, wall)
			if o.Failure != tt.want {
				t.Fatalf("failure = %q (%s), want %q", o.Failure, o.Reason, tt.want)
			}
			if tt.want != "" && (o.ExitCode != -1 || o.Reason == "") {
				t.Errorf("outcome = %+v, want exit -1 and a reason", o)
			}
			if tt.name == "exit code" && o.ExitCode != 3 {
				t.Errorf("exit code = %d, want 3", o.ExitCode)
			}
			if tt.check != nil {
				tt.check(t, j)
			}
			// The node is unharmed: the next job runs.
			h := newJob(t, example(t, "hello"))
			if o := run(t, p, h, time.Minute); o.Failure != "" || o.ExitCode != 0 {
				t.Fatalf("hello after %s: %+v", tt.name, o)
			}
		})
	}
	if st := p.Stats(); st.Killed != 1 {
		t.Errorf("workers killed = %d, want 1 (the wall-time one)", st.Killed)
	}
}

// Hand-assembled modules for the bad-module cases.
var (
	wasmHeader = []byte("\x00asm\x01\x00\x00\x00")
	typeVoid   = []byte{0x01, 0x04, 0x01, 0x60, 0x00, 0x00}
	// imports env.foo: () -> ()
	importEnvFoo = []byte{0x02, 0x0b, 0x01, 0x03, 'e', 'n', 'v', 0x03, 'f', 'o', 'o', 0x00, 0x00}
	funcSec      = []byte{0x03, 0x02, 0x01, 0x00}
	exportStart  = []byte{0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00}
	// _start: unreachable
	codeTrap = []byte{0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b}
	// a 100-page memory, exported as "memory"
	memory100 = []byte{0x05, 0x03, 0x01, 0x00, 0x64}
	exportMem = []byte{0x07, 0x0a, 0x01, 0x06, 'm', 'e', 'm', 'o', 'r', 'y', 0x02, 0x00}
	// a 100-page memory, not exported
)

func module(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func TestBadModules(t *testing.T) {
	p := newPool(t, Config{Slots: 1})
	dir := t.TempDir()
	tests := []struct {
		name string
		code []byte
		mem  uint64
		want jobs.Failure
	}{
		{"not wasm", []byte("#!/bin/sh\necho hi\n"), 0, jobs.FailureInvalidModule},
		{"truncated", wasmHeader[:6], 0, jobs.FailureInvalidModule},
		{"garbage after header", module(wasmHeader, []byte{0xff, 0xff, 0xff}), 0, jobs.FailureInvalidModule},
		{"unknown import", module(wasmHeader, typeVoid, importEnvFoo), 0, jobs.FailureImport},
		{"trap", module(wasmHeader, typeVoid, funcSec, exportStart, codeTrap), 0, jobs.FailureTrap},
		{"initial memory", module(wasmHeader, memory100, exportMem), 1 << 16, jobs.FailureMemory},
		{"initial memory unexported", module(wasmHeader, memory100), 1 << 16, jobs.FailureMemory},
	}
	for i, tt := range tests {
		path := filepath.Join(dir, fmt.Sprintf("m%d.wasm", i))
		if err := os.WriteFile(path, tt.code, 0o600); err != nil {
			t.Fatal(err)
		}
		j := newJob(t, path)
		if tt.mem != 0 {
			j.task.Memory = tt.mem
		}
		o := run(t, p, j, time.Minute)
		if o.Failure != tt.want || o.Reason == "" {
			t.Errorf("%s: outcome = %+v, want failure %q with a reason", tt.name, o, tt.want)
		}
	}
	if st := p.Stats(); st.Killed != 0 {
		t.Errorf("workers killed = %d, want 0: bad modules must not take a worker down", st.Killed)
	}
	missing := newJob(t, filepath.Join(dir, "absent.wasm"))
	if o := run(t, p, missing, time.Minute); o.Failure != jobs.FailureInput {
		t.Errorf("missing module: outcome = %+v, want %q", o, jobs.FailureInput)
	}
}

// TestMounts checks that a program reads its inputs, and nothing outside
// its mounts: not the node's key by any path, not the host's files.
func TestMounts(t *testing.T) {
	p := newPool(t, Config{Slots: 1})
	root := t.TempDir()
	repo := filepath.Join(root, "repo")
	inputs := filepath.Join(root, "scratch", "inputs")
	for _, d := range []string{repo, filepath.Join(inputs, "data")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	key := filepath.Join(repo, "key")
	if err := os.WriteFile(key, []byte("SECRET KEY"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(inputs, "data", "a.txt"), []byte("input bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	paths := []string{"/inputs/data/a.txt", key, "/inputs/../../repo/key", "/inputs/data/../../../repo/key",
		"../repo/key", "/etc/passwd", "/proc/self/environ", "/outputs/../repo/key"}
	j := newJob(t, example(t, "misbehave"), append([]string{"read"}, paths...)...)
	j.task.InputsDir = inputs
	o := run(t, p, j, time.Minute)
	if o.Failure != "" || o.ExitCode != 0 {
		t.Fatalf("outcome = %+v", o)
	}
	out := j.stdout(t)
	if strings.Contains(out, "SECRET") || strings.Contains(out, "root:") {
		t.Fatalf("program read outside its mounts:\n%s", out)
	}
	if !strings.Contains(out, `/inputs/data/a.txt: read 11 bytes: "input bytes"`) {
		t.Fatalf("program could not read its input:\n%s", out)
	}
	if n := strings.Count(out, ": error"); n != len(paths)-1 {
		t.Fatalf("%d reads failed, want %d:\n%s", n, len(paths)-1, out)
	}

	// Inputs are read-only; /outputs takes no links.
	w := newJob(t, example(t, "misbehave"), "symlink", key)
	w.task.InputsDir = inputs
	if o := run(t, p, w, time.Minute); o.Failure != "" {
		t.Fatalf("symlink outcome = %+v", o)
	}
	if got := w.stdout(t); got != "symlink: true\n" {
		t.Fatalf("symlink in /outputs: stdout %q, want refusal", got)
	}
	if _, err := os.Lstat(filepath.Join(w.task.OutputsDir, "link")); err == nil {
		t.Fatal("a link was created in /outputs")
	}
}

// TestWorkerKilled kills a worker mid-job: that job fails, the next runs
// on a fresh worker.
func TestWorkerKilled(t *testing.T) {
	p := newPool(t, Config{Slots: 1})
	before := p.workerPIDs()
	done := make(chan *Outcome, 1)
	go func() {
		o, err := p.Run(context.Background(), newJob(t, example(t, "misbehave"), "loop").task, 10*time.Minute)
		if err != nil {
			t.Error(err)
		}
		done <- o
	}()
	deadline := time.Now().Add(time.Minute)
	for p.Stats().Busy == 0 {
		if time.Now().After(deadline) {
			t.Fatal("job did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(before) != 1 {
		t.Fatalf("pids = %v", before)
	}
	if err := syscall.Kill(before[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var o *Outcome
	select {
	case o = <-done:
	case <-time.After(time.Minute):
		t.Fatal("killed job did not end")
	}
	if o.Failure != jobs.FailureWorker {
		t.Fatalf("outcome = %+v, want %q", o, jobs.FailureWorker)
	}
	h := newJob(t, example(t, "hello"))
	if o := run(t, p, h, time.Minute); o.Failure != "" {
		t.Fatalf("next job: %+v", o)
	}
	if after := p.workerPIDs(); len(after) != 1 || after[0] == before[0] {
		t.Fatalf("workers %v after kill, want one fresh worker (not %d)", after, before[0])
	}
}

func TestCancel(t *testing.T) {
	p := newPool(t, Config{Slots: 1})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for p.Stats().Busy == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	if _, err := p.Run(ctx, newJob(t, example(t, "misbehave"), "loop").task, 10*time.Minute); err == nil {
		t.Fatal("Run after cancel = nil error")
	}
	if o := run(t, p, newJob(t, example(t, "hello")), time.Minute); o.Failure != "" {
		t.Fatalf("next job: %+v", o)
	}
}

func TestConcurrentSlots(t *testing.T) {
	p := newPool(t, Config{Slots: 2})
	mod := example(t, "hello")
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := newJob(t, mod, fmt.Sprint(i))
			o, err := p.Run(context.Background(), j.task, time.Minute)
			if err != nil || o.Failure != "" {
				t.Errorf("job %d: %+v, %v", i, o, err)
				return
			}
			if !strings.Contains(j.stdout(t), fmt.Sprintf("arg 1: %d\n", i)) {
				t.Errorf("job %d stdout = %q", i, j.stdout(t))
			}
		}()
	}
	wg.Wait()
	if st := p.Stats(); st.Runs != 6 || st.Busy != 0 {
		t.Errorf("stats = %+v", st)
	}
}

// TestConfined checks that a confined worker runs jobs in its directories
// and cannot open a file elsewhere, such as a node's key or repo.
func TestConfined(t *testing.T) {
	root := t.TempDir()
	mods, scratch, repo := filepath.Join(root, "modules"), filepath.Join(root, "scratch"), filepath.Join(root, "repo")
	for _, d := range []string{mods, scratch, repo} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	code, err := os.ReadFile(example(t, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	inside, outside := filepath.Join(mods, "hello.wasm"), filepath.Join(repo, "hello.wasm")
	for _, p := range []string{inside, outside} {
		if err := os.WriteFile(p, code, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := newPool(t, Config{Slots: 1, ReadDirs: []string{mods}, WriteDirs: []string{scratch}})
	if !p.Stats().Confined {
		t.Skip("the kernel does not offer Landlock; workers run unconfined")
	}
	jobIn := func(module, cid string) *job {
		s, err := os.MkdirTemp(scratch, "job-")
		if err != nil {
			t.Fatal(err)
		}
		j := newJob(t, module)
		j.task.ModuleCID = cid
		j.task.OutputsDir = filepath.Join(s, "outputs")
		j.task.StdoutPath, j.task.StderrPath = filepath.Join(s, "stdout"), filepath.Join(s, "stderr")
		if err := os.Mkdir(j.task.OutputsDir, 0o700); err != nil {
			t.Fatal(err)
		}
		return j
	}
	j := jobIn(inside, "in")
	if o := run(t, p, j, time.Minute); o.Failure != "" || j.stdout(t) != "hello from shoal\n" {
		t.Fatalf("confined hello: %+v, stdout %q", o, j.stdout(t))
	}
	o := run(t, p, jobIn(outside, "out"), time.Minute)
	if o.Failure != jobs.FailureInput || !strings.Contains(o.Reason, "permission denied") {
		t.Fatalf("reading a module outside the worker's dirs: %+v, want permission denied", o)
	}
}
