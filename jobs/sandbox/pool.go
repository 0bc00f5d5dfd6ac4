package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalnet/shoal/jobs"
)

// ErrClosed is returned by Run after Close.
var ErrClosed = errors.New("sandbox: pool is closed")

// Config configures a Pool. The zero value of every field but Exe and Dir
// selects the default given beside it.
type Config struct {
	// Slots is the number of workers, and so of jobs run at once.
	// Default: runtime.NumCPU().
	Slots int
	// Exe is the binary to start as a worker. Default: os.Executable().
	Exe string
	// Args are the arguments after the program name, for example
	// []string{"sandbox-worker"}. The worker mode itself is selected by
	// WorkerEnv, which the pool sets. Default: none.
	Args []string
	// Dir is the workers' working directory: a scratch directory that
	// holds nothing of the node's. Default: os.TempDir().
	Dir string
	// CacheDir is the on-disk compilation cache shared by the workers
	// (for example REPO/cache/wasm). Default: "" (no disk cache).
	CacheDir string
	// CacheMaxBytes bounds CacheDir: when the pool starts, the oldest
	// compiled modules are deleted until the cache fits. Default:
	// DefaultCacheMaxBytes.
	CacheMaxBytes int64
	// MaxModules is how many compiled modules each worker keeps in
	// memory, least recently used first out. Default: 16.
	MaxModules int
	// AddressSpace is each worker's RLIMIT_AS in bytes. It must leave room
	// for the largest job memory limit plus the runtime (about 1 GiB).
	// Default: DefaultAddressSpace.
	AddressSpace uint64
	// ReadDirs and WriteDirs, when either is set, confine each worker
	// with Landlock (where the kernel has it): it may read files only
	// under ReadDirs and WriteDirs (and CacheDir), write only under
	// WriteDirs and CacheDir, execute nothing and open no TCP connection.
	// Module paths must lie under ReadDirs or WriteDirs, task scratch
	// directories under WriteDirs. Default: unconfined.
	ReadDirs, WriteDirs []string
	// StartTimeout bounds starting a worker and CompileTimeout bounds
	// compiling a module (before the wall time starts).
	// Defaults: 30 s and 2 min.
	StartTimeout, CompileTimeout time.Duration
}

// DefaultAddressSpace is the default worker address-space limit: room for
// the 4 GiB arena of linear memory plus the runtime, or, where there is no
// arena, for a 4 GiB memory on the heap being grown (old and new copies).
const DefaultAddressSpace = 2*jobs.MaxMemory + 2<<30

// Stats counts what a pool has done.
type Stats struct {
	Slots   int   // workers
	Busy    int   // workers running a job now
	Started int64 // workers started, including replacements
	Killed  int64 // workers killed (wall time, cancellation, misbehaviour)
	Runs    int64 // tasks run
	// Confined reports whether the last started worker is confined by
	// Landlock.
	Confined bool
}

// A Pool runs tasks in warm sandbox worker processes, one task per worker
// at a time. Its methods are safe for concurrent use.
type Pool struct {
	cfg    Config
	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	free   chan *worker // idle, healthy workers
	wg     sync.WaitGroup
	once   sync.Once

	confined atomic.Bool
	busy     atomic.Int64
	started  atomic.Int64
	killed   atomic.Int64
	runs     atomic.Int64

	mu     sync.Mutex       // guards live and closed
	live   map[*worker]bool // every running worker process, to kill on Close
	closed bool             // set by Close; no replacement starts after it
}

// NewPool starts cfg.Slots workers and returns when all are ready.
func NewPool(ctx context.Context, cfg Config) (*Pool, error) {
	if cfg.Slots <= 0 {
		cfg.Slots = runtime.NumCPU()
	}
	if cfg.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("sandbox: find own executable for workers: %w", err)
		}
		cfg.Exe = exe
	}
	if cfg.Dir == "" {
		cfg.Dir = os.TempDir()
	}
	if cfg.MaxModules <= 0 {
		cfg.MaxModules = 16
	}
	if cfg.AddressSpace == 0 {
		cfg.AddressSpace = DefaultAddressSpace
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.CompileTimeout <= 0 {
		cfg.CompileTimeout = 2 * time.Minute
	}
	for _, dirs := range []*[]string{&cfg.ReadDirs, &cfg.WriteDirs} {
		abs := make([]string, len(*dirs))
		for i, d := range *dirs {
			a, err := filepath.Abs(d)
			if err != nil {
				return nil, fmt.Errorf("sandbox: confine dir %s: %w", d, err)
			}
			abs[i] = a
		}
		*dirs = abs
	}
	if cfg.CacheMaxBytes <= 0 {
		cfg.CacheMaxBytes = DefaultCacheMaxBytes
	}
	if cfg.CacheDir != "" {
		if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
			return nil, fmt.Errorf("sandbox: create compilation cache dir %s: %w", cfg.CacheDir, err)
		}
		if _, err := PruneCache(cfg.CacheDir, cfg.CacheMaxBytes); err != nil {
			return nil, err
		}
	}
	pctx, cancel := context.WithCancel(context.Background())
	p := &Pool{cfg: cfg, ctx: pctx, cancel: cancel, free: make(chan *worker, cfg.Slots), live: map[*worker]bool{}}
	for i := 0; i < cfg.Slots; i++ {
		w, err := p.startWorker(ctx)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.free <- w
	}
	return p, nil
}

