// Package local implements the pipeline that runs one job on this node:
// it fetches the module and inputs through jobs.Blocks, exports them into
// a scratch directory, runs the program in the sandbox pool, imports
// stdout, stderr and /outputs as UnixFS, and returns the result signed by
// this node. Runner implements jobs.Executor.
package local

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoalnet/shoal/crypto"
	"github.com/shoalnet/shoal/internal/fsprune"
	"github.com/shoalnet/shoal/jobs"
	"github.com/shoalnet/shoal/jobs/sandbox"
)

// Sandbox runs one task; *sandbox.Pool implements it.
type Sandbox interface {
	Run(ctx context.Context, t *sandbox.Task, wall time.Duration) (*sandbox.Outcome, error)
}

var _ Sandbox = (*sandbox.Pool)(nil)

// Config configures a Runner. Every field is required.
type Config struct {
	Sandbox Sandbox
	Blocks  jobs.Blocks
	Key     crypto.PrivKey // signs results
	// Dir is the runner's working directory (for example REPO/jobs): it
	// keeps exported modules under modules/ and per-job scratch
	// directories under scratch/.
	Dir string
	// FetchTimeout bounds fetching a job's module and inputs.
	// Default: 5 minutes.
	FetchTimeout time.Duration
	// ModulesMaxBytes bounds the exported modules kept under modules/: when
	// a new one takes them past it, the least recently used are deleted
	// (never one used in the last moduleGrace). Default: 1 GiB.
	ModulesMaxBytes int64
}

// DefaultModulesMaxBytes is the default of Config.ModulesMaxBytes.
const DefaultModulesMaxBytes = 1 << 30

// moduleGrace is how long after its last use an exported module is
// never deleted, so that a job about to run it finds it.
const moduleGrace = 10 * time.Minute

// maxTouched bounds the modules whose last touch a Runner remembers.
const maxTouched = 4096

// A Runner runs jobs on this node. It is safe for concurrent use; the
// sandbox pool bounds how many run at once.
type Runner struct {
	cfg     Config
	self    peer.ID
	modules string
	scratch string

	mu      sync.Mutex
	touched map[string]time.Time // module file → when its mtime was last set; guarded by mu
	idle    []string             // clean scratch dirs ready for the next job; guarded by mu
	// emptyOutputs is the CID of an empty outputs directory, learned
	// from the first one imported; guarded by mu.
	emptyOutputs cid.Cid
}

// captureInline is how many bytes of a job's stdout, and of its stderr,
// the sandbox hands back in memory (sandbox.Task.Inline); only a longer
// stream goes through a file in the scratch directory.
const captureInline = 64 << 10

// maxIdleScratch bounds the clean scratch directories a Runner keeps for
// reuse (one per job that ran at once, in practice the node's slots).
const maxIdleScratch = 64

var _ jobs.Executor = (*Runner)(nil)

// Layout returns the directories a Runner with Config.Dir dir uses: the
// exported modules (which sandbox workers must be able to read) and the
// per-job scratch directories (which they must be able to write). It
// creates them. A node confines its sandbox workers to these.
func Layout(dir string) (modules, scratch string, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", fmt.Errorf("local: job dir %s: %w", dir, err)
	}
	modules, scratch = filepath.Join(abs, "modules"), filepath.Join(abs, "scratch")
	for _, d := range []string{modules, scratch} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return "", "", fmt.Errorf("local: create %s: %w", d, err)
		}
	}
	return modules, scratch, nil
}

// New returns a Runner and creates its directories (see Layout).
func New(cfg Config) (*Runner, error) {
	if cfg.Sandbox == nil || cfg.Blocks == nil || cfg.Key == nil || cfg.Dir == "" {
		return nil, errors.New("local: Config needs Sandbox, Blocks, Key and Dir")
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = 5 * time.Minute
	}
	if cfg.ModulesMaxBytes <= 0 {
		cfg.ModulesMaxBytes = DefaultModulesMaxBytes
	}
	self, err := crypto.PeerID(cfg.Key)
	if err != nil {
		return nil, err
	}
	modules, scratch, err := Layout(cfg.Dir)
	if err != nil {
		return nil, err
	}
	r := &Runner{cfg: cfg, self: self, modules: modules, scratch: scratch, touched: make(map[string]time.Time)}
	// Scratch dirs left by a crash hold nothing worth keeping, nor do
	// half-exported modules.
	if des, err := os.ReadDir(r.scratch); err == nil {
		for _, de := range des {
			os.RemoveAll(filepath.Join(r.scratch, de.Name()))
		}
	}
	if des, err := os.ReadDir(r.modules); err == nil {
		for _, de := range des {
			if strings.HasSuffix(de.Name(), ".tmp") {
				os.RemoveAll(filepath.Join(r.modules, de.Name()))
			}
		}
	}
	return r, nil
}

