package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newJobListCmd(rf *rootFlags) *cobra.Command {
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the jobs this node knows, newest first",
		Example: "  shoal job list\n  shoal job list --limit 20\n  shoal job list --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return fmt.Errorf("--limit %d: want a number of jobs, or 0 for all", limit)
			}
			c, err := rf.client()
			if err != nil {
				return err
			}
			ctx, cancel := jobContext(cmd)
			defer cancel()
			list, err := c.JobsNewest(ctx, limit)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, list)
			}
			if len(list) == 0 {
				fmt.Fprintln(out, "no jobs")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "JOB\tSTATE\tEXIT\tCREATED")
			for _, j := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", j.Job, j.State, exitCodeText(j.ExitCode), j.Created)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVar(&limit, "limit", 0, "list only the newest `N` jobs (0: all)")
	return cmd
}

// exitCodeText is a job's exit code for a table, "-" while it has none.
func exitCodeText(code *int64) string {
	if code == nil {
		return "-"
	}
	return fmt.Sprint(*code)
}
