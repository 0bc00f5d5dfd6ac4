package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/jobs/sandbox"
)

// newSandboxWorkerCmd returns the hidden "shoal sandbox-worker" command: the
// sandbox worker loop on stdin/stdout, as the node's job pool starts it
// (the pool selects it with SHOAL_SANDBOX_WORKER=1, which main checks
// before anything else; this command is the same entry point by name).
func newSandboxWorkerCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "sandbox-worker",
		Short:  "Run as a sandbox worker (started by the node, not by hand)",
		Hidden: true,
		Args:   cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			os.Exit(sandbox.RunWorker())
		},
	}
}
