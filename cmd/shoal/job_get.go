package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newJobGetCmd(rf *rootFlags) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:     "get JOB [-o DIR]",
		Short:   "Write a job's output files (its /outputs directory) to DIR",
		Example: "  shoal job get bafyrei... -o tile",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := rf.client()
			if err != nil {
				return err
			}
			ctx, cancel := jobContext(cmd)
			defer cancel()
			if dir == "" {
				dir = args[0]
			}
			rc, err := c.JobOutputs(ctx, args[0])
			if err != nil {
				return err
			}
			defer rc.Close()
			if err := extractOutputs(rc, dir); err != nil {
				return fmt.Errorf("write outputs of job %s to %s: %w", args[0], dir, err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote outputs of job %s to %s\n", args[0], dir)
			return nil
		},
	}
	cmd.Flags().StringVarP(&dir, "output", "o", "", "directory to write (default: the job ID)")
	return cmd
}