// Execute runs spec on this node; see jobs.Executor.
func (r *Runner) Execute(ctx context.Context, spec *jobs.SignedSpec, progress func(jobs.State)) (*jobs.SignedResult, error) {
	if progress == nil {
		progress = func(jobs.State) {}
	}
	env := spec.Envelope
	comp := &env.Computation
	scratch, err := r.takeScratch()
	if err != nil {
		return nil, err
	}
	var outcome *sandbox.Outcome
	defer func() {
		// A run that wrote no file and left outputs/ alone leaves the
		// scratch dir as it was handed out.
		untouched := outcome != nil && outcome.StdoutInline && outcome.StderrInline && outcome.OutputsUntouched
		r.returnScratch(scratch, len(comp.Inputs) == 0, untouched)
	}()
	task := &sandbox.Task{
		ModuleCID:  comp.Module.String(),
		Seed:       spec.CompCID.String(),
		Args:       comp.Args,
		OutputsDir: filepath.Join(scratch, "outputs"),
		StdoutPath: filepath.Join(scratch, "stdout"),
		StderrPath: filepath.Join(scratch, "stderr"),
		Inline:     captureInline,
		Memory:     env.Limits.Memory,
		Stdout:     env.Limits.Stdout,
		Stderr:     env.Limits.Stderr,
		Outputs:    env.Limits.Outputs,
	}
	for _, k := range slices.Sorted(maps.Keys(comp.Env)) {
		task.Env = append(task.Env, k+"="+comp.Env[k])
	}

	progress(jobs.StateFetching)
	if o := r.fetch(ctx, spec, scratch, task); o != nil {
		outcome = o
	} else {
		progress(jobs.StateRunning)
		outcome, err = r.cfg.Sandbox.Run(ctx, task, env.Limits.WallTime)
		if err != nil {
			return nil, fmt.Errorf("local: run job %s: %w", spec.ID, err)
		}
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("local: job %s: %w", spec.ID, ctx.Err())
	}

	progress(jobs.StateUploading)
	res := &jobs.Result{
		Version:     jobs.FormatVersion,
		Job:         spec.ID,
		Computation: spec.CompCID,
		Worker:      r.self,
		ExitCode:    outcome.ExitCode,
		Failure:     outcome.Failure,
		Reason:      outcome.Reason,
		WallTime:    time.Duration(outcome.Run).Truncate(time.Microsecond),
		PeakMemory:  outcome.PeakMemory,
	}
	if res.Stdout, err = r.storeCapture(ctx, task.StdoutPath, outcome.Stdout, outcome.StdoutInline); err != nil {
		return nil, err
	}
	if res.Stderr, err = r.storeCapture(ctx, task.StderrPath, outcome.Stderr, outcome.StderrInline); err != nil {
		return nil, err
	}
	if res.Outputs, err = r.storeOutputs(ctx, task.OutputsDir, outcome.OutputsUntouched); err != nil {
		return nil, err
	}
	signed, err := jobs.SignResult(r.cfg.Key, res)
	if err != nil {
		return nil, fmt.Errorf("local: sign result of job %s: %w", spec.ID, err)
	}
	return signed, nil
}

// takeScratch returns a scratch directory for a job: an empty outputs/
// directory and nothing else (empty stdout and stderr files at most). A
// directory a finished job left clean is reused, since creating and
// removing directories and files is a good part of a short job's cost;
// otherwise a fresh one is made.
func (r *Runner) takeScratch() (string, error) {
	r.mu.Lock()
	if n := len(r.idle); n > 0 {
		dir := r.idle[n-1]
		r.idle = r.idle[:n-1]
		r.mu.Unlock()
		return dir, nil
	}
	r.mu.Unlock()
	var rnd [8]byte
	if _, err := crand.Read(rnd[:]); err != nil {
		return "", fmt.Errorf("local: random scratch name: %w", err)
	}
	dir := filepath.Join(r.scratch, "job-"+hex.EncodeToString(rnd[:]))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("local: create scratch dir: %w", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "outputs"), 0o700); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("local: create outputs dir: %w", err)
	}
	return dir, nil
}

