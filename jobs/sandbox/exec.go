package sandbox

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
	"golang.org/x/sys/unix"

	"github.com/shoalnet/shoal/jobs"
)

// maxModuleSize bounds a module file the worker reads.
const maxModuleSize = 256 << 20

// executor runs tasks in one wazero runtime. It is used by one goroutine.
type executor struct {
	rt        wazero.Runtime
	cache     wazero.CompilationCache // nil without a cache dir
	wasiFuncs map[string]bool         // functions the WASI host module exports
	modules   *moduleLRU
	arena     *arena // backs each run's linear memory; nil where unsupported
}

func newExecutor(ctx context.Context, h *hello) (*executor, error) {
	cfg := wazero.NewRuntimeConfigCompiler()
	var cache wazero.CompilationCache
	if h.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(h.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("sandbox: open compilation cache %s: %w", h.CacheDir, err)
		}
		cache = c
		cfg = cfg.WithCompilationCache(c)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	wasi, err := wasi_snapshot_preview1.NewBuilder(rt).Compile(ctx)
	if err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("sandbox: compile WASI host module: %w", err)
	}
	funcs := map[string]bool{}
	for name := range wasi.ExportedFunctions() {
		funcs[name] = true
	}
	if _, err := rt.InstantiateModule(ctx, wasi, wazero.NewModuleConfig()); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("sandbox: instantiate WASI host module: %w", err)
	}
	return &executor{rt: rt, cache: cache, wasiFuncs: funcs, modules: newModuleLRU(h.MaxModules), arena: newArena()}, nil
}

func (e *executor) close(ctx context.Context) {
	e.modules.clear(ctx)
	e.rt.Close(ctx)
	e.arena.close()
	if e.cache != nil {
		e.cache.Close(ctx)
	}
}

