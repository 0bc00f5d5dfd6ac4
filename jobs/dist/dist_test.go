package dist

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/jobs"
	"github.com/shoalnet/shoal/jobs/capacity"
	"github.com/shoalnet/shoal/jobs/quorum"
)

func TestOneReplica(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{})
	c.mgr.endedGrace = 10 * time.Millisecond
	st := c.run(c.spec(1, 1, "hello"))
	if st.State != jobs.StateDone || st.Verdict != quorum.Verified {
		t.Fatalf("job ended %s/%s (%s), want done/verified", st.State, st.Verdict, st.Reason)
	}
	if len(st.Results) != 1 || st.Results[0].Worker == c.nodes[0].id || !st.Results[0].Agrees {
		t.Fatalf("results = %+v, want one agreeing result from another node", st.Results)
	}
	// An ended job leaves memory and is read from the store.
	waitFor(t, "the ended job to leave memory", func() bool { return c.mgr.lookup(st.Job) == nil })
	ctx := context.Background()
	if got, err := c.mgr.Wait(ctx, st.Job); err != nil || got.Verdict != quorum.Verified || len(got.Results) != 1 {
		t.Fatalf("Wait on the ended job = %+v, %v", got, err)
	}
	if err := c.mgr.Cancel(ctx, st.Job); err != nil {
		t.Fatalf("Cancel of an ended job = %v, want nil", err)
	}
	if err := c.mgr.Submit(ctx, c.mgr.mustSpec(t, st.Job)); err != nil || c.mgr.lookup(st.Job) != nil {
		t.Fatalf("submitting the ended job again = %v (in memory: %v); want a no-op", err, c.mgr.lookup(st.Job) != nil)
	}
	// A spec just made goes in without looking for an earlier run of it,
	// and runs the same.
	fresh := c.spec(1, 1, "hello")
	if err := c.mgr.SubmitNew(ctx, fresh); err != nil {
		t.Fatalf("SubmitNew = %v", err)
	}
	if got, err := c.mgr.Wait(ctx, fresh.ID); err != nil || got.Verdict != quorum.Verified {
		t.Fatalf("Wait on a job submitted new = %+v, %v", got, err)
	}
	waitFor(t, "the second job to leave memory", func() bool { return c.mgr.lookup(fresh.ID) == nil })
	// Reading it back after a restart of the manager gives the same.
	c.mgr.Close()
	c.startManager()
	got, err := c.mgr.Status(context.Background(), st.Job)
	if err != nil || got.Verdict != quorum.Verified || len(got.Results) != 1 {
		t.Fatalf("Status after restart = %+v, %v", got, err)
	}
	list, err := c.mgr.List(context.Background())
	if err != nil || len(list) != 2 || !slices.ContainsFunc(list, func(s Status) bool { return s.Job == st.Job }) ||
		!slices.ContainsFunc(list, func(s Status) bool { return s.Job == fresh.ID }) {
		t.Fatalf("List = %v, %v; want the two jobs", list, err)
	}
}

func TestThreeReplicas(t *testing.T) {
	c := newCluster(t, 4, clusterOpts{})
	st := c.run(c.spec(3, 2))
	if st.Verdict != quorum.Verified || len(st.Results) != 3 {
		t.Fatalf("job ended %s with %d results (%s), want verified with 3", st.Verdict, len(st.Results), st.Reason)
	}
	if w := workersOf(st); len(w) != 3 || w[c.nodes[0].id] {
		t.Fatalf("workers = %v, want 3 distinct peers other than the submitter", w)
	}
	for _, r := range st.Results {
		if !r.Agrees {
			t.Errorf("result of %s does not agree", r.Worker)
		}
	}
}

func TestDeclineReplaced(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{workerCfg: func(i int, wc *WorkerConfig) {
		if i == 1 {
			wc.Slots = 0 // declines every offer
		}
	}})
	// The view still claims node 1 is the freest, so it is offered first.
	c.view.set([]capacity.Entry{entryFor(c.nodes[1].id, 4), entryFor(c.nodes[2].id, 1)})
	st := c.run(c.spec(1, 1))
	if st.Verdict != quorum.Verified || st.Results[0].Worker != c.nodes[2].id {
		t.Fatalf("job ended %s on %v (%s), want verified on node 2", st.Verdict, workersOf(st), st.Reason)
	}
	if st.Attempts != 2 || st.Workers[0].Attempts != 2 {
		t.Errorf("attempts = %d (replica %d), want 2", st.Attempts, st.Workers[0].Attempts)
	}
}