// Close kills every worker and waits for the pool's goroutines. Runs in
// progress fail with ErrClosed or a worker failure.
func (p *Pool) Close() error {
	p.once.Do(func() {
		p.cancel()
		p.mu.Lock()
		p.closed = true
		ws := make([]*worker, 0, len(p.live))
		for w := range p.live {
			ws = append(ws, w)
		}
		p.mu.Unlock()
		for _, w := range ws {
			p.stopWorker(w)
		}
		p.wg.Wait()
	})
	return nil
}

// Stats returns the pool's counters.
func (p *Pool) Stats() Stats {
	return Stats{Slots: p.cfg.Slots, Busy: int(p.busy.Load()), Started: p.started.Load(),
		Killed: p.killed.Load(), Runs: p.runs.Load(), Confined: p.confined.Load()}
}

// Run waits for a free worker and runs t on it. The wall time counts from
// the moment the program starts (after compiling); a program still running
// then is killed with its worker, and a fresh worker takes the slot. Every
// way a program can end — exit, trap, limit, worker crash — is an Outcome;
// Run returns an error only when t is invalid, ctx ends (the program, if
// started, is killed) or the pool is closed.
func (p *Pool) Run(ctx context.Context, t *Task, wall time.Duration) (*Outcome, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if wall <= 0 {
		return nil, fmt.Errorf("sandbox: wall time %v must be positive", wall)
	}
	var w *worker
	select {
	case w = <-p.free:
	case <-ctx.Done():
		return nil, fmt.Errorf("sandbox: waiting for a free slot: %w", ctx.Err())
	case <-p.ctx.Done():
		return nil, ErrClosed
	}
	p.busy.Add(1)
	defer p.busy.Add(-1)
	p.runs.Add(1)
	o, err := p.runOn(ctx, w, t, wall)
	if w.broken {
		p.stopWorker(w)
		p.killed.Add(1)
		p.mu.Lock()
		if !p.closed {
			p.wg.Add(1)
			go p.replace()
		}
		p.mu.Unlock()
	} else {
		p.free <- w
	}
	return o, err
}

// runOn runs t on w; it sets w.broken when w must not be reused.
func (p *Pool) runOn(ctx context.Context, w *worker, t *Task, wall time.Duration) (*Outcome, error) {
	if err := writeMessage(w.stdin, &message{Type: msgRun, Run: t}); err != nil {
		w.broken = true
		return failed(jobs.FailureWorker, "sandbox worker did not take the task: %v%s", err, w.tail()), nil
	}
	msgs := make(chan msgOrErr, 2)
	go func() {
		for range 2 {
			m, err := readMessage(w.stdout)
			msgs <- msgOrErr{m, err}
			if err != nil || m.Type == msgDone {
				return
			}
		}
	}()
	timer := time.NewTimer(p.cfg.CompileTimeout)
	defer timer.Stop()
	runStarted := false
	for {
		select {
		case r := <-msgs:
			if r.err != nil {
				w.broken = true
				return failed(jobs.FailureWorker, "sandbox worker died: %v%s", w.exitStatus(), w.tail()), nil
			}
			switch {
			case r.m.Type == msgStarted && !runStarted:
				runStarted = true
				timer.Reset(wall)
			case r.m.Type == msgDone:
				if o := r.m.Done; uint64(len(o.Stdout)) > t.Inline || uint64(len(o.Stderr)) > t.Inline {
					w.broken = true
					return failed(jobs.FailureWorker, "sandbox worker returned %d and %d bytes of stdout and stderr, more than the %d asked for", len(o.Stdout), len(o.Stderr), t.Inline), nil
				}
				return r.m.Done, nil
			default:
				w.broken = true
				return failed(jobs.FailureWorker, "sandbox worker sent an unexpected %q message", r.m.Type), nil
			}
		case <-timer.C:
			w.broken = true
			if !runStarted {
				return failed(jobs.FailureInvalidModule, "module did not compile within %v", p.cfg.CompileTimeout), nil
			}
			o := failed(jobs.FailureWallTime, "program ran past its wall-time limit of %v and was stopped", wall)
			o.Run = wall.Nanoseconds()
			return o, nil
		case <-ctx.Done():
			w.broken = true
			return nil, fmt.Errorf("sandbox: run stopped: %w", ctx.Err())
		case <-p.ctx.Done():
			w.broken = true
			return nil, ErrClosed
		}
	}
}