// failed returns an outcome for a run that ended by failure f.
func failed(f jobs.Failure, format string, args ...any) *Outcome {
	reason := fmt.Sprintf(format, args...)
	if len(reason) > jobs.MaxReasonSize {
		reason = reason[:jobs.MaxReasonSize]
		for !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	return &Outcome{ExitCode: -1, Failure: f, Reason: reason}
}

// A compiledModule is a module ready to instantiate: compiled without its
// data section where splitData could take it out, with the image that
// replaces it.
type compiledModule struct {
	mod  wazero.CompiledModule
	data *dataImage // nil: the module kept its data section
}

// module returns the compiled module of t, from memory or by compiling it
// (wazero consults the disk cache first). A module that is not WebAssembly,
// does not compile or imports what the sandbox lacks yields an outcome.
func (e *executor) module(ctx context.Context, t *Task) (*compiledModule, bool, *Outcome) {
	if m := e.modules.get(t.ModuleCID); m != nil {
		return m, false, nil
	}
	f, err := os.Open(t.ModulePath)
	if err != nil {
		return nil, false, failed(jobs.FailureInput, "module %s cannot be read: %v", t.ModuleCID, err)
	}
	code, err := io.ReadAll(io.LimitReader(f, maxModuleSize+1))
	f.Close()
	if err != nil {
		return nil, false, failed(jobs.FailureInput, "module %s cannot be read: %v", t.ModuleCID, err)
	}
	if len(code) > maxModuleSize {
		return nil, false, failed(jobs.FailureInvalidModule, "module %s is larger than %d bytes", t.ModuleCID, maxModuleSize)
	}
	if !bytes.HasPrefix(code, []byte("\x00asm")) {
		return nil, false, failed(jobs.FailureInvalidModule, "module %s is not a WebAssembly module (no \\0asm header); build it with GOOS=wasip1 GOARCH=wasm", t.ModuleCID)
	}
	cm := &compiledModule{}
	if stripped, img, ok := splitData(code); ok {
		if m, err := e.rt.CompileModule(ctx, stripped); err == nil {
			cm.mod, cm.data = m, img
		}
	}
	if cm.mod == nil {
		// Not split, or the stripped module failed: compile the module
		// as it is, so that any error is reported on what was sent.
		m, err := e.rt.CompileModule(ctx, code)
		if err != nil {
			return nil, false, failed(jobs.FailureInvalidModule, "module %s does not compile: %v", t.ModuleCID, err)
		}
		cm.mod = m
	}
	if o := e.checkImports(cm.mod); o != nil {
		cm.mod.Close(ctx)
		return nil, false, o
	}
	e.modules.add(ctx, t.ModuleCID, cm)
	return cm, true, nil
}

// checkImports fails a module that imports anything but WASI preview 1
// functions.
func (e *executor) checkImports(m wazero.CompiledModule) *Outcome {
	for _, d := range m.ImportedFunctions() {
		mod, name, _ := d.Import()
		if mod != wasi_snapshot_preview1.ModuleName || !e.wasiFuncs[name] {
			return failed(jobs.FailureImport, "module imports function %s.%s, which the sandbox does not offer (only %s)", mod, name, wasi_snapshot_preview1.ModuleName)
		}
	}
	for _, d := range m.ImportedMemories() {
		mod, name, _ := d.Import()
		return failed(jobs.FailureImport, "module imports memory %s.%s, which the sandbox does not offer", mod, name)
	}
	return nil
}

// run runs t to its end. started is called once the module is ready and
// the program is about to start.
func (e *executor) run(ctx context.Context, t *Task, started func(compiled bool) error) *Outcome {
	t0 := time.Now()
	compiled, didCompile, o := e.module(ctx, t)
	if o != nil {
		o.Compiled = didCompile
		return o
	}
	compileTime := time.Since(t0)
	for _, d := range compiled.mod.ExportedMemories() {
		if need := uint64(d.Min()) * 65536; need > t.Memory {
			return failed(jobs.FailureMemory, "module needs %d bytes of memory at start, more than the limit of %d", need, t.Memory)
		}
	}

	stdout := &cappedFile{path: t.StdoutPath, inline: t.Inline, left: t.Stdout, what: jobs.FailureStdout}
	defer stdout.close()
	stderr := &cappedFile{path: t.StderrPath, inline: t.Inline, left: t.Stderr, what: jobs.FailureStderr}
	defer stderr.close()

	outputs := &budgetFS{FS: sysfs.DirFS(t.OutputsDir), left: int64(t.Outputs)}
	fsc := wazero.NewFSConfig().(sysfs.FSConfig).WithSysFSMount(outputs, "/outputs")
	if t.InputsDir != "" {
		fsc = fsc.(sysfs.FSConfig).WithSysFSMount(&sysfs.ReadFS{FS: sysfs.DirFS(t.InputsDir)}, "/inputs")
	}
	clock := newClock(t.Seed)
	mc := wazero.NewModuleConfig().
		WithName("").
		WithArgs(append([]string{"job"}, t.Args...)...).
		WithStdin(bytes.NewReader(nil)).
		WithStdout(stdout).
		WithStderr(stderr).
		WithFSConfig(fsc).
		WithWalltime(clock.walltime, 1).
		WithNanotime(clock.nanotime, 1).
		WithNanosleep(clock.sleep).
		WithOsyield(func() {}).
		WithRandSource(clock.random)
	for _, kv := range t.Env {
		k, v, _ := strings.Cut(kv, "=")
		mc = mc.WithEnv(k, v)
	}
	mem := &memoryLimit{limit: t.Memory, arena: e.arena, data: compiled.data}
	rctx := experimental.WithMemoryAllocator(ctx, mem)

	if err := started(didCompile); err != nil {
		return failed(jobs.FailureWorker, "%v", err)
	}
	t1 := time.Now()
	err := instantiate(rctx, e.rt, compiled.mod, mc)
	runTime := time.Since(t1)
	mem.release()
	out := &Outcome{ExitCode: 0}
	var exit *sys.ExitError
	switch {
	case stdout.err != nil || stderr.err != nil:
		out = failed(jobs.FailureInternal, "%v", errors.Join(stdout.err, stderr.err))
	case stdout.exceeded:
		out = failed(jobs.FailureStdout, "program wrote more than its stdout limit of %d bytes", t.Stdout)
	case stderr.exceeded:
		out = failed(jobs.FailureStderr, "program wrote more than its stderr limit of %d bytes", t.Stderr)
	case outputs.exceeded.Load():
		out = failed(jobs.FailureOutputs, "program wrote more than its outputs limit of %d bytes under /outputs", t.Outputs)
	case mem.exceeded:
		out = failed(jobs.FailureMemory, "program asked for %d bytes of memory, more than its limit of %d", mem.asked, t.Memory)
	case err == nil:
	case errors.As(err, &exit):
		out.ExitCode = int64(exit.ExitCode())
	default:
		msg, _, _ := strings.Cut(err.Error(), "\n")
		out = failed(jobs.FailureTrap, "program trapped: %s", msg)
	}
	out.PeakMemory = mem.peak
	out.Compiled = didCompile
	out.Compile = compileTime.Nanoseconds()
	out.Run = runTime.Nanoseconds()
	out.Written = uint64(int64(t.Outputs) - outputs.left)
	out.Stdout, out.StdoutInline = stdout.end()
	out.Stderr, out.StderrInline = stderr.end()
	out.OutputsUntouched = !outputs.touched.Load()
	if mem.peak > 64<<20 && e.arena == nil {
		debug.FreeOSMemory()
	}
	return out
}

// instantiate runs the module to its end. A panic from a host-side limit
// (or from wazero itself) becomes an error, so a program can never take
// the worker down with it.
func instantiate(ctx context.Context, rt wazero.Runtime, m wazero.CompiledModule, mc wazero.ModuleConfig) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("sandbox: run panicked: %v", r)
		}
	}()
	mod, err := rt.InstantiateModule(ctx, m, mc)
	if mod != nil {
		mod.Close(ctx)
	}
	return err
}

