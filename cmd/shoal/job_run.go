package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/node/client"
)

func newJobRunCmd(rf *rootFlags) *cobra.Command {
	var (
		inputs  []string
		envs    []string
		timeout time.Duration
		memory  string
		detach  bool
		asJSON  bool
		nf      netJobFlags // --replicas, --quorum, --constraint: job_net.go
	)
	cmd := &cobra.Command{
		Use:   "run MODULE.wasm|CID [flags] [-- ARGS...]",
		Short: "Run a WebAssembly program as a job and print its stdout",
		Long: `Run a WebAssembly (WASI preview 1) program as a job. Local files (the module
and --input paths) are uploaded to the node first; CIDs are used as they are.
The command waits for the result, prints the job's stdout and exits with the
job's exit code (1 when the sandbox stopped it; the reason goes to stderr).
With --detach it prints the job ID and returns at once.`,
		Example: `  shoal job run hello.wasm -- world
  shoal job run wordcount.wasm --input text=./docs -- -top 5
  shoal job run bafkrei... --timeout 10s --memory 64MiB --json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := rf.client()
			if err != nil {
				return err
			}
			ctx, cancel := jobContext(cmd)
			defer cancel()
			req := client.JobRequest{Args: args[1:], Inputs: map[string]string{}, Env: map[string]string{}}
			if err := nf.apply(&req); err != nil {
				return err
			}
			if req.Module, err = uploadOrCID(ctx, c, args[0], false); err != nil {
				return fmt.Errorf("module %s: %w", args[0], err)
			}
			for _, in := range inputs {
				name, src, ok := strings.Cut(in, "=")
				if !ok || name == "" || src == "" {
					return fmt.Errorf("--input %q: want NAME=PATH or NAME=CID", in)
				}
				if _, dup := req.Inputs[name]; dup {
					return fmt.Errorf("--input %s given twice", name)
				}
				if req.Inputs[name], err = uploadOrCID(ctx, c, src, true); err != nil {
					return fmt.Errorf("--input %s: %w", name, err)
				}
			}
			for _, kv := range envs {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("--env %q: want KEY=VALUE", kv)
				}
				req.Env[k] = v
			}
			if timeout < 0 {
				return fmt.Errorf("--timeout %v must be positive", timeout)
			}
			req.TimeoutMS = timeout.Milliseconds()
			if memory != "" {
				if req.Memory, err = parseSize(memory); err != nil {
					return fmt.Errorf("--memory: %w", err)
				}
			}
			job, err := c.SubmitJob(ctx, req)
			if err != nil {
				return err
			}
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			if detach {
				if asJSON {
					return printJSON(out, job)
				}
				fmt.Fprintln(out, job.Job)
				return nil
			}
			tty := isTTY(os.Stderr) && !asJSON
			last := ""
			for !job.Terminal() {
				if tty && job.State != last {
					line := fmt.Sprintf("job %s: %s", short(job.Job), job.State)
					if job.Blocker != "" {
						line += " (" + job.Blocker + ")"
					}
					fmt.Fprintln(errOut, line)
					last = job.State
				}
				if tty {
					nf.progress(ctx, c, errOut, job)
				}
				if job, err = c.WaitJob(ctx, job.Job, job.Version, 30*time.Second); err != nil {
					if ctx.Err() != nil {
						return fmt.Errorf("stopped waiting; the job goes on (see: shoal job status %s)", job.Job)
					}
					return err
				}
			}
			if asJSON {
				return printJobJSON(ctx, c, out, job)
			}
			if tty {
				fmt.Fprintf(errOut, "job %s: %s\n", short(job.Job), job.State)
				nf.verdict(errOut, job)
			}
			if job.Stdout != "" {
				if err := copyLog(ctx, c, job.Job, "stdout", out); err != nil {
					return err
				}
			}
			if job.Failure != "" {
				fmt.Fprintf(errOut, "shoal: job %s failed (%s): %s\n", job.Job, job.Failure, job.Reason)
			}
			if code := exitCodeOf(job); code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&inputs, "input", nil, "mount NAME=PATH|CID read-only at /inputs/NAME (repeatable)")
	f.StringArrayVar(&envs, "env", nil, "set KEY=VALUE in the job's environment (repeatable)")
	f.DurationVar(&timeout, "timeout", 0, "wall-time limit of the run, e.g. 30s (default 60s)")
	f.StringVar(&memory, "memory", "", "memory limit, e.g. 64MiB (default 256MiB)")
	f.BoolVar(&detach, "detach", false, "print the job ID and return without waiting")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	nf.register(f)
	return cmd
}

// jobRunJSON is what shoal job run --json prints.
type jobRunJSON struct {
	Job      string             `json:"job"`
	State    string             `json:"state"`
	ExitCode *int64             `json:"exit_code"`
	Failure  string             `json:"failure,omitempty"`
	Reason   string             `json:"reason,omitempty"`
	Stdout   string             `json:"stdout"`
	Stderr   string             `json:"stderr"`
	Outputs  string             `json:"outputs"`
	Results  []client.JobResult `json:"results"`
	Verdict  string             `json:"verdict,omitempty"`
}

func printJobJSON(ctx context.Context, c *client.Client, w io.Writer, job client.JobInfo) error {
	v := jobRunJSON{Job: job.Job, State: job.State, ExitCode: job.ExitCode, Failure: job.Failure,
		Reason: job.Reason, Outputs: job.Outputs, Results: job.Results, Verdict: job.Verdict}
	if v.Results == nil {
		v.Results = []client.JobResult{}
	}
	for _, s := range []struct {
		name string
		dst  *string
		cid  string
	}{{"stdout", &v.Stdout, job.Stdout}, {"stderr", &v.Stderr, job.Stderr}} {
		if s.cid == "" {
			continue
		}
		var b strings.Builder
		if err := copyLog(ctx, c, job.Job, s.name, &b); err != nil {
			return err
		}
		*s.dst = b.String()
	}
	if err := printJSON(w, v); err != nil {
		return err
	}
	if code := exitCodeOf(job); code != 0 {
		return exitError{code}
	}
	return nil
}

func copyLog(ctx context.Context, c *client.Client, id, stream string, w io.Writer) error {
	rc, err := c.JobLog(ctx, id, stream)
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := io.Copy(w, rc); err != nil {
		return fmt.Errorf("read %s of job %s: %w", stream, id, err)
	}
	return nil
}

// uploadOrCID uploads the file (or, when dirs is set, directory) at arg
// and returns its CID; an arg that is no local path must be a CID.
func uploadOrCID(ctx context.Context, c *client.Client, arg string, dirs bool) (string, error) {
	st, err := os.Stat(arg)
	if err != nil {
		if _, cerr := cid.Decode(arg); cerr == nil {
			return arg, nil
		}
		return "", fmt.Errorf("neither a readable path nor a CID: %w", err)
	}
	if st.IsDir() {
		if !dirs {
			return "", errors.New("is a directory; want a .wasm file")
		}
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(client.WriteInputTar(pw, arg)) }()
		defer pr.Close()
		return c.UploadJobPayload(ctx, pr, true)
	}
	f, err := os.Open(arg)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return c.UploadJobPayload(ctx, f, false)
}

// short abbreviates a CID for progress lines.
func short(id string) string {
	if len(id) <= 16 {
		return id
	}
	return id[:8] + "…" + id[len(id)-6:]
}
