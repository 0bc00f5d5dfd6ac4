package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/jobs"
	"github.com/shoalnet/shoal/jobs/dist"
	"github.com/shoalnet/shoal/node/client"
)

// jobsNetArea is the node's distribution of jobs across peers (a field of
// Node): the worker that serves /shoal/job/1.0.0, the submitter's job
// manager and the results topic.
type jobsNetArea struct {
	// exec runs jobs on this node; the jobs area sets it before
	// startJobsNet runs. Without it the node offers no worker.
	exec   jobs.Executor
	worker *dist.Worker
	mgr    *dist.Manager
	gossip *dist.Gossip
}

// startJobsNet starts the worker (when the node has an executor and
// [jobs] slots > 0), the results topic and the job manager, which resumes
// the jobs this node submitted and had not finished.
func (n *Node) startJobsNet(ctx context.Context) error {
	log := n.log.With("subsystem", "jobs-net")
	a := &n.jobsNet
	cheat, err := dist.ParseCheatMode(os.Getenv(dist.CheatEnv))
	if err != nil {
		return err
	}
	if a.exec != nil && n.cfg.Jobs.Slots > 0 {
		labels := make(map[string]string)
		if svc := n.capacity.svc; svc != nil {
			if e, ok := svc.Lookup(n.id); ok {
				labels = e.Labels
			}
		}
		w, err := dist.NewWorker(n.cfg.Jobs.workerConfig(dist.WorkerConfig{
			Host: n.host, Key: n.key, Executor: a.exec,
			OnFree: n.setFreeSlots, Labels: labels, Cheat: cheat, Recorder: n.Ledger(), Logger: log,
		}))
		if err != nil {
			return err
		}
		a.worker = w
		n.onClose("jobs-net worker", w.Close)
	} else {
		log.Info("this node runs no jobs for others", "slots", n.cfg.Jobs.Slots, "executor", a.exec != nil)
	}
	ds := n.Namespace("jobs-net")
	g, err := dist.NewGossip(n.ps, n.cfg.Network.Name, n.key, ds, log, n.cfg.Jobs.ResultsRetention.Std())
	if err != nil {
		return err
	}
	a.gossip = g
	n.onClose("jobs-net results topic", g.Close)
	if n.capacity.svc == nil {
		return errors.New("jobs-net: the capacity service must start first")
	}
	m, err := dist.NewManager(n.cfg.Jobs.managerConfig(dist.ManagerConfig{
		Host: n.host, Key: n.key, Store: ds, View: n.capacity.svc, Local: a.worker,
		Announcer: g, Latency: n.host.Peerstore().LatencyEWMA, Logger: log, Registerer: n.metrics,
		// See ledger.go: jobs are recorded in the node's ledger, convicted
		// peers are never workers, and the workers' ledgers are replicated.
		Recorder: n.Ledger(), Convicted: n.LedgerConvicted, Ended: n.ledgerJobEnded,
	}))
	if err != nil {
		return err
	}
	a.mgr = m
	n.onClose("jobs-net manager", m.Close)
	return nil
}

// workerConfig returns wc with the worker's settings of the [jobs] table:
// slots and queue.
func (c *JobsConfig) workerConfig(wc dist.WorkerConfig) dist.WorkerConfig {
	wc.Slots, wc.Queue = c.Slots, c.Queue
	return wc
}

// managerConfig returns mc with the scheduling settings of the [jobs]
// table: allow_self, retries, commit_wait, offer_timeout and
// fetch_allowance.
func (c *JobsConfig) managerConfig(mc dist.ManagerConfig) dist.ManagerConfig {
	mc.AllowSelf = c.AllowSelf
	mc.Retries = c.Retries
	if c.Retries == 0 {
		mc.Retries = dist.NoRetries
	}
	mc.CommitWait = c.CommitWait.Std()
	mc.OfferTimeout = c.OfferTimeout.Std()
	mc.FetchAllowance = c.FetchAllowance.Std()
	return mc
}

// setFreeSlots publishes the worker's free slots in the capacity advert.
func (n *Node) setFreeSlots(free int) {
	if svc := n.capacity.svc; svc != nil {
		if err := svc.SetFree(free); err != nil {
			n.log.Debug("could not publish free slots", "free", free, "err", err)
		}
	}
}

// JobManager returns the node's distributed job manager: Submit a job this
// node signed to run it on peers; Status, Watch, Wait, Cancel and List
// follow it. Status also answers for jobs other nodes announced.
func (n *Node) JobManager() *dist.Manager { return n.jobsNet.mgr }

func (n *Node) registerJobsNetRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/net/jobs", n.handleNetJobs)
	mux.HandleFunc("GET /v1/net/jobs/{id}", n.handleNetJob)
	mux.HandleFunc("POST /v1/net/jobs/{id}/cancel", n.handleNetJobCancel)
}