type msgOrErr struct {
	m   *message
	err error
}

// replace starts a worker for a slot whose worker was stopped, retrying
// with backoff until it succeeds or the pool closes.
func (p *Pool) replace() {
	defer p.wg.Done()
	backoff := 100 * time.Millisecond
	for {
		w, err := p.startWorker(p.ctx)
		if err == nil {
			if p.ctx.Err() != nil {
				p.stopWorker(w)
				return
			}
			p.free <- w
			return
		}
		select {
		case <-p.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// A worker is one sandbox worker process.
type worker struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	waited chan struct{} // closed when cmd.Wait returned
	err    error         // cmd.Wait's result, set before waited closes
	broken bool          // must not be reused; only the goroutine running it touches this

	mu     sync.Mutex // guards stderr
	stderr []byte     // the last stderrTail bytes of its stderr
}

const stderrTail = 2048

func (w *worker) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stderr = append(w.stderr, b...)
	if len(w.stderr) > stderrTail {
		w.stderr = append([]byte(nil), w.stderr[len(w.stderr)-stderrTail:]...)
	}
	return len(b), nil
}

// tail returns the end of w's stderr for an error message.
func (w *worker) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.stderr) == 0 {
		return ""
	}
	return "; worker stderr: " + string(w.stderr)
}

// exitStatus waits briefly for w to exit and describes how it did.
func (w *worker) exitStatus() string {
	select {
	case <-w.waited:
		if w.err == nil {
			return "exit status 0"
		}
		return w.err.Error()
	case <-time.After(2 * time.Second):
		return "pipe closed"
	}
}

// startWorker starts a worker process and waits for its ready message.
func (p *Pool) startWorker(ctx context.Context) (*worker, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sandbox: start worker: %w", err)
	}
	cmd := exec.Command(p.cfg.Exe, p.cfg.Args...)
	cmd.Env = []string{WorkerEnv + "=1"}
	cmd.Dir = p.cfg.Dir
	cmd.SysProcAttr = workerProcAttr()
	w := &worker{cmd: cmd, waited: make(chan struct{})}
	cmd.Stderr = w
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("sandbox: worker stdin pipe: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("sandbox: worker stdout pipe: %w", err)
	}
	w.stdin, w.stdout = stdin, bufio.NewReader(stdout)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("sandbox: start worker %s: %w", p.cfg.Exe, err)
	}
	p.started.Add(1)
	p.mu.Lock()
	p.live[w] = true
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		w.err = cmd.Wait()
		close(w.waited)
	}()

	h := &hello{CacheDir: p.cfg.CacheDir, MaxModules: p.cfg.MaxModules, AddressSpace: p.cfg.AddressSpace,
		ReadDirs: p.cfg.ReadDirs, WriteDirs: p.cfg.WriteDirs}
	if len(h.ReadDirs)+len(h.WriteDirs) > 0 && h.CacheDir != "" {
		h.WriteDirs = append(append([]string(nil), h.WriteDirs...), h.CacheDir)
	}
	res := make(chan msgOrErr, 1)
	go func() {
		if err := writeMessage(w.stdin, &message{Type: msgHello, Hello: h}); err != nil {
			res <- msgOrErr{err: err}
			return
		}
		m, err := readMessage(w.stdout)
		res <- msgOrErr{m, err}
	}()
	timer := time.NewTimer(p.cfg.StartTimeout)
	defer timer.Stop()
	var r msgOrErr
	select {
	case r = <-res:
	case <-timer.C:
		r.err = fmt.Errorf("no answer within %v", p.cfg.StartTimeout)
	case <-ctx.Done():
		r.err = ctx.Err()
	}
	if r.err == nil && r.m.Type != msgReady {
		r.err = fmt.Errorf("answered hello with %q", r.m.Type)
	}
	if r.err != nil {
		p.stopWorker(w)
		return nil, fmt.Errorf("sandbox: worker %s did not start: %w%s", p.cfg.Exe, r.err, w.tail())
	}
	p.confined.Store(r.m.Ready.Confined)
	return w, nil
}

// stopWorker kills w and waits for it to exit.
func (p *Pool) stopWorker(w *worker) {
	killWorker(w.cmd)
	w.stdin.Close()
	<-w.waited
	p.mu.Lock()
	delete(p.live, w)
	p.mu.Unlock()
}
