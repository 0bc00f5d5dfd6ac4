package node

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/multiformats/go-multicodec"

	"github.com/shoalnet/shoal/crypto"
	"github.com/shoalnet/shoal/jobs"
	"github.com/shoalnet/shoal/jobs/dist"
	"github.com/shoalnet/shoal/jobs/quorum"
	"github.com/shoalnet/shoal/node/client"
)

func TestSetReplicas(t *testing.T) {
	tests := []struct {
		replicas, quorum    int
		wantRep, wantQuorum int
		ok                  bool
	}{
		{0, 0, 1, 1, true},
		{3, 0, 3, 2, true},
		{3, 3, 3, 3, true},
		{4, 0, 4, 3, true},
		{3, 4, 0, 0, false},
		{-1, 0, 0, 0, false},
		{jobs.MaxReplicas + 1, 0, 0, 0, false},
	}
	for _, tt := range tests {
		var env jobs.Envelope
		err := setReplicas(&env, tt.replicas, tt.quorum)
		if (err == nil) != tt.ok || tt.ok && (env.Replicas != tt.wantRep || env.Quorum != tt.wantQuorum) {
			t.Errorf("setReplicas(%d, %d) = %d/%d, %v; want %d/%d ok=%v", tt.replicas, tt.quorum, env.Replicas, env.Quorum, err, tt.wantRep, tt.wantQuorum, tt.ok)
		}
	}
}

// TestMergeNetStatus checks that a verified job shows the agreeing result,
// its verdict and the disagreeing worker.
func TestMergeNetStatus(t *testing.T) {
	key := func(b byte) crypto.PrivKey {
		k, err := crypto.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{b}, 64)))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	sub := key(1)
	subID, _ := crypto.PeerID(sub)
	env, err := jobs.NewEnvelope(subID, jobs.Computation{Module: crypto.CIDOf(multicodec.Raw, []byte("m"))}, bytes.NewReader(make([]byte, 16)), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	env.Replicas, env.Quorum = 3, 2
	spec, err := jobs.SignSpec(sub, env)
	if err != nil {
		t.Fatal(err)
	}
	st := dist.Status{Job: spec.ID, State: jobs.StateDone, Verdict: quorum.Verified, Submitter: subID}
	for i, out := range []string{"ok", "wrong", "ok"} {
		k := key(byte(10 + i))
		w, _ := crypto.PeerID(k)
		r := &jobs.Result{Version: jobs.FormatVersion, Job: spec.ID, Computation: spec.CompCID, Worker: w,
			Stdout: crypto.CIDOf(multicodec.Raw, []byte(out)), Stderr: crypto.CIDOf(multicodec.Raw, nil),
			Outputs: crypto.CIDOf(multicodec.Raw, nil), WallTime: time.Duration(i+1) * 1500 * time.Microsecond, PeakMemory: uint64(i+1) << 16}
		sr, err := jobs.SignResult(k, r)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := sr.Encode()
		st.Results = append(st.Results, dist.ResultStatus{Worker: w, CID: sr.CID, Stdout: r.Stdout, Stderr: r.Stderr,
			Outputs: r.Outputs, Vote: true, Agrees: out == "ok", Signed: b})
		if out != "ok" {
			st.Disagreeing = append(st.Disagreeing, w)
		}
	}
	var info client.JobInfo
	mergeNetStatus(&info, spec, st)
	if info.State != "done" || info.Verdict != "verified" || len(info.Results) != 3 || len(info.Disagreeing) != 1 {
		t.Fatalf("mergeNetStatus = %+v", info)
	}
	if info.Stdout != crypto.CIDOf(multicodec.Raw, []byte("ok")).String() || info.ExitCode == nil || *info.ExitCode != 0 {
		t.Errorf("top-level result %s exit %v, want the agreed stdout and 0", info.Stdout, info.ExitCode)
	}
	// Wall time and peak memory come from each signed result.
	for i, r := range info.Results {
		if wantMS, wantMem := float64(i+1)*1.5, uint64(i+1)<<16; r.WallMS != wantMS || r.PeakMemory != wantMem {
			t.Errorf("result %d: wall_ms %v, peak_memory %d; want %v, %d", i, r.WallMS, r.PeakMemory, wantMS, wantMem)
		}
		if r.Worker != st.Results[i].Worker.String() || r.Result != st.Results[i].CID.String() {
			t.Errorf("result %d: worker %s, result %s; want %s, %s", i, r.Worker, r.Result, st.Results[i].Worker, st.Results[i].CID)
		}
	}
	// A status whose signed record is missing still lists the result,
	// without the figures only the record holds.
	st.Results[0].Signed = nil
	mergeNetStatus(&info, spec, st)
	if r := info.Results[0]; r.Worker != st.Results[0].Worker.String() || r.Stdout != st.Results[0].Stdout.String() || r.WallMS != 0 {
		t.Errorf("result without a record = %+v; want worker %s, its stdout and no wall time", r, st.Results[0].Worker)
	}
}