func TestDyingWorkerReplaced(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	started := make(chan struct{}, 1)
	c := newCluster(t, 3, clusterOpts{workerCfg: func(i int, wc *WorkerConfig) {
		if i == 1 {
			r := wc.Executor.(*fakeRunner)
			r.block, r.started = block, started
		}
	}})
	c.view.set([]capacity.Entry{entryFor(c.nodes[1].id, 4), entryFor(c.nodes[2].id, 1)})
	spec := c.spec(1, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.mgr.Submit(ctx, spec); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("the job never started on node 1")
	}
	// Node 1 dies mid-job.
	c.nodes[1].h.Close()
	st, err := c.mgr.Wait(ctx, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Verdict != quorum.Verified || st.Results[0].Worker != c.nodes[2].id {
		t.Fatalf("job ended %s on %v (%s), want verified on node 2", st.Verdict, workersOf(st), st.Reason)
	}
}

func TestCheaterOutvoted(t *testing.T) {
	c := newCluster(t, 4, clusterOpts{workerCfg: func(i int, wc *WorkerConfig) {
		if i == 2 {
			wc.Cheat = CheatWrongStdout
		}
	}})
	st := c.run(c.spec(3, 2))
	if st.Verdict != quorum.Verified {
		t.Fatalf("verdict %s (%s), want verified", st.Verdict, st.Reason)
	}
	if len(st.Disagreeing) != 1 || st.Disagreeing[0] != c.nodes[2].id {
		t.Fatalf("disagreeing = %v, want the cheater %s", st.Disagreeing, c.nodes[2].id)
	}
	honest, _ := fakeResult(c.nodes[1].key, c.spec(1, 1), jobs.FailureNone)
	for _, r := range st.Results {
		if r.Agrees != (r.Worker != c.nodes[2].id) {
			t.Errorf("result of %s agrees=%v", r.Worker, r.Agrees)
		}
		if r.Agrees && r.Stdout != honest.Result.Stdout {
			t.Errorf("verified stdout %s, want the honest %s", r.Stdout, honest.Result.Stdout)
		}
	}
	if !strings.Contains(st.Reason, c.nodes[2].id.String()) {
		t.Errorf("reason %q does not name the cheater", st.Reason)
	}
}

func TestTwoCheatersMismatch(t *testing.T) {
	c := newCluster(t, 4, clusterOpts{workerCfg: func(i int, wc *WorkerConfig) {
		if i >= 2 {
			wc.Cheat = CheatWrongStdout
		}
	}})
	st := c.run(c.spec(3, 2))
	if st.Verdict != quorum.Mismatch || st.State != jobs.StateFailed {
		t.Fatalf("job ended %s/%s (%s), want failed/mismatch", st.State, st.Verdict, st.Reason)
	}
	for _, r := range st.Results {
		if r.Agrees {
			t.Errorf("result of %s marked agreeing in a mismatch", r.Worker)
		}
	}
}

func TestNoWorkerBlocker(t *testing.T) {
	c := newCluster(t, 2, clusterOpts{mgrCfg: func(mc *ManagerConfig) {
		mc.Deadline = func(*jobs.SignedSpec) time.Duration { return time.Hour }
	}})
	c.view.set([]capacity.Entry{entryFor(c.nodes[1].id, 0)})
	spec := c.spec(1, 1)
	ctx := context.Background()
	if err := c.mgr.Submit(ctx, spec); err != nil {
		t.Fatal(err)
	}
	var st Status
	waitFor(t, "a blocker", func() bool {
		st, _ = c.mgr.Status(ctx, spec.ID)
		return strings.Contains(st.Blocker, "no peer has a free slot")
	})
	if st.State != jobs.StateQueued {
		t.Errorf("state %s while blocked, want queued", st.State)
	}
	// A slot frees up: the job runs.
	c.view.set([]capacity.Entry{entryFor(c.nodes[1].id, 1)})
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := c.mgr.Wait(wctx, spec.ID)
	if err != nil || st.Verdict != quorum.Verified || st.Blocker != "" {
		t.Fatalf("after a slot freed: %+v, %v", st, err)
	}
}

func TestCancel(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	started := make(chan struct{}, 1)
	c := newCluster(t, 2, clusterOpts{workerCfg: func(i int, wc *WorkerConfig) {
		r := wc.Executor.(*fakeRunner)
		r.block, r.started = block, started
	}})
	spec := c.spec(1, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.mgr.Submit(ctx, spec); err != nil {
		t.Fatal(err)
	}
	<-started
	if err := c.mgr.Cancel(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	st, err := c.mgr.Status(ctx, spec.ID)
	if err != nil || st.State != jobs.StateCancelled {
		t.Fatalf("after Cancel: %+v, %v; want cancelled", st, err)
	}
	waitFor(t, "the worker to stop the run", func() bool { return c.nodes[1].runner.stopped.Load() == 1 })
	waitFor(t, "the worker's slot to free", func() bool { return c.nodes[1].worker.Free() == 2 })
}

func TestResumeAfterRestart(t *testing.T) {
	block := make(chan struct{})
	started := make(chan struct{}, 4)
	c := newCluster(t, 4, clusterOpts{workerCfg: func(i int, wc *WorkerConfig) {
		r := wc.Executor.(*fakeRunner)
		r.block, r.started = block, started
	}})
	spec := c.spec(3, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.mgr.Submit(ctx, spec); err != nil {
		t.Fatal(err)
	}
	<-started
	// The submitter stops with the job in flight, then comes back.
	c.mgr.Close()
	if st, err := c.mgr.Status(ctx, spec.ID); err != nil || st.Terminal() {
		t.Fatalf("after Close: %+v, %v; want the job pending", st, err)
	}
	close(block)
	c.startManager()
	st, err := c.mgr.Wait(ctx, spec.ID)
	if err != nil || st.Verdict != quorum.Verified {
		t.Fatalf("resumed job: %+v, %v; want verified", st, err)
	}
}

func TestWorkerFailureIsNotAVote(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{workerCfg: func(i int, wc *WorkerConfig) {
		if i == 1 {
			wc.Executor.(*fakeRunner).failure = jobs.FailureInput
		}
	}})
	c.view.set([]capacity.Entry{entryFor(c.nodes[1].id, 4), entryFor(c.nodes[2].id, 1)})
	st := c.run(c.spec(1, 1))
	if st.Verdict != quorum.Verified || len(st.Results) != 2 {
		t.Fatalf("job ended %s with %d results (%s), want verified with the failed one kept", st.Verdict, len(st.Results), st.Reason)
	}
	if st.Results[0].Vote || st.Results[0].Worker != c.nodes[1].id {
		t.Errorf("first result %+v, want node 1's non-vote", st.Results[0])
	}
}

func TestSelfOnlyAsLastResort(t *testing.T) {
	// Node 0 runs a worker too, and is the only peer in the view.
	c := newCluster(t, 2, clusterOpts{})
	self := c.nodes[0]
	w, err := NewWorker(WorkerConfig{Host: self.h, Key: self.key, Executor: self.runner, Slots: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	c.mgr.Close()
	c.mcfg.Local = w
	c.startManager()
	c.view.set([]capacity.Entry{entryFor(self.id, 1), entryFor(c.nodes[1].id, 1)})
	st := c.run(c.spec(2, 2))
	if st.Verdict != quorum.Verified || !workersOf(st)[self.id] || !workersOf(st)[c.nodes[1].id] {
		t.Fatalf("job ended %s on %v, want verified on both nodes", st.Verdict, workersOf(st))
	}
	st = c.run(c.spec(1, 1))
	if st.Results[0].Worker != c.nodes[1].id {
		t.Fatalf("single replica ran on %s, want the other peer", st.Results[0].Worker)
	}
}

func TestManagerConfigRetries(t *testing.T) {
	for _, tt := range []struct{ in, want int }{{0, 3}, {NoRetries, 0}, {5, 5}} {
		c := ManagerConfig{Retries: tt.in}
		c.setDefaults()
		if c.Retries != tt.want {
			t.Errorf("Retries %d after defaults = %d, want %d", tt.in, c.Retries, tt.want)
		}
	}
}

// mustSpec reads the spec of stored job id.
func (m *Manager) mustSpec(t *testing.T, id cid.Cid) *jobs.SignedSpec {
	t.Helper()
	rec, err := m.st.get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Spec
}
