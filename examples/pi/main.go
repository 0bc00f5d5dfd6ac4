// Command pi estimates π by Monte-Carlo sampling with a seeded generator
// (xorshift64*), so the same arguments always print the same estimate. It
// is CPU-bound and serves as the sandbox-versus-native benchmark.
package main

import (
	"flag"
	"fmt"
)

func main() {
	seed := flag.Uint64("seed", 1, "random seed")
	n := flag.Int("n", 10_000_000, "number of samples")
	flag.Parse()
	s := *seed*0x9e3779b97f4a7c15 | 1
	next := func() float64 {
		s ^= s >> 12
		s ^= s << 25
		s ^= s >> 27
		return float64((s*0x2545f4914f6cdd1d)>>11) / (1 << 53)
	}
	inside := 0
	for i := 0; i < *n; i++ {
		x, y := next(), next()
		if x*x+y*y <= 1 {
			inside++
		}
	}
	fmt.Printf("pi ≈ %.8f (%d of %d samples inside, seed %d)\n", 4*float64(inside)/float64(*n), inside, *n, *seed)
}