// TestJobsNetConfig checks that the [jobs] table reaches the worker and
// the job manager.
func TestJobsNetConfig(t *testing.T) {
	c := JobsConfig{
		Slots: 3, Queue: 7, AllowSelf: true, Retries: 9,
		CommitWait: Duration(1500 * time.Millisecond), OfferTimeout: Duration(2 * time.Second), FetchAllowance: Duration(time.Minute),
	}
	wc := c.workerConfig(dist.WorkerConfig{Labels: map[string]string{"k": "v"}})
	if wc.Slots != 3 || wc.Queue != 7 || wc.Labels["k"] != "v" {
		t.Errorf("workerConfig = slots %d, queue %d, labels %v; want 3, 7, the labels passed in", wc.Slots, wc.Queue, wc.Labels)
	}
	mc := c.managerConfig(dist.ManagerConfig{RevealTimeout: time.Second})
	if !mc.AllowSelf || mc.Retries != 9 || mc.CommitWait != 1500*time.Millisecond || mc.OfferTimeout != 2*time.Second ||
		mc.FetchAllowance != time.Minute || mc.RevealTimeout != time.Second {
		t.Errorf("managerConfig = allow_self %v, retries %d, commit_wait %s, offer_timeout %s, fetch_allowance %s, reveal %s; want true, 9, 1.5s, 2s, 1m0s, 1s",
			mc.AllowSelf, mc.Retries, mc.CommitWait, mc.OfferTimeout, mc.FetchAllowance, mc.RevealTimeout)
	}
	// retries = 0 means none, not the manager's default.
	c.Retries = 0
	if mc := c.managerConfig(dist.ManagerConfig{}); mc.Retries != dist.NoRetries {
		t.Errorf("retries = 0 gives ManagerConfig.Retries %d, want dist.NoRetries", mc.Retries)
	}
}

// TestJobsNetResultTimes runs a job submitted on a node without slots on
// its one peer with a slot, and checks that the result the API shows, on
// the submitter and on the worker that heard it announced, carries the
// run's wall time and peak memory.
func TestJobsNetResultTimes(t *testing.T) {
	dirA := testRepo(t, func(c *Config) { c.Jobs.Slots = 0 })
	a := startNode(t, dirA)
	dirB := testRepo(t, func(c *Config) {
		c.Jobs.Slots, c.Jobs.Queue = 1, 0
		c.Network.Bootstrap = []string{a.p2pAddrs()[0]}
	})
	b := startNode(t, dirB)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitFor(ctx, t, "a sees b's free slot", func() bool {
		e, ok := a.capacity.svc.Lookup(b.PeerID())
		return ok && e.SlotsFree > 0
	})
	ca, err := client.New(dirA)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := ca.UploadJobPayload(ctx, bytes.NewReader(helloWasm(t)), false)
	if err != nil {
		t.Fatal(err)
	}
	j, err := ca.SubmitJob(ctx, client.JobRequest{Module: mod, Args: []string{"net"}, TimeoutMS: 60_000})
	if err != nil {
		t.Fatal(err)
	}
	j = waitJob(t, ca, j.Job)
	if j.State != "done" || j.ExitCode == nil || *j.ExitCode != 0 || len(j.Results) != 1 {
		t.Fatalf("job = %+v; want done, exit 0, one result", j)
	}
	checkTimes := func(where string, r client.JobResult) {
		t.Helper()
		if r.Worker != b.PeerID().String() || r.WallMS <= 0 || r.PeakMemory == 0 {
			t.Errorf("%s: result = %+v; want worker %s, wall_ms > 0 and peak_memory > 0", where, r, b.PeerID())
		}
	}
	checkTimes("submitter", j.Results[0])

	cb, err := client.New(dirB)
	if err != nil {
		t.Fatal(err)
	}
	var jb client.JobInfo
	waitFor(ctx, t, "b shows the announced job with its result", func() bool {
		jb, err = cb.Job(ctx, j.Job)
		return err == nil && len(jb.Results) == 1
	})
	checkTimes("worker", jb.Results[0])
}
