package dist_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoalnet/shoal/examples"
	"github.com/shoalnet/shoal/jobs/dist"
	"github.com/shoalnet/shoal/jobs/quorum"
	"github.com/shoalnet/shoal/node/client"
	"github.com/shoalnet/shoal/testnet"
)

// The end-to-end tests start real shoal daemons through package testnet.
// They build the shoal binary and the examples; -short skips them. Alone:
//
//	go test -run E2E -v ./jobs/dist/
func e2e(t *testing.T, n int, env func(i int) []string) (*testnet.Testnet, map[string]string) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test with real daemons; skipped under -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin, err := testnet.BuildBinary(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	mods := map[string]string{}
	for _, name := range []string{"hello", "pi"} {
		if mods[name], err = examples.Build(ctx, dir, name, false); err != nil {
			t.Fatal(err)
		}
	}
	tn, err := testnet.Setup(testnet.Options{N: n, Dir: filepath.Join(dir, "tn"), Binary: bin, Env: env, Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tn.Stop() })
	if err := tn.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Wait until every node sees every other's capacity.
	err = tn.WaitFor(ctx, 50*time.Millisecond, func(ctx context.Context) (bool, string, error) {
		for i, nd := range tn.Nodes() {
			view, err := nd.Client().Capacity(ctx)
			if err != nil || len(view) < n {
				return false, fmt.Sprintf("node%d sees %d adverts", i, len(view)), nil
			}
		}
		return true, "", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tn, mods
}

// upload puts the module file on node i and returns its CID.
func upload(t *testing.T, c *client.Client, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	id, err := c.UploadJobPayload(context.Background(), f, false)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func netStatus(ctx context.Context, c *client.Client, job string, wait time.Duration) (dist.Status, error) {
	var st dist.Status
	q := ""
	if wait > 0 {
		q = "?wait=" + url.QueryEscape(wait.String())
	}
	err := c.Do(ctx, "GET", "/v1/net/jobs/"+url.PathEscape(job)+q, nil, &st)
	return st, err
}

// waitNet waits for job's end through node c's distributed status.
func waitNet(t *testing.T, c *client.Client, job string) dist.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		st, err := netStatus(ctx, c, job, 10*time.Second)
		if err == nil && st.Terminal() {
			return st
		}
		if ctx.Err() != nil {
			t.Fatalf("job %s did not end: last status %+v, %v", job, st, err)
		}
	}
}

func submit(t *testing.T, c *client.Client, module string, replicas int, args ...string) string {
	t.Helper()
	j, err := c.SubmitJob(context.Background(), client.JobRequest{Module: module, Args: args,
		Replicas: replicas, Quorum: replicas/2 + 1, TimeoutMS: 30_000})
	if err != nil {
		t.Fatal(err)
	}
	return j.Job
}

func workers(st dist.Status) []string {
	var out []string
	for _, r := range st.Results {
		out = append(out, r.Worker.String())
	}
	return out
}

// describeResults lists each result's worker, vote and failure, for test
// failure messages.
func describeResults(st dist.Status) string {
	var parts []string
	for _, r := range st.Results {
		parts = append(parts, fmt.Sprintf("{%s exit=%d vote=%v agrees=%v failure=%q %s}", r.Worker, r.ExitCode, r.Vote, r.Agrees, r.Failure, r.Reason))
	}
	return strings.Join(parts, " ")
}

func TestE2EJobsAcrossTheNetwork(t *testing.T) {
	tn, mods := e2e(t, 5, nil)
	mods0 := mods
	ids := make([]string, tn.N())
	for i, nd := range tn.Nodes() {
		ids[i] = nd.PeerID.String()
	}
	t.Run("each node submits, others run", func(t *testing.T) {
		for i, nd := range tn.Nodes() {
			c := nd.Client()
			job := submit(t, c, upload(t, c, mods["hello"]), 1, "from", nd.Name)
			st := waitNet(t, c, job)
			if st.Verdict != quorum.Verified || len(st.Results) != 1 || st.Results[0].Worker.String() == ids[i] {
				t.Fatalf("job from node%d: %s on %v (%s), want verified on another node", i, st.Verdict, workers(st), st.Reason)
			}
			// Any node can read the outcome.
			other := tn.Node((i + 2) % tn.N()).Client()
			var got dist.Status
			err := tn.WaitFor(context.Background(), 50*time.Millisecond, func(ctx context.Context) (bool, string, error) {
				var err error
				got, err = netStatus(ctx, other, job, 0)
				return err == nil && got.Terminal(), fmt.Sprint(err), nil
			})
			if err != nil || got.Verdict != quorum.Verified {
				t.Fatalf("node%d reads job of node%d: %+v, %v", (i+2)%tn.N(), i, got, err)
			}
		}
	})
	t.Run("three replicas on three peers", func(t *testing.T) {
		c := tn.Node(1).Client()
		job := submit(t, c, upload(t, c, mods["hello"]), 3)
		st := waitNet(t, c, job)
		w := workers(st)
		slices.Sort(w)
		if st.Verdict != quorum.Verified || len(slices.Compact(w)) != 3 || slices.Contains(w, ids[1]) {
			t.Fatalf("3 replicas: %s on %v (%s), want verified on 3 other peers", st.Verdict, w, st.Reason)
		}
	})
	t.Run("worker killed mid-job", func(t *testing.T) {
		c := tn.Node(0).Client()
		job := submit(t, c, upload(t, c, mods["pi"]), 1, "-seed", "1", "-n", "200000000")
		// Find the worker and kill it while the job runs.
		var victim int = -1
		err := tn.WaitFor(context.Background(), 20*time.Millisecond, func(ctx context.Context) (bool, string, error) {
			st, err := netStatus(ctx, c, job, 0)
			if err != nil || len(st.Workers) == 0 || st.Workers[0].Worker == "" || st.State != "running" {
				return false, fmt.Sprint(st.State, err), nil
			}
			victim = slices.Index(ids, st.Workers[0].Worker.String())
			return true, "", nil
		})
		if err != nil || victim <= 0 {
			t.Fatalf("no running worker found: %v (victim %d)", err, victim)
		}
		if err := tn.Kill(victim); err != nil {
			t.Fatal(err)
		}
		// Restart the victim however this subtest ends: later subtests use every node.
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := tn.StartNode(ctx, victim); err != nil {
				t.Fatal(err)
			}
		}()
		st := waitNet(t, c, job)
		// Results hold failures too (a worker that could not run the job
		// signs why); the one that carried the verdict must come from a
		// live worker and have succeeded.
		var winner *dist.ResultStatus
		for i := range st.Results {
			if st.Results[i].Agrees {
				winner = &st.Results[i]
			}
		}
		if st.Verdict != quorum.Verified || winner == nil || winner.Worker.String() == ids[victim] || winner.ExitCode != 0 {
			t.Fatalf("after killing node%d (%s): %s (%s); results: %s", victim, ids[victim], st.Verdict, st.Reason, describeResults(st))
		}
	})
	t.Run("50 jobs, a worker killed and restarted among them", func(t *testing.T) {
		const victim = 4
		type sub struct {
			c   *client.Client
			job string
		}
		var subs []sub
		mods := map[int]string{}
		for i := 0; i < victim; i++ {
			mods[i] = upload(t, tn.Node(i).Client(), mods0["pi"])
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for k := 0; k < 50; k++ {
			i := k % victim
			c := tn.Node(i).Client()
			subs = append(subs, sub{c, submit(t, c, mods[i], 1, "-seed", fmt.Sprint(k), "-n", "2000000")})
			switch k {
			case 10:
				if err := tn.Kill(victim); err != nil {
					t.Fatal(err)
				}
			case 30:
				if err := tn.StartNode(ctx, victim); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, s := range subs {
			if st := waitNet(t, s.c, s.job); st.Verdict != quorum.Verified {
				t.Errorf("job %s: %s (%s)", s.job, st.Verdict, st.Reason)
			}
		}
	})
	t.Run("submitter restarted with jobs in flight", func(t *testing.T) {
		c := tn.Node(2).Client()
		mod := upload(t, c, mods["pi"])
		var jobs []string
		for i := 0; i < 3; i++ {
			jobs = append(jobs, submit(t, c, mod, 1, "-seed", fmt.Sprint(i), "-n", "100000000"))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for _, job := range jobs {
			if st, err := netStatus(ctx, c, job, 0); err != nil || st.Terminal() {
				t.Fatalf("job %s ended before the restart (%+v, %v); make it longer", job, st, err)
			}
		}
		if err := tn.Restart(ctx, 2); err != nil {
			t.Fatal(err)
		}
		c = tn.Node(2).Client()
		for _, job := range jobs {
			st := waitNet(t, c, job)
			if st.Verdict != quorum.Verified || st.Results[0].ExitCode != 0 {
				t.Errorf("job %s after the submitter's restart: %s (%s) %+v", job, st.Verdict, st.Reason, st.Results)
			}
		}
	})
}

func TestE2ECheaters(t *testing.T) {
	// Four nodes: node0 submits; nodes 1-3 are the only workers of a
	// 3-replica job. Node 2 cheats; in the second testnet nodes 2 and 3 do.
	for _, tc := range []struct {
		name     string
		cheaters []int
		want     quorum.Kind
	}{
		{"one cheater outvoted", []int{2}, quorum.Verified},
		{"two different cheaters", []int{2, 3}, quorum.Mismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tn, mods := e2e(t, 4, func(i int) []string {
				if slices.Contains(tc.cheaters, i) {
					return []string{dist.CheatEnv + "=" + string(dist.CheatWrongStdout)}
				}
				return nil
			})
			c := tn.Node(0).Client()
			st := waitNet(t, c, submit(t, c, upload(t, c, mods["hello"]), 3))
			if st.Verdict != tc.want {
				t.Fatalf("verdict %s (%s), want %s", st.Verdict, st.Reason, tc.want)
			}
			if tc.want == quorum.Verified {
				cheater := tn.Node(2).PeerID
				if len(st.Disagreeing) != 1 || st.Disagreeing[0] != cheater || !strings.Contains(st.Reason, cheater.String()) {
					t.Fatalf("disagreeing %v, reason %q; want the cheater %s named", st.Disagreeing, st.Reason, cheater)
				}
			}
		})
	}
}
