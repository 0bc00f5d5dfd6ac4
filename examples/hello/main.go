// Command hello prints a greeting and its arguments, one per line. It is
// the smallest Shoal job: shoal job run hello.wasm -- world.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Println("hello from shoal")
	for i, a := range os.Args[1:] {
		fmt.Printf("arg %d: %s\n", i+1, a)
	}
}
