// Command shoal is the Shoal node and its command-line interface: it
// creates a repo (shoal init), runs the node (shoal daemon), talks to a
// running node through its HTTP API (shoal id, shoal peers, ...) and brings
// up local multi-node testnets (shoal testnet up). See docs/cli.md.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/shoalnet/shoal/jobs/sandbox"
)

func main() {
	// A sandbox worker runs nothing else: no flags, no config, no repo.
	if sandbox.IsWorker() {
		os.Exit(sandbox.RunWorker())
	}
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "shoal:", err)
		os.Exit(1)
	}
}

// An exitError ends the program with code after its message was printed.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