// moduleLRU keeps the most recently used compiled modules.
type moduleLRU struct {
	max   int
	order *list.List // of *lruEntry, most recent first
	byCID map[string]*list.Element
}

type lruEntry struct {
	cid string
	mod *compiledModule
}

func newModuleLRU(max int) *moduleLRU {
	return &moduleLRU{max: max, order: list.New(), byCID: map[string]*list.Element{}}
}

func (l *moduleLRU) get(cid string) *compiledModule {
	el, ok := l.byCID[cid]
	if !ok {
		return nil
	}
	l.order.MoveToFront(el)
	return el.Value.(*lruEntry).mod
}

func (l *moduleLRU) add(ctx context.Context, cid string, m *compiledModule) {
	l.byCID[cid] = l.order.PushFront(&lruEntry{cid: cid, mod: m})
	for l.order.Len() > l.max {
		el := l.order.Back()
		e := el.Value.(*lruEntry)
		l.order.Remove(el)
		delete(l.byCID, e.cid)
		e.mod.mod.Close(ctx)
	}
}

func (l *moduleLRU) clear(ctx context.Context) {
	for el := l.order.Front(); el != nil; el = el.Next() {
		el.Value.(*lruEntry).mod.mod.Close(ctx)
	}
	l.order.Init()
	clear(l.byCID)
}

// limitExceeded is the panic value host-side writers use to stop a program
// at once when it passes a limit; wazero turns it into an error.
type limitExceeded struct{ what jobs.Failure }

func (l limitExceeded) Error() string { return "sandbox: limit exceeded: " + string(l.what) }

// cappedFile captures one output stream in the file at path, and stops
// the program when it writes more than left bytes. The file is created (or
// emptied) at the first write, so a program that writes nothing leaves
// none; a failure to create it stops the program too. Every byte goes to
// the file as it is written, so that a worker killed mid-run (past its
// wall time) leaves what the program wrote. Up to inline bytes are also
// kept in memory: a capture that fits is handed back in the Outcome and
// its file emptied at the end (end), so the node need not read it.
type cappedFile struct {
	path     string
	f        *os.File // nil until the first write
	inline   uint64
	buf      []byte // a copy of the capture while it fits in inline
	over     bool   // the capture outgrew inline
	left     uint64
	what     jobs.Failure
	exceeded bool
	err      error // creating the file failed
}