// returnScratch takes back a job's scratch directory. It is kept for the
// next job only if reusable is set and it is back to what takeScratch
// hands out: outputs/ empty, stdout and stderr emptied, nothing else;
// anything else is removed whole. untouched says the sandbox changed
// nothing in it, so it is not looked at.
func (r *Runner) returnScratch(dir string, reusable, untouched bool) {
	if reusable && (untouched || cleanScratch(dir)) {
		r.mu.Lock()
		kept := len(r.idle) < maxIdleScratch
		if kept {
			r.idle = append(r.idle, dir)
		}
		r.mu.Unlock()
		if kept {
			return
		}
	}
	os.RemoveAll(dir)
}

// cleanScratch empties the capture files of scratch dir and reports
// whether the dir holds nothing else but an empty outputs/.
func cleanScratch(dir string) bool {
	des, err := os.ReadDir(dir)
	if err != nil || len(des) > 3 {
		return false
	}
	for _, de := range des {
		switch name := de.Name(); {
		case name == "outputs" && de.IsDir():
			f, err := os.Open(filepath.Join(dir, name))
			if err != nil {
				return false
			}
			names, err := f.Readdirnames(1)
			f.Close()
			if len(names) != 0 || !errors.Is(err, io.EOF) {
				return false
			}
		case (name == "stdout" || name == "stderr") && de.Type().IsRegular():
			// Emptied, not removed: a job that writes nothing there
			// leaves it empty, as it must be. Most are empty already.
			if fi, err := de.Info(); err != nil {
				return false
			} else if fi.Size() == 0 {
				continue
			}
			if err := os.Truncate(filepath.Join(dir, name), 0); err != nil {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// fetch makes the module and inputs local, exports them and fills in the
// task's paths. A failure is returned as an outcome: the job fails, the
// node does not.
func (r *Runner) fetch(ctx context.Context, spec *jobs.SignedSpec, scratch string, task *sandbox.Task) *sandbox.Outcome {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.FetchTimeout)
	defer cancel()
	comp := &spec.Envelope.Computation
	mod, err := r.module(ctx, comp.Module)
	if err != nil {
		return inputFailure("module %s: %v", comp.Module, err)
	}
	task.ModulePath = mod
	if len(comp.Inputs) == 0 {
		return nil
	}
	task.InputsDir = filepath.Join(scratch, "inputs")
	if err := os.Mkdir(task.InputsDir, 0o700); err != nil {
		return inputFailure("create inputs dir: %v", err)
	}
	for _, name := range slices.Sorted(maps.Keys(comp.Inputs)) {
		c := comp.Inputs[name]
		if err := r.cfg.Blocks.Fetch(ctx, c); err != nil {
			return inputFailure("input %s (%s) cannot be fetched: %v", name, c, err)
		}
		dst := filepath.Join(task.InputsDir, name)
		if err := r.cfg.Blocks.ExportPath(ctx, c, dst); err != nil {
			return inputFailure("input %s (%s) cannot be exported: %v", name, c, err)
		}
		if err := plainTree(dst); err != nil {
			return inputFailure("input %s (%s): %v", name, c, err)
		}
	}
	return nil
}

func inputFailure(format string, args ...any) *sandbox.Outcome {
	return &sandbox.Outcome{ExitCode: -1, Failure: jobs.FailureInput, Reason: truncate(fmt.Sprintf(format, args...))}
}

// module returns the path of the exported module c, exporting it once.
func (r *Runner) module(ctx context.Context, c cid.Cid) (string, error) {
	path := filepath.Join(r.modules, c.String()+".wasm")
	if st, err := os.Lstat(path); err == nil && st.Mode().IsRegular() {
		r.touch(path)
		return path, nil
	}
	if err := r.cfg.Blocks.Fetch(ctx, c); err != nil {
		return "", fmt.Errorf("cannot be fetched: %w", err)
	}
	tmp := fmt.Sprintf("%s.%d.tmp", path, time.Now().UnixNano())
	if err := r.cfg.Blocks.ExportPath(ctx, c, tmp); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("cannot be exported: %w", err)
	}
	if st, err := os.Lstat(tmp); err != nil || !st.Mode().IsRegular() {
		os.RemoveAll(tmp)
		return "", errors.New("is not a file")
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("cannot be stored: %w", err)
	}
	r.touch(path)
	r.pruneModules(path)
	return path, nil
}

// touch records a use of module file path in its mtime, at most once a
// minute, so that pruneModules keeps the modules in use.
func (r *Runner) touch(path string) {
	now := time.Now()
	r.mu.Lock()
	last := r.touched[path]
	if now.Sub(last) >= time.Minute {
		if len(r.touched) >= maxTouched {
			clear(r.touched) // at worst a few more Chtimes calls
		}
		r.touched[path] = now
	}
	r.mu.Unlock()
	if now.Sub(last) >= time.Minute {
		os.Chtimes(path, now, now)
	}
}

// pruneModules deletes the least recently used exported modules while
// they take more than Config.ModulesMaxBytes, sparing keep and any used
// in the last moduleGrace. It returns the bytes freed.
func (r *Runner) pruneModules(keep string) int64 {
	freed, _ := fsprune.ToSize(r.modules, r.cfg.ModulesMaxBytes, fsprune.Options{
		Include: func(path string) bool { return strings.HasSuffix(path, ".wasm") },
		Spare: func(path string, mtime time.Time) bool {
			return path == keep || time.Since(mtime) < moduleGrace
		},
	})
	return freed
}

// plainTree checks that path holds only regular files and directories, so
// that no link in an input can point the program at a host file.
func plainTree(path string) error {
	return filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() && !d.IsDir() {
			rel, _ := filepath.Rel(path, p)
			return fmt.Errorf("%s is a link or special file; inputs may hold only files and directories", rel)
		}
		return nil
	})
}

