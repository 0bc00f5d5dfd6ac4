package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/shoalnet/shoal/testnet"
)

// errDemoFailed ends `shoal testnet up --demo` with status 1 after the
// demo's failure was printed.
var errDemoFailed = errors.New("the demo failed (see above); the nodes' logs are in DIR/nodeI/daemon.log")

// runTestnetDemo runs the demo on tn, prints its outcome and how to go on
// by hand, and reports whether it succeeded (or was stopped by ctx). A failure is printed in plain
// words; the nodes keep running so that they can be looked at.
func runTestnetDemo(ctx context.Context, out io.Writer, tn *testnet.Testnet, modules string) bool {
	fmt.Fprintln(out)
	rep, err := testnet.RunDemo(ctx, tn, testnet.DemoOptions{Modules: modules, Out: out})
	if ctx.Err() != nil {
		return true // stopped with Ctrl-C: the nodes stop next, and nothing failed
	}
	if err != nil {
		var de *testnet.DemoError
		if errors.As(err, &de) {
			fmt.Fprintf(out, "\nDEMO FAILED in stage %s: %v\n", de.Stage, de.Err)
		} else {
			fmt.Fprintf(out, "\nDEMO FAILED: %v\n", err)
		}
		fmt.Fprintf(out, "the nodes keep running so that you can look; their logs: %s\n", filepath.Join(tn.Dir(), "node*", testnet.LogFileName))
	} else {
		fmt.Fprintf(out, "\ndemo done: %d jobs ran on %d nodes and their results agreed; every ledger verified\n", len(rep.Results), tn.N())
	}
	cmd := shoalCommand()
	testnet.PrintDemoHints(out, tn, rep.Plan, cmd)
	if strings.HasPrefix(cmd, "go run") {
		fmt.Fprintln(out, "  (or build the command once: go build -o shoal ./cmd/shoal)")
	}
	return err == nil
}

// shoalCommand returns how the user runs this command: "go run
// ./cmd/shoal" for a binary that `go run` built, else the name it was run by.
func shoalCommand() string {
	if exe, err := os.Executable(); err == nil && strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return "go run ./cmd/shoal"
	}
	if !strings.Contains(os.Args[0], string(filepath.Separator)) {
		return "shoal"
	}
	return os.Args[0]
}
