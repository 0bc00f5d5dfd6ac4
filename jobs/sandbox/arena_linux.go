package sandbox

import (
	"math"

	"github.com/shoalnet/shoal/jobs"
	"golang.org/x/sys/unix"
)

// arenaKeep is how much of an arena stays resident between runs; pages
// above it go back to the kernel after a run that used them.
const arenaKeep = 64 << 20

// An arena is the linear memory of the worker's runs, reused from one run
// to the next: an anonymous private mapping of jobs.MaxMemory bytes made
// once per worker. Growing a memory in it neither copies nor clears; after
// a run, reset zeroes what the run touched, so the next run starts from
// zero pages like a fresh memory, without a page fault per page. It
// counts against the worker's RLIMIT_AS (DefaultAddressSpace leaves room)
// but not against overcommit (MAP_NORESERVE). One run uses it at a time.
type arena struct {
	mem  []byte // the mapping
	used uint64 // bytes handed out since the last reset
}

// newArena maps an arena, or returns nil if the mapping fails (the runs
// then allocate on the Go heap).
func newArena() *arena {
	size := uint64(jobs.MaxMemory)
	if size > math.MaxInt {
		return nil // a 32-bit platform
	}
	b, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil
	}
	return &arena{mem: b}
}

// grow returns the arena's first size bytes. The memory limit is checked
// by the caller and is at most jobs.MaxMemory.
func (a *arena) grow(size uint64) []byte {
	a.used = max(a.used, size)
	return a.mem[:size:size]
}

// reset zeroes what the last run used and returns the pages above
// arenaKeep to the kernel (which hands them out zeroed again).
func (a *arena) reset() {
	keep := min(a.used, arenaKeep)
	clear(a.mem[:keep])
	if a.used > keep {
		// MADV_DONTNEED on a private anonymous mapping reads back as zeros.
		if err := unix.Madvise(a.mem[keep:a.used], unix.MADV_DONTNEED); err != nil {
			clear(a.mem[keep:a.used])
		}
	}
	a.used = 0
}

func (a *arena) close() {
	if a != nil {
		unix.Munmap(a.mem)
		a.mem = nil
	}
}
