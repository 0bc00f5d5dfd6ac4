package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/node/client"
)

func newJobStatusCmd(rf *rootFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "status JOB",
		Short:   "Show a job's state, result and what it waits on",
		Example: "  shoal job status bafyrei...\n  shoal job status bafyrei... --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := rf.client()
			if err != nil {
				return err
			}
			ctx, cancel := jobContext(cmd)
			defer cancel()
			j, err := c.Job(ctx, args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), j)
			}
			printJobInfo(cmd, j)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printJobInfo(cmd *cobra.Command, j client.JobInfo) { writeJobInfo(cmd.OutOrStdout(), j) }

// writeJobInfo writes j as the rows of `shoal job status`.
func writeJobInfo(w io.Writer, j client.JobInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	row("job", j.Job)
	row("state", j.State)
	row("waiting on", j.Blocker)
	row("computation", j.Computation)
	row("module", j.Module)
	row("args", strings.Join(j.Args, " "))
	row("submitter", j.Submitter)
	row("created", j.Created)
	row("updated", j.Updated)
	if j.ExitCode != nil {
		row("exit code", fmt.Sprint(*j.ExitCode))
	}
	if j.Failure != "" {
		row("failure", j.Failure+": "+j.Reason)
	}
	if j.Verdict != "" {
		v := j.Verdict
		if j.Failure == "" && j.Reason != "" {
			v += " (" + j.Reason + ")"
		}
		row("verdict", v)
	}
	for _, w := range j.Disagreeing {
		row("disagreeing", w+" (its result lost the vote)")
	}
	row("stdout", j.Stdout)
	row("stderr", j.Stderr)
	row("outputs", j.Outputs)
	var ledger []string
	if j.LedgerSubmitted != nil {
		ledger = append(ledger, fmt.Sprintf("job.submitted at entry %d", *j.LedgerSubmitted))
	}
	if j.LedgerVerdict != nil {
		ledger = append(ledger, fmt.Sprintf("job.verdict at entry %d", *j.LedgerVerdict))
	}
	if j.LedgerError != "" {
		ledger = append(ledger, "NOT RECORDED: "+j.LedgerError)
	}
	row("ledger", strings.Join(ledger, "; "))
	for _, r := range j.Results {
		outcome := fmt.Sprintf("exit %d", r.ExitCode)
		if r.Failure != "" {
			outcome = r.Failure
		}
		row("result", fmt.Sprintf("%s by %s (%s, %.1f ms, %d bytes peak memory)", r.Result, r.Worker, outcome, r.WallMS, r.PeakMemory))
	}
	tw.Flush()
}
