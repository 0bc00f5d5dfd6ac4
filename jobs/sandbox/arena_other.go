//go:build !linux

package sandbox

// An arena is not used on this platform: each run's linear memory lives
// on the Go heap.
type arena struct{}

func newArena() *arena { return nil }

func (a *arena) grow(size uint64) []byte { panic("sandbox: no arena on this platform") }

func (a *arena) reset() {}

func (a *arena) close() {}