// storeOutputs imports the outputs directory. An untouched one is still
// the empty directory takeScratch made, whose CID is known after the
// first import, as long as its block is still held.
func (r *Runner) storeOutputs(ctx context.Context, dir string, untouched bool) (cid.Cid, error) {
	if untouched {
		r.mu.Lock()
		c := r.emptyOutputs
		r.mu.Unlock()
		if c.Defined() {
			if ok, err := r.cfg.Blocks.Has(ctx, c); err == nil && ok {
				return c, nil
			}
		}
	}
	if err := plainTree(dir); err != nil {
		return cid.Undef, fmt.Errorf("local: outputs: %w", err)
	}
	c, _, err := r.cfg.Blocks.AddPath(ctx, dir)
	if err != nil {
		return cid.Undef, fmt.Errorf("local: store %s: %w", filepath.Base(dir), err)
	}
	if untouched {
		// Learned once, from a directory seen to be empty.
		if des, err := os.ReadDir(dir); err == nil && len(des) == 0 {
			r.mu.Lock()
			r.emptyOutputs = c
			r.mu.Unlock()
		}
	}
	return c, nil
}

// storeCapture imports a captured stream: the bytes the sandbox handed
// back when inline, else the capture file at path, which the sandbox
// wrote (the program never sees it), read from one open descriptor. A
// missing file is an empty capture: the sandbox creates the file only
// when the stream outgrows what it keeps in memory.
func (r *Runner) storeCapture(ctx context.Context, path string, data []byte, inline bool) (cid.Cid, error) {
	var in io.Reader = bytes.NewReader(data)
	if !inline {
		f, err := os.Open(path)
		switch {
		case err == nil:
			defer f.Close()
			in = f
		case errors.Is(err, fs.ErrNotExist):
			in = bytes.NewReader(nil)
		default:
			return cid.Undef, fmt.Errorf("local: open %s: %w", filepath.Base(path), err)
		}
	}
	c, _, err := r.cfg.Blocks.AddReader(ctx, in)
	if err != nil {
		return cid.Undef, fmt.Errorf("local: store %s: %w", filepath.Base(path), err)
	}
	return c, nil
}

func truncate(s string) string {
	if len(s) <= jobs.MaxReasonSize {
		return s
	}
	s = s[:jobs.MaxReasonSize]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
