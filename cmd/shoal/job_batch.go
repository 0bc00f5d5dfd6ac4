package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/node/client"
)

func newJobBatchCmd(rf *rootFlags) *cobra.Command {
	var (
		detach bool
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "batch FILE|-",
		Short: "Submit many jobs at once, one JSON object per line, and wait for them all",
		Long: `Submit many jobs in as few API requests as possible (up to 1000 per request)
and wait until every one has ended: a parameter sweep, say. FILE (or - for
standard input) holds one job per line, as a JSON object with the fields of
POST /v1/jobs (docs/jobs.md): "module" and the values of "inputs" may be local
paths, uploaded first (each distinct path once), or CIDs. Blank lines and lines
starting with # are skipped. Every line is checked before any job is submitted.
Prints one line per job, in the file's order: its ID, state, exit code and
stdout CID; exits 1 if any job did not end done with exit code 0.`,
		Example: `  printf '%s\n' '{"module":"pi.wasm","args":["1000000"]}' \
                '{"module":"pi.wasm","args":["2000000"],"replicas":3,"quorum":2}' > sweep.jsonl
  shoal job batch sweep.jsonl
  shoal job batch --json - < sweep.jsonl`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in io.Reader = cmd.InOrStdin()
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return fmt.Errorf("batch file: %w", err)
				}
				defer f.Close()
				in = f
			}
			reqs, err := readBatch(in)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			c, err := rf.client()
			if err != nil {
				return err
			}
			ctx, cancel := jobContext(cmd)
			defer cancel()
			if err := uploadBatchPaths(ctx, c, reqs); err != nil {
				return err
			}
			wait := 30 * time.Second
			if detach {
				wait = 0
			}
			var all []client.JobInfo
			for len(reqs) > 0 {
				n := min(len(reqs), client.MaxBatchJobs)
				got, err := c.SubmitJobs(ctx, reqs[:n], wait)
				if err != nil {
					if len(all) > 0 {
						return fmt.Errorf("%w (the first %d jobs were submitted)", err, len(all))
					}
					return err
				}
				all, reqs = append(all, got...), reqs[n:]
			}
			for i := range all {
				for !detach && !all[i].Terminal() {
					j, err := c.WaitJobEnd(ctx, all[i].Job, 30*time.Second)
					if err != nil {
						if ctx.Err() != nil {
							return fmt.Errorf("stopped waiting; the jobs go on (see: shoal job list)")
						}
						return err
					}
					all[i] = j
				}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if err := printJSON(out, all); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "JOB\tSTATE\tEXIT\tSTDOUT")
				for _, j := range all {
					stdout := j.Stdout
					if stdout == "" {
						stdout = "-"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", j.Job, j.State, exitCodeText(j.ExitCode), stdout)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			if detach {
				return nil
			}
			for _, j := range all {
				if exitCodeOf(j) != 0 {
					return exitError{1}
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&detach, "detach", false, "print the submitted jobs and return without waiting")
	f.BoolVar(&asJSON, "json", false, "print the jobs as a JSON array")
	return cmd
}

// maxBatchLine bounds one line of a batch file.
const maxBatchLine = 1 << 20

// readBatch reads one job request per line; blank lines and # comments are
// skipped. A line that is not a JSON job request is an error naming it.
func readBatch(r io.Reader) ([]client.JobRequest, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxBatchLine)
	var reqs []client.JobRequest
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		var req client.JobRequest
		if err := dec.Decode(&req); err != nil {
			return nil, fmt.Errorf("line %d is not a job (a JSON object such as {\"module\":\"hello.wasm\",\"args\":[\"x\"]}): %w", line, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("line %d holds more than one JSON value: put one job per line", line)
		}
		if req.Module == "" {
			return nil, fmt.Errorf("line %d names no module: set \"module\" to a .wasm path or a CID", line)
		}
		reqs = append(reqs, req)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read: %w (a line may be at most %d bytes)", err, maxBatchLine)
	}
	if len(reqs) == 0 {
		return nil, fmt.Errorf("no jobs in it: write one JSON object per line")
	}
	return reqs, nil
}

// uploadBatchPaths replaces the local paths among the requests' modules and
// inputs by their CIDs, uploading each distinct path once.
func uploadBatchPaths(ctx context.Context, c *client.Client, reqs []client.JobRequest) error {
	done := map[string]string{}
	resolve := func(arg string, dirs bool) (string, error) {
		if id, ok := done[arg]; ok {
			return id, nil
		}
		id, err := uploadOrCID(ctx, c, arg, dirs)
		if err != nil {
			return "", err
		}
		done[arg] = id
		return id, nil
	}
	for i := range reqs {
		var err error
		if reqs[i].Module, err = resolve(reqs[i].Module, false); err != nil {
			return fmt.Errorf("job %d: module %s: %w", i+1, reqs[i].Module, err)
		}
		for name, v := range reqs[i].Inputs {
			if reqs[i].Inputs[name], err = resolve(v, true); err != nil {
				return fmt.Errorf("job %d: input %s: %w", i+1, name, err)
			}
		}
	}
	return nil
}