func (c *cappedFile) Write(p []byte) (int, error) {
	if c.f == nil {
		// A plain blocking descriptor: a regular file gains nothing from
		// the runtime's poller, and os.OpenFile would try to register it.
		fd, err := unix.Open(c.path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o600)
		if err != nil {
			c.err = fmt.Errorf("sandbox: create capture file %s: %w", c.path, err)
			panic(limitExceeded{jobs.FailureInternal})
		}
		c.f = os.NewFile(uintptr(fd), c.path)
	}
	if uint64(len(p)) > c.left {
		c.f.Write(p[:c.left])
		c.left = 0
		c.exceeded = true
		c.over, c.buf = true, nil
		panic(limitExceeded{c.what})
	}
	n, err := c.f.Write(p)
	c.left -= uint64(n)
	if !c.over {
		if uint64(len(c.buf)+n) <= c.inline {
			c.buf = append(c.buf, p[:n]...)
		} else {
			c.over, c.buf = true, nil
		}
	}
	return n, err
}

// end returns the capture and true when it fits in inline, emptying its
// file; otherwise the capture is the file.
func (c *cappedFile) end() ([]byte, bool) {
	if c.over || c.inline == 0 {
		return nil, false
	}
	if c.f != nil {
		if err := c.f.Truncate(0); err != nil {
			return nil, false // the file still holds it all
		}
	}
	return c.buf, true
}

func (c *cappedFile) close() {
	if c.f != nil {
		c.f.Close()
	}
}

// memoryLimit allocates linear memory up to limit bytes and records the
// peak. It implements experimental.MemoryAllocator for one instance. The
// first memory of a run lives in the executor's arena when it has one (see
// arena_linux.go); any other on the Go heap.
type memoryLimit struct {
	limit    uint64
	peak     uint64
	asked    uint64
	exceeded bool
	arena    *arena          // nil without an arena, or once taken
	data     *dataImage      // written into the first memory as it is made; nil once written
	mems     []*linearMemory // every memory handed out, freed by release
}

func (m *memoryLimit) Allocate(capacity, max uint64) experimental.LinearMemory {
	l := &linearMemory{owner: m, arena: m.arena}
	if l.arena == nil {
		l.buf = make([]byte, 0, min(capacity, m.limit))
	}
	m.arena = nil
	m.mems = append(m.mems, l)
	return l
}

// release frees every memory of the run, returning the arena zeroed; it is
// safe after Free.
func (m *memoryLimit) release() {
	for _, l := range m.mems {
		l.Free()
	}
	m.mems = nil
}

// A linearMemory is one instance's linear memory: a prefix of an arena,
// or a slice on the Go heap grown by doubling its capacity up to the limit.
type linearMemory struct {
	owner *memoryLimit
	arena *arena // nil for a heap memory and after Free
	buf   []byte
}

func (l *linearMemory) Reallocate(size uint64) []byte {
	m := l.owner
	if size > m.limit {
		m.exceeded = true
		m.asked = size
		return nil
	}
	m.peak = max(m.peak, size)
	switch {
	case l.arena != nil:
		l.buf = l.arena.grow(size)
	case size <= uint64(cap(l.buf)):
		l.buf = l.buf[:size]
	default:
		nb := make([]byte, size, max(size, min(2*uint64(cap(l.buf)), m.limit)))
		copy(nb, l.buf)
		l.buf = nb
	}
	// The runtime makes the memory at its initial size, which holds the
	// whole image (splitData checked), before it runs any code.
	if d := m.data; d != nil && uint64(len(l.buf)) >= uint64(d.off)+uint64(len(d.bytes)) {
		copy(l.buf[d.off:], d.bytes)
		m.data = nil
	}
	return l.buf
}

func (l *linearMemory) Free() {
	if l.arena != nil {
		l.arena.reset()
		l.arena = nil
	}
	l.buf = nil
}

// budgetFS is the /outputs mount: a directory whose files may receive at
// most a budget of bytes in total, and where links cannot be made (so a
// program cannot point an output at a host file). It notes whether the
// program asked to change anything in it (touched), so that an untouched
// directory need not be read back.
type budgetFS struct {
	experimentalsys.FS
	left     int64
	exceeded atomic.Bool
	touched  atomic.Bool
}

// writeFlags are the open flags that can change a file or create one.
const writeFlags = experimentalsys.O_RDWR | experimentalsys.O_WRONLY | experimentalsys.O_APPEND |
	experimentalsys.O_CREAT | experimentalsys.O_TRUNC

