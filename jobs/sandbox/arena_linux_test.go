package sandbox

import "testing"

// TestArenaReset checks that a run's linear memory starts zeroed after an
// earlier run wrote to it, both below and above the resident part.
func TestArenaReset(t *testing.T) {
	a := newArena()
	if a == nil {
		t.Skip("no arena on this platform")
	}
	defer a.close()
	const size = arenaKeep + 3<<20
	for round := 0; round < 2; round++ {
		m := &memoryLimit{limit: size, arena: a}
		l := m.Allocate(0, size)
		b := l.Reallocate(size)
		if len(b) != size || cap(b) != size {
			t.Fatalf("Reallocate(%d) = len %d cap %d, want both %d", size, len(b), cap(b), size)
		}
		for _, off := range []int{0, 4095, arenaKeep - 1, arenaKeep, size - 1} {
			if b[off] != 0 {
				t.Fatalf("round %d: byte %d = %d after reset, want 0", round, off, b[off])
			}
			b[off] = 0xAA
		}
		if got := l.Reallocate(size + 1); got != nil || !m.exceeded {
			t.Fatalf("Reallocate past the limit = %d bytes, exceeded %v; want nil, true", len(got), m.exceeded)
		}
		m.release()
	}
}
