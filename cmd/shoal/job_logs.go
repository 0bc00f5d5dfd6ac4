package main

import (
	"github.com/spf13/cobra"
)

func newJobLogsCmd(rf *rootFlags) *cobra.Command {
	var stderr bool
	cmd := &cobra.Command{
		Use:     "logs JOB",
		Short:   "Print a job's stdout (or, with --stderr, its stderr)",
		Example: "  shoal job logs bafyrei...\n  shoal job logs --stderr bafyrei...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := rf.client()
			if err != nil {
				return err
			}
			ctx, cancel := jobContext(cmd)
			defer cancel()
			stream := "stdout"
			if stderr {
				stream = "stderr"
			}
			return copyLog(ctx, c, args[0], stream, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&stderr, "stderr", false, "print stderr instead of stdout")
	return cmd
}
