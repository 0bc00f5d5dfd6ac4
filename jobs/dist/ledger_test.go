package dist

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoalnet/shoal/jobs"
	"github.com/shoalnet/shoal/jobs/capacity"
	"github.com/shoalnet/shoal/jobs/quorum"
)

// memLedger is a Recorder that keeps entries in memory, or fails.
type memLedger struct {
	mu      sync.Mutex
	kinds   []string // guarded by mu
	bodies  [][]byte // guarded by mu
	failing bool     // guarded by mu
}

func (l *memLedger) Record(_ context.Context, kind string, body []byte) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failing {
		return 0, errors.New("disk on fire")
	}
	l.kinds = append(l.kinds, kind)
	l.bodies = append(l.bodies, bytes.Clone(body))
	return uint64(len(l.kinds) - 1), nil
}

// batchLedger is a memLedger that also records several entries at once
// (jobs.BatchRecorder), and counts how often it was asked to.
type batchLedger struct {
	memLedger
	batches atomic.Int32
}

func (l *batchLedger) RecordAll(_ context.Context, kinds []string, bodies [][]byte) ([]uint64, error) {
	l.batches.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failing {
		return nil, errors.New("disk on fire")
	}
	var seqs []uint64
	for i := range kinds {
		l.kinds = append(l.kinds, kinds[i])
		l.bodies = append(l.bodies, bytes.Clone(bodies[i]))
		seqs = append(seqs, uint64(len(l.kinds)-1))
	}
	return seqs, nil
}

