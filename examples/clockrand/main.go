// Command clockrand prints what the program sees of time and randomness:
// the wall clock, a monotonic interval, bytes from crypto/rand and a draw
// from math/rand's auto-seeded generator. Under Shoal's sandbox all of them
// derive from the computation's CID, so the same computation prints the
// same line wherever and whenever it runs.
package main

import (
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"time"
)

func main() {
	start := time.Now()
	b := make([]byte, 16)
	if _, err := crand.Read(b); err != nil {
		panic(err)
	}
	time.Sleep(10 * time.Millisecond)
	fmt.Printf("now=%s elapsed=%d crypto=%x math=%d\n",
		start.UTC().Format(time.RFC3339Nano), time.Since(start).Nanoseconds(), b, rand.Uint64())
}