func (b *budgetFS) take(n int64) {
	if n > b.left {
		b.left = 0
		b.exceeded.Store(true)
		panic(limitExceeded{jobs.FailureOutputs})
	}
	b.left -= n
}

func (b *budgetFS) OpenFile(path string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	if flag&writeFlags != 0 {
		b.touched.Store(true)
	}
	f, errno := b.FS.OpenFile(path, flag, perm)
	if errno != 0 {
		return nil, errno
	}
	return &budgetFile{File: f, fs: b}, 0
}

func (b *budgetFS) Mkdir(path string, perm fs.FileMode) experimentalsys.Errno {
	b.touched.Store(true)
	return b.FS.Mkdir(path, perm)
}

func (b *budgetFS) Chmod(path string, perm fs.FileMode) experimentalsys.Errno {
	b.touched.Store(true)
	return b.FS.Chmod(path, perm)
}

func (b *budgetFS) Rename(from, to string) experimentalsys.Errno {
	b.touched.Store(true)
	return b.FS.Rename(from, to)
}

func (b *budgetFS) Rmdir(path string) experimentalsys.Errno {
	b.touched.Store(true)
	return b.FS.Rmdir(path)
}

func (b *budgetFS) Unlink(path string) experimentalsys.Errno {
	b.touched.Store(true)
	return b.FS.Unlink(path)
}

func (b *budgetFS) Utimens(path string, atim, mtim int64) experimentalsys.Errno {
	b.touched.Store(true)
	return b.FS.Utimens(path, atim, mtim)
}

func (b *budgetFS) Symlink(_, _ string) experimentalsys.Errno { return experimentalsys.EPERM }
func (b *budgetFS) Link(_, _ string) experimentalsys.Errno    { return experimentalsys.EPERM }

type budgetFile struct {
	experimentalsys.File
	fs *budgetFS
}

func (f *budgetFile) Utimens(atim, mtim int64) experimentalsys.Errno {
	f.fs.touched.Store(true)
	return f.File.Utimens(atim, mtim)
}

func (f *budgetFile) Write(p []byte) (int, experimentalsys.Errno) {
	f.fs.take(int64(len(p)))
	return f.File.Write(p)
}

func (f *budgetFile) Pwrite(p []byte, off int64) (int, experimentalsys.Errno) {
	f.fs.take(int64(len(p)))
	return f.File.Pwrite(p, off)
}

func (f *budgetFile) Truncate(size int64) experimentalsys.Errno {
	st, errno := f.File.Stat()
	if errno != 0 {
		return errno
	}
	if size > st.Size {
		f.fs.take(size - st.Size)
	}
	return f.File.Truncate(size)
}

// clock is the deterministic time and random source of one run, derived
// from the computation CID: the wall clock starts at a seed-derived second
// in 2023-2024 and advances 1 ms per reading; the monotonic clock advances
// 1 µs per reading and by the requested time on sleep; random bytes are
// ChaCha8 keyed by SHA-256("shoal/sandbox/random/1" || seed).
type clock struct {
	wallBase int64 // seconds
	walls    int64 // readings so far
	mono     int64 // nanoseconds
	random   io.Reader
}

func newClock(seed string) *clock {
	t := sha256.Sum256([]byte("shoal/sandbox/time/1" + seed))
	r := sha256.Sum256([]byte("shoal/sandbox/random/1" + seed))
	return &clock{
		wallBase: 1_672_531_200 + int64(binary.BigEndian.Uint64(t[:8])%(2*365*86400)),
		random:   rand.NewChaCha8(r),
	}
}

func (c *clock) walltime() (int64, int32) {
	c.walls++
	ms := c.walls
	return c.wallBase + ms/1000, int32(ms%1000) * 1e6
}

func (c *clock) nanotime() int64 {
	c.mono += 1000
	return c.mono
}

func (c *clock) sleep(ns int64) {
	if ns > 0 {
		c.mono += ns
	}
}

var _ experimental.MemoryAllocator = (*memoryLimit)(nil)
var _ experimentalsys.FS = (*budgetFS)(nil)
