// Package sandbox implements Shoal's WebAssembly executor: a pool of warm
// sandbox worker processes, each running one job at a time in wazero
// (compiler mode, WASI preview 1), for the node's job pipeline.
//
// # Workers
//
// A worker is the node's own binary started with WorkerEnv=1 as its whole
// environment; main calls RunWorker before anything else (tests do the
// same in TestMain). The worker gets no key and no repo path: only the
// task's module file, its inputs directory (mounted read-only at /inputs),
// its outputs directory (/outputs) and the files that capture stdout and
// stderr. Where the kernel has Landlock, the worker's executing thread is
// confined to Config.ReadDirs and Config.WriteDirs; its address space is
// capped with RLIMIT_AS; the kernel kills it if the node dies.
//
// Modules run without wazero's close-on-context-done, which slows
// CPU-bound code about tenfold; the pool enforces the wall time by killing
// the worker and starting a fresh one. A worker that dies fails only its
// task. Linear memory is capped per task by a memory allocator. On Linux
// it lives in one 4 GiB anonymous mapping per worker (an arena) reused by
// every run: growing a memory neither copies nor clears it, the Go heap
// never holds it, and after each run the pages the run touched are zeroed
// (the first 64 MiB in place, the rest returned to the kernel), so every
// run starts from zero memory as with a fresh allocation. Stdout,
// stderr and the bytes written under /outputs are capped by the writers,
// which stop the program at the write that passes a limit.
//
// The clock and random source are deterministic, derived from the task's
// seed (the computation CID); see docs/jobs.md for the exact rule.
//
// Compiled modules are cached by module CID in each worker (least recently
// used first out) and on disk (wazero's compilation cache in
// Config.CacheDir); Outcome.Compiled reports a run that had to compile.
//
// # Pipe protocol
//
// Pool and worker exchange frames on the worker's stdin and stdout: a
// 4-byte big-endian length (1 to 1 MiB) and that many bytes of JSON,
// decoded strictly (unknown fields and trailing data are errors) and
// validated. The pool sends hello once (the worker answers ready), then
// for each task run; the worker answers started when the module is
// compiled and the program starts (the wall time runs from here) and done
// with the Outcome. Both sides are the same binary, so the protocol has no
// version; a malformed frame ends the worker.
package sandbox