// TestSubmittedRecordedWithVerdict checks when a submitter records a job's
// job.submitted entry: with the job.verdict entry, in one append, for a job
// that ends within submittedDefer; on its own, before the verdict, for one
// that runs longer.
func TestSubmittedRecordedWithVerdict(t *testing.T) {
	sub := &batchLedger{}
	c := newCluster(t, 3, clusterOpts{
		workerCfg: func(i int, wc *WorkerConfig) {
			if i == 2 { // the slow worker
				wc.Executor = &fakeRunner{key: wc.Key, self: wc.Host.ID(), delay: submittedDefer + 300*time.Millisecond}
			}
		},
		mgrCfg: func(mc *ManagerConfig) { mc.Recorder = sub },
	})
	c.view.set([]capacity.Entry{entryFor(c.nodes[1].id, 2)})
	st := c.run(c.spec(1, 1))
	if st.Verdict != quorum.Verified || st.Ledger == nil || st.Ledger.Submitted == nil || st.Ledger.Verdict == nil {
		t.Fatalf("short job: verdict %s, ledger %+v; want verified with both entries", st.Verdict, st.Ledger)
	}
	kinds, _ := sub.entries()
	if !slices.Equal(kinds, []string{jobs.LedgerKindSubmitted, jobs.LedgerKindVerdict}) ||
		*st.Ledger.Submitted != 0 || *st.Ledger.Verdict != 1 || sub.batches.Load() != 1 {
		t.Fatalf("short job: recorded %v (numbers %d, %d) in %d batches; want submitted then verdict in one",
			kinds, *st.Ledger.Submitted, *st.Ledger.Verdict, sub.batches.Load())
	}

	c.view.set([]capacity.Entry{entryFor(c.nodes[2].id, 2)})
	spec := c.spec(1, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.mgr.Submit(ctx, spec); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(submittedDefer + 200*time.Millisecond + 5*time.Second)
	for {
		// The entry appears on its own while the job still runs.
		kinds, _ := sub.entries()
		if len(kinds) == 3 {
			if kinds[2] != jobs.LedgerKindSubmitted {
				t.Fatalf("long job: third entry is %s, want job.submitted", kinds[2])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("long job: entries %v; its job.submitted entry never came", kinds)
		}
		time.Sleep(10 * time.Millisecond)
	}
	st, err := c.mgr.Wait(ctx, spec.ID)
	if err != nil || st.Verdict != quorum.Verified || st.Ledger == nil || st.Ledger.Submitted == nil || st.Ledger.Verdict == nil {
		t.Fatalf("long job: %v, verdict %s, ledger %+v; want verified with both entries", err, st.Verdict, st.Ledger)
	}
	kinds, _ = sub.entries()
	if len(kinds) != 4 || kinds[3] != jobs.LedgerKindVerdict || *st.Ledger.Submitted != 2 || *st.Ledger.Verdict != 3 || sub.batches.Load() != 1 {
		t.Fatalf("long job: recorded %v (numbers %d, %d) in %d batches; want its submitted entry alone, then its verdict",
			kinds, *st.Ledger.Submitted, *st.Ledger.Verdict, sub.batches.Load())
	}
}

func (l *memLedger) entries() ([]string, [][]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.kinds...), append([][]byte(nil), l.bodies...)
}

func TestRecordsInLedger(t *testing.T) {
	ledgers := make([]*memLedger, 4)
	for i := range ledgers {
		ledgers[i] = &memLedger{}
	}
	var ended []Status
	var endedMu sync.Mutex
	c := newCluster(t, 4, clusterOpts{
		workerCfg: func(i int, wc *WorkerConfig) { wc.Recorder = ledgers[i] },
		mgrCfg: func(mc *ManagerConfig) {
			mc.Recorder = ledgers[0]
			mc.Ended = func(st Status) { endedMu.Lock(); ended = append(ended, st); endedMu.Unlock() }
		},
	})
	spec := c.spec(3, 2)
	st := c.run(spec)
	if st.Verdict != quorum.Verified {
		t.Fatalf("job ended %s (%s), want verified", st.Verdict, st.Reason)
	}
	if st.Ledger == nil || st.Ledger.Submitted == nil || st.Ledger.Verdict == nil || st.Ledger.Error != "" {
		t.Fatalf("Status.Ledger = %+v, want both entries recorded", st.Ledger)
	}
	kinds, bodies := ledgers[0].entries()
	if len(kinds) != 2 || kinds[0] != jobs.LedgerKindSubmitted || kinds[1] != jobs.LedgerKindVerdict ||
		*st.Ledger.Submitted != 0 || *st.Ledger.Verdict != 1 {
		t.Fatalf("submitter recorded %v (status %d, %d), want job.submitted then job.verdict", kinds, *st.Ledger.Submitted, *st.Ledger.Verdict)
	}
	sub, err := jobs.DecodeSubmittedEntry(bodies[0])
	if err != nil || sub.Job != spec.ID || sub.Spec == nil {
		t.Fatalf("job.submitted body = %+v, %v", sub, err)
	}
	ver, err := jobs.DecodeVerdictEntry(bodies[1])
	if err != nil || ver.Job != spec.ID || ver.Verdict != string(quorum.Verified) || len(ver.Results) != 3 {
		t.Fatalf("job.verdict body = %+v, %v", ver, err)
	}
	inVerdict := map[peer.ID][]byte{}
	for _, r := range ver.Results {
		if r.Signed == nil {
			t.Fatalf("verdict result of %s has no signed result", r.Worker)
		}
		b, _ := r.Signed.Encode()
		inVerdict[r.Worker] = b
	}
	for i, nd := range c.nodes[1:] {
		kinds, bodies := ledgers[i+1].entries()
		if len(kinds) != 1 || kinds[0] != jobs.LedgerKindExecuted {
			t.Fatalf("worker %d recorded %v, want one job.executed", i+1, kinds)
		}
		exe, err := jobs.DecodeExecutedEntry(bodies[0])
		if err != nil || exe.Submitter != c.nodes[0].id {
			t.Fatalf("worker %d job.executed = %+v, %v", i+1, exe, err)
		}
		b, _ := exe.Result.Encode()
		if !bytes.Equal(b, inVerdict[nd.id]) {
			t.Errorf("worker %d's recorded result differs from the one in the verdict", i+1)
		}
	}
	// Ended runs after the job shows as ended (after the announcement), so wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		endedMu.Lock()
		n := len(ended)
		ok := n == 1 && ended[0].Job == spec.ID && ended[0].Terminal()
		endedMu.Unlock()
		if ok {
			break
		}
		if n > 1 || time.Now().After(deadline) {
			t.Fatalf("Ended called with %d statuses, want the one ended job", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLedgerFailures(t *testing.T) {
	sub := &memLedger{failing: true}
	bad := &memLedger{failing: true}
	c := newCluster(t, 3, clusterOpts{
		workerCfg: func(i int, wc *WorkerConfig) {
			if i == 1 {
				wc.Recorder = bad
			}
		},
		mgrCfg: func(mc *ManagerConfig) { mc.Recorder = sub },
	})
	// Node 1 is offered first; it cannot record its result, so it
	// withholds it and the job runs on node 2.
	c.view.set([]capacity.Entry{entryFor(c.nodes[1].id, 4), entryFor(c.nodes[2].id, 1)})
	st := c.run(c.spec(1, 1))
	if st.Verdict != quorum.Verified || len(st.Results) != 1 || st.Results[0].Worker != c.nodes[2].id {
		t.Fatalf("job ended %s on %v (%s), want verified on node 2", st.Verdict, workersOf(st), st.Reason)
	}
	if st.Attempts != 2 || c.nodes[1].runner.runs.Load() != 1 {
		t.Errorf("%d attempts, node 1 ran %d jobs; want node 1 to run it, withhold the result, and a second attempt",
			st.Attempts, c.nodes[1].runner.runs.Load())
	}
	if kinds, _ := bad.entries(); len(kinds) != 0 {
		t.Errorf("the failing ledger holds %v", kinds)
	}
	if st.Ledger == nil || !strings.Contains(st.Ledger.Error, "job.submitted") || !strings.Contains(st.Ledger.Error, "job.verdict") ||
		st.Ledger.Submitted != nil || st.Ledger.Verdict != nil {
		t.Errorf("Status.Ledger = %+v, want both failures named", st.Ledger)
	}
	// The failure survives a restart of the manager.
	c.mgr.Close()
	c.startManager()
	got, err := c.mgr.Status(context.Background(), st.Job)
	if err != nil || got.Ledger == nil || got.Ledger.Error != st.Ledger.Error {
		t.Errorf("Status after restart = %+v, %v", got.Ledger, err)
	}
}

func TestConvictedNeverChosen(t *testing.T) {
	var mu sync.Mutex
	convicted := map[peer.ID]bool{}
	c := newCluster(t, 3, clusterOpts{mgrCfg: func(mc *ManagerConfig) {
		mc.Convicted = func(p peer.ID) bool { mu.Lock(); defer mu.Unlock(); return convicted[p] }
	}})
	mu.Lock()
	convicted[c.nodes[1].id] = true
	mu.Unlock()
	c.view.set([]capacity.Entry{entryFor(c.nodes[1].id, 4), entryFor(c.nodes[2].id, 1)})
	for range 3 {
		st := c.run(c.spec(1, 1))
		if st.Verdict != quorum.Verified || st.Results[0].Worker != c.nodes[2].id {
			t.Fatalf("job ran on %v, want node 2 only (node 1 is convicted)", workersOf(st))
		}
	}
	// With only the convicted peer in the view the job waits, and says why.
	c.view.set([]capacity.Entry{entryFor(c.nodes[1].id, 4)})
	spec := c.spec(1, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.mgr.Submit(ctx, spec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a blocker naming the convicted peer", func() bool {
		st, _ := c.mgr.Status(ctx, spec.ID)
		return strings.Contains(st.Blocker, "convicted of forking their ledger")
	})
	if n := c.nodes[1].runner.runs.Load(); n != 0 {
		t.Errorf("the convicted peer ran %d jobs", n)
	}
}

func TestStatusJSONHasPlainCIDs(t *testing.T) {
	c := newCluster(t, 2, clusterOpts{})
	st := c.run(c.spec(1, 1))
	b, err := json.Marshal([]Status{st})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(`{"/"`)) || !bytes.Contains(b, []byte(`"job":"`+st.Job.String()+`"`)) ||
		!bytes.Contains(b, []byte(`"stdout":"`+st.Results[0].Stdout.String()+`"`)) {
		t.Fatalf("status JSON = %s; want CIDs as plain strings", b)
	}
	var got []Status
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Job != st.Job || got[0].Results[0].CID != st.Results[0].CID ||
		got[0].Results[0].Outputs != st.Results[0].Outputs || !bytes.Equal(got[0].Results[0].Signed, st.Results[0].Signed) {
		t.Fatalf("round trip = %+v, want %+v", got, st)
	}
	if err := json.Unmarshal([]byte(`{"job":"nope"}`), &got[0]); err == nil {
		t.Error("a status with a bad job CID decodes")
	}
}

// TestCheatUnrecorded checks the test-only worker that returns honest
// results but keeps them out of its ledger: the job is verified, and that
// worker's ledger stays empty while the honest workers' do not.
func TestCheatUnrecorded(t *testing.T) {
	if m, err := ParseCheatMode("unrecorded"); err != nil || m != CheatUnrecorded {
		t.Fatalf("ParseCheatMode(unrecorded) = %q, %v", m, err)
	}
	if _, err := ParseCheatMode("sloppy"); err == nil || !strings.Contains(err.Error(), "unrecorded") {
		t.Fatalf("ParseCheatMode(sloppy) = %v, want an error listing the modes", err)
	}
	ledgers := make([]*memLedger, 4)
	for i := range ledgers {
		ledgers[i] = &memLedger{}
	}
	c := newCluster(t, 4, clusterOpts{
		workerCfg: func(i int, wc *WorkerConfig) {
			wc.Recorder = ledgers[i]
			if i == 1 {
				wc.Cheat = CheatUnrecorded
			}
		},
	})
	st := c.run(c.spec(3, 2))
	if st.Verdict != quorum.Verified || len(st.Disagreeing) != 0 {
		t.Fatalf("job ended %s (%s), disagreeing %v; want verified by all three", st.Verdict, st.Reason, st.Disagreeing)
	}
	for i := 1; i < 4; i++ {
		kinds, _ := ledgers[i].entries()
		if want := map[bool]int{true: 0, false: 1}[i == 1]; len(kinds) != want {
			t.Errorf("worker %d recorded %d entries, want %d", i, len(kinds), want)
		}
	}
}