func (n *Node) netJobID(w http.ResponseWriter, r *http.Request) (cid.Cid, bool) {
	id, err := cid.Decode(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("job ID %q is not a CID: %w", r.PathValue("id"), err))
		return cid.Undef, false
	}
	return id, true
}

func (n *Node) handleNetJobs(w http.ResponseWriter, r *http.Request) {
	list, err := n.jobsNet.mgr.List(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

// handleNetJob answers GET /v1/net/jobs/{id}[?wait=D]: the job's
// distributed status; with wait, it answers at the job's next change or
// after D (at most 60 s).
func (n *Node) handleNetJob(w http.ResponseWriter, r *http.Request) {
	id, ok := n.netJobID(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	st, ch, err := n.jobsNet.mgr.Watch(ctx, id)
	if err != nil {
		writeError(w, netJobStatus(err), err)
		return
	}
	if s := r.URL.Query().Get("wait"); s != "" && ch != nil && !st.Terminal() {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("wait=%q: want a duration such as 30s", s))
			return
		}
		t := time.NewTimer(min(d, time.Minute))
		defer t.Stop()
		select {
		case <-ch:
			st, _ = n.jobsNet.mgr.Status(ctx, id)
		case <-t.C:
		case <-ctx.Done():
		}
	}
	writeJSON(w, http.StatusOK, st)
}

func (n *Node) handleNetJobCancel(w http.ResponseWriter, r *http.Request) {
	id, ok := n.netJobID(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if err := n.jobsNet.mgr.Cancel(ctx, id); err != nil {
		writeError(w, netJobStatus(err), err)
		return
	}
	st, _ := n.jobsNet.mgr.Status(ctx, id)
	writeJSON(w, http.StatusOK, st)
}

func netJobStatus(err error) int {
	if errors.Is(err, dist.ErrUnknownJob) {
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

// runNet runs rec's job across the network through the job manager,
// mirroring its progress into rec, and reports true; it reports false when
// this node has no job manager (the job then runs here). When the node
// closes, the job is left unfinished in both stores and resumes on start.
func (s *jobService) runNet(ctx context.Context, rec *jobRecord) bool {
	m := s.n.jobsNet.mgr
	if m == nil {
		return false
	}
	id := rec.spec.ID
	fail := func(err error) {
		s.update(rec, func(i *client.JobInfo) {
			i.State, i.Blocker, i.Failure, i.Reason = string(jobs.StateFailed), "", string(jobs.FailureInternal), err.Error()
		})
	}
	submit := m.Submit
	if rec.fresh {
		submit = m.SubmitNew
	}
	if err := submit(ctx, rec.spec); err != nil {
		if s.ctx.Err() == nil {
			fail(err)
		}
		return true
	}
	for {
		st, ch, err := m.Watch(ctx, id)
		if err != nil {
			fail(err)
			return true
		}
		if st.Terminal() {
			s.finishNet(rec, st)
			return true
		}
		s.update(rec, func(i *client.JobInfo) { mergeNetStatus(i, rec.spec, st) })
		select {
		case <-ch:
		case <-ctx.Done():
			if s.ctx.Err() != nil {
				return true
			}
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			if err := m.Cancel(cctx, id); err != nil {
				s.log.Warn("could not cancel a job on its workers", "job", id, "err", err)
			}
			cancel()
			st, _ := m.Status(context.Background(), id)
			s.update(rec, func(i *client.JobInfo) {
				mergeNetStatus(i, rec.spec, st)
				i.State, i.Blocker = string(jobs.StateCancelled), ""
			})
			return true
		}
	}
}

// finishNet records a distributed job's end in rec and pins the agreed
// result's blocks here, so its logs and outputs outlive the workers.
func (s *jobService) finishNet(rec *jobRecord, st dist.Status) {
	res := agreedResult(st)
	s.mu.Lock()
	rec.result = res
	s.mu.Unlock()
	s.update(rec, func(i *client.JobInfo) { mergeNetStatus(i, rec.spec, st) })
	if res == nil {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Minute)
	defer cancel()
	r := res.Result
	for _, c := range []cid.Cid{r.Stdout, r.Stderr, r.Outputs} {
		// Most results repeat (the empty stderr and outputs, the same
		// stdout): one that is pinned is whole here already.
		if pinned, err := s.blocks().IsPinned(ctx, c); err == nil && pinned {
			continue
		}
		// Pin fetches what is missing (the workers hold it).
		if err := s.blocks().Pin(ctx, c); err != nil {
			s.log.Warn("cannot fetch and pin a job result from its workers", "job", rec.spec.ID, "cid", c, "err", err)
		}
	}
}

// netRecord returns a read-only record of a job this node did not submit
// but heard announced, or nil.
func (s *jobService) netRecord(ctx context.Context, id cid.Cid) *jobRecord {
	m := s.n.jobsNet.mgr
	if m == nil {
		return nil
	}
	st, err := m.Status(ctx, id)
	if err != nil || !st.Remote {
		return nil
	}
	var spec *jobs.SignedSpec
	if a, err := m.Announced(ctx, id); err == nil {
		spec = a.Spec
	}
	rec := &jobRecord{spec: spec, result: agreedResult(st)}
	mergeNetStatus(&rec.info, spec, st)
	return rec
}

// setReplicas sets the replicas and quorum of a job submitted through the
// API (0 means 1 replica, and a majority quorum).
func setReplicas(env *jobs.Envelope, replicas, quorum int) error {
	if replicas == 0 {
		replicas = 1
	}
	if quorum == 0 {
		quorum = replicas/2 + 1
	}
	if replicas < 1 || replicas > jobs.MaxReplicas || quorum < 1 || quorum > replicas {
		return fmt.Errorf("replicas %d, quorum %d: want 1 ≤ quorum ≤ replicas ≤ %d", replicas, quorum, jobs.MaxReplicas)
	}
	env.Replicas, env.Quorum = replicas, quorum
	return nil
}

// agreedResult returns the result a job's status settles on: an agreeing
// one of a verified job, else the last vote, else nil.
func agreedResult(st dist.Status) *jobs.SignedResult {
	var pick *dist.ResultStatus
	for i := range st.Results {
		r := &st.Results[i]
		if r.Agrees || (pick == nil || !pick.Agrees) && r.Vote {
			pick = r
		}
	}
	if pick == nil {
		return nil
	}
	return decodedResult(*pick)
}

// decodedResult returns the checked signed result of r: the one the
// status carries, else decoded from its bytes; nil if they do not hold r.
func decodedResult(r dist.ResultStatus) *jobs.SignedResult {
	res := r.Decoded
	if res == nil {
		var err error
		if res, err = jobs.DecodeSignedResult(r.Signed); err != nil {
			return nil
		}
	}
	if !res.CID.Equals(r.CID) {
		return nil
	}
	return res
}

// netResultInfo returns the API's view of one result of a distributed
// job. Its wall time and peak memory come from the signed result record,
// which the status carries; without a valid record they stay 0.
func netResultInfo(r dist.ResultStatus) client.JobResult {
	if res := decodedResult(r); res != nil {
		return resultInfo(res)
	}
	return client.JobResult{
		Worker: r.Worker.String(), Result: r.CID.String(), ExitCode: r.ExitCode,
		Failure: string(r.Failure), Reason: r.Reason,
		Stdout: r.Stdout.String(), Stderr: r.Stderr.String(), Outputs: r.Outputs.String(),
	}
}

// mergeNetStatus writes a distributed job's status into the API's JobInfo.
// A verified job whose program failed or exited non-zero is "failed", as
// a local one is; the verdict says whether the replicas agreed.
func mergeNetStatus(i *client.JobInfo, spec *jobs.SignedSpec, st dist.Status) {
	i.Job, i.Submitter = st.Job.String(), st.Submitter.String()
	if i.Created == "" {
		i.Created = st.Created.UTC().Format(time.RFC3339Nano)
	}
	if i.Updated == "" {
		i.Updated = st.Updated.UTC().Format(time.RFC3339Nano)
	}
	if spec != nil {
		i.Computation = spec.CompCID.String()
		i.Module = spec.Envelope.Computation.Module.String()
		i.Args = append([]string{}, spec.Envelope.Computation.Args...)
	}
	i.State, i.Blocker, i.Reason = string(st.State), st.Blocker, st.Reason
	i.Verdict = string(st.Verdict)
	i.Disagreeing = i.Disagreeing[:0]
	for _, p := range st.Disagreeing {
		i.Disagreeing = append(i.Disagreeing, p.String())
	}
	if l := st.Ledger; l != nil {
		i.LedgerSubmitted, i.LedgerVerdict, i.LedgerError = l.Submitted, l.Verdict, l.Error
	}
	i.Results = []client.JobResult{}
	for _, r := range st.Results {
		i.Results = append(i.Results, netResultInfo(r))
	}
	if res := agreedResult(st); res != nil {
		r := res.Result
		code := r.ExitCode
		i.ExitCode = &code
		i.Failure = string(r.Failure)
		i.Stdout, i.Stderr, i.Outputs = r.Stdout.String(), r.Stderr.String(), r.Outputs.String()
		if st.State == jobs.StateDone && !r.OK() {
			i.State = string(jobs.StateFailed)
		}
	}
}
