//go:build !linux

package capacity

// totalMemory returns 0: memory detection is implemented on Linux only;
// set it with WithResources elsewhere.
func totalMemory() int64 { return 0 }
