package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/spf13/pflag"

	"github.com/shoalnet/shoal/jobs/dist"
	"github.com/shoalnet/shoal/node/client"
)

// netJobFlags are the flags of `shoal job run` that place a job across the
// network: replicas, quorum and label constraints.
type netJobFlags struct {
	replicas    int
	quorum      int
	constraints []string

	seen map[string]string // replica → last printed line, for TTY progress
}

func (nf *netJobFlags) register(f *pflag.FlagSet) {
	f.IntVar(&nf.replicas, "replicas", 1, "run the job on N different peers and compare their results")
	f.IntVar(&nf.quorum, "quorum", 0, "results that must agree for the job to be verified (default: a majority of --replicas)")
	f.StringArrayVar(&nf.constraints, "constraint", nil, "run only on peers whose capacity advert carries label KEY=VALUE (repeatable)")
}

// apply copies the flags into req.
func (nf *netJobFlags) apply(req *client.JobRequest) error {
	if nf.replicas < 1 {
		return fmt.Errorf("--replicas %d: want at least 1", nf.replicas)
	}
	if nf.quorum < 0 || nf.quorum > nf.replicas {
		return fmt.Errorf("--quorum %d: want 1 to --replicas (%d)", nf.quorum, nf.replicas)
	}
	req.Replicas, req.Quorum = nf.replicas, nf.quorum
	for _, kv := range nf.constraints {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("--constraint %q: want KEY=VALUE", kv)
		}
		if req.Constraints == nil {
			req.Constraints = map[string]string{}
		}
		req.Constraints[k] = v
	}
	return nil
}

// progress prints, on a TTY, which worker holds each replica of job and
// its state, whenever that changes.
func (nf *netJobFlags) progress(ctx context.Context, c *client.Client, w io.Writer, job client.JobInfo) {
	var st dist.Status
	if err := c.Do(ctx, "GET", "/v1/net/jobs/"+url.PathEscape(job.Job), nil, &st); err != nil {
		return
	}
	if nf.seen == nil {
		nf.seen = map[string]string{}
	}
	for _, r := range st.Workers {
		if r.Worker == "" {
			continue
		}
		line := fmt.Sprintf("  replica %d: %s on %s", r.Replica+1, r.State, short(r.Worker.String()))
		if r.Attempts > 1 {
			line += fmt.Sprintf(" (attempt %d)", r.Attempts)
		}
		key := fmt.Sprint(r.Replica)
		if nf.seen[key] != line {
			nf.seen[key] = line
			fmt.Fprintln(w, line)
		}
	}
}

// verdict prints, on a TTY, the verdict of a job run across the network.
func (nf *netJobFlags) verdict(w io.Writer, job client.JobInfo) {
	if job.Verdict == "" {
		return
	}
	fmt.Fprintf(w, "verdict: %s", job.Verdict)
	if job.Reason != "" {
		fmt.Fprintf(w, " (%s)", job.Reason)
	}
	fmt.Fprintln(w)
}
