package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newJobCancelCmd(rf *rootFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "cancel JOB",
		Short:   "Stop a job that has not finished",
		Example: "  shoal job cancel bafyrei...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := rf.client()
			if err != nil {
				return err
			}
			ctx, cancel := jobContext(cmd)
			defer cancel()
			j, err := c.CancelJob(ctx, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "job %s: %s\n", j.Job, j.State)
			return nil
		},
	}
}
