package node

import (
	"archive/tar"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoalnet/shoal/jobs"
	"github.com/shoalnet/shoal/jobs/local"
	"github.com/shoalnet/shoal/jobs/sandbox"
	"github.com/shoalnet/shoal/node/blocks"
	"github.com/shoalnet/shoal/node/client"
)

// maxPayloadUpload bounds one upload to POST /v1/jobs/payloads.
const maxPayloadUpload = 4 << 30

// jobService runs jobs submitted to this node's API on this node, in a
// pool of sandbox workers started on the first job. It keeps every job's
// record in the datastore under /jobs, so a restarted node shows past jobs
// and runs again those it had not finished.
type jobService struct {
	n      *Node
	log    *slog.Logger
	ds     datastore.Batching
	dir    string          // REPO/jobs
	ctx    context.Context // canceled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup // running jobs

	poolMu sync.Mutex // guards pool and runner
	pool   *sandbox.Pool
	runner *local.Runner

	mu   sync.Mutex             // guards recs, ended and each record's info and changed
	recs map[cid.Cid]*jobRecord // jobs running, to run, or ended lately (see forgetEnded)
	// ended lists the jobs in recs whose end is stored, oldest first;
	// past maxEndedInMemory the oldest leave memory and are read from the
	// datastore, so that memory does not grow with a node's job history.
	ended     []cid.Cid
	keepEnded int // maxEndedInMemory; smaller in tests

	runs     *prometheus.CounterVec
	duration prometheus.Histogram
}

// jobBlocks is what the job service needs of the blocks service.
type jobBlocks interface {
	jobs.Blocks
	Open(ctx context.Context, c cid.Cid) (io.ReadCloser, uint64, error)
	Pin(ctx context.Context, c cid.Cid) error
	IsPinned(ctx context.Context, c cid.Cid) (bool, error)
}

// A jobRecord is one job as this node knows it.
type jobRecord struct {
	info    client.JobInfo
	spec    *jobs.SignedSpec
	result  *jobs.SignedResult
	cancel  context.CancelFunc // nil unless running
	stored  bool               // persisted at least once; guarded by jobService.mu
	changed chan struct{}      // closed and replaced on every change; guarded by jobService.mu
	// fresh marks a spec made by this run of the node (not resumed from
	// the store): the job manager cannot have seen it. Set before start.
	fresh bool
}

// changedLocked returns the channel closed at rec's next change; s.mu
// must be held.
func (rec *jobRecord) changedLocked() chan struct{} {
	if rec.changed == nil {
		rec.changed = make(chan struct{})
	}
	return rec.changed
}

// storedJob is a jobRecord in the datastore: the signed spec and result
// keep their canonical bytes; the info is a cache of what they say.
type storedJob struct {
	Info   client.JobInfo `json:"info"`
	Spec   []byte         `json:"spec"`
	Result []byte         `json:"result,omitempty"`
}

func (n *Node) startJobs(ctx context.Context) error {
	s := &jobService{
		n:         n,
		log:       n.log.With("subsystem", "jobs"),
		ds:        n.Namespace("jobs"),
		dir:       filepath.Join(n.repo, "jobs"),
		recs:      map[cid.Cid]*jobRecord{},
		keepEnded: maxEndedInMemory,
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_jobs_local_total", Help: "Jobs run on this node, by final state.",
		}, []string{"state"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "shoal_jobs_local_seconds", Help: "Submit-to-result time of jobs run on this node.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 16),
		}),
	}
	s.ctx, s.cancel = context.WithCancel(n.ctx)
	if err := n.metrics.Register(s.runs); err != nil {
		return fmt.Errorf("jobs metrics: %w", err)
	}
	if err := n.metrics.Register(s.duration); err != nil {
		return fmt.Errorf("jobs metrics: %w", err)
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", s.dir, err)
	}
	if err := s.load(ctx); err != nil {
		return err
	}
	n.jobs = s
	n.jobsNet.exec = s
	n.onClose("jobs", s.close)
	return nil
}

// blocks returns the node's blocks service. The jobs area may start before
// it; it is only used once a job runs or a request comes in.
func (s *jobService) blocks() jobBlocks { return s.n.blocks }

var _ jobBlocks = (*blocks.Service)(nil)

// Execute runs spec on this node's sandbox pool, starting the pool on
// first use; it is the executor the network's workers call.
func (s *jobService) Execute(ctx context.Context, spec *jobs.SignedSpec, progress func(jobs.State)) (*jobs.SignedResult, error) {
	r, err := s.getRunner(ctx)
	if err != nil {
		return nil, err
	}
	if sub := spec.Envelope.Submitter; sub != s.n.id {
		s.n.ledgerPartner(sub) // see ledger.go: the logs of peers worked with are replicated
	}
	return r.Execute(ctx, spec, progress)
}

var _ jobs.Executor = (*jobService)(nil)

// close stops the running jobs (they stay queued in the store and run
// again on the next start) and the sandbox pool.
func (s *jobService) close() error {
	s.cancel()
	s.wg.Wait()
	s.poolMu.Lock()
	defer s.poolMu.Unlock()
	if s.pool != nil {
		return s.pool.Close()
	}
	return nil
}

// load reads the stored jobs and restarts the unfinished ones.
func (s *jobService) load(ctx context.Context) error {
	res, err := s.ds.Query(ctx, query.Query{})
	if err != nil {
		return fmt.Errorf("read stored jobs: %w", err)
	}
	defer res.Close()
	var pending []*jobRecord
	for e := range res.Next() {
		if e.Error != nil {
			return fmt.Errorf("read stored jobs: %w", e.Error)
		}
		info, err := storedInfo(e.Value)
		if err != nil {
			s.log.Warn("skipping unreadable stored job", "key", e.Key, "err", err)
			continue
		}
		if st, _ := jobs.ParseState(info.State); st.Terminal() {
			continue // ended: read from the datastore when asked for
		}
		rec, err := decodeStoredJob(e.Value)
		if rec == nil {
			s.log.Warn("skipping unreadable stored job", "key", e.Key, "err", err)
			continue
		}
		if err != nil {
			s.log.Warn("stored job has a bad result; running it again", "job", rec.spec.ID, "err", err)
			rec.result = nil
		}
		rec.info.State = string(jobs.StateQueued)
		s.recs[rec.spec.ID] = rec
		pending = append(pending, rec)
	}
	for _, rec := range pending {
		s.log.Info("resuming job", "job", rec.spec.ID)
		s.start(rec)
	}
	return nil
}

// getRunner returns the local job runner, starting the sandbox pool on
// first use.
func (s *jobService) getRunner(ctx context.Context) (*local.Runner, error) {
	s.poolMu.Lock()
	defer s.poolMu.Unlock()
	if s.runner != nil {
		return s.runner, nil
	}
	if sandbox.IsWorker() {
		// A process started as a worker that did not dispatch to
		// RunWorker must not start workers of its own.
		return nil, fmt.Errorf("this process was started as a sandbox worker (%s=1); its main must call sandbox.RunWorker first", sandbox.WorkerEnv)
	}
	if s.n.blocks == nil {
		return nil, errors.New("the node is still starting (no blocks service yet); try again in a moment")
	}
	slots := s.n.cfg.Jobs.Slots
	if slots == 0 {
		return nil, errors.New("this node runs no jobs (jobs.slots = 0 in config.toml); set jobs.slots to 1 or more and restart it")
	}
	scratch := filepath.Join(s.dir, "workers")
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", scratch, err)
	}
	modules, jobScratch, err := local.Layout(s.dir)
	if err != nil {
		return nil, err
	}
	// Workers may read exported modules and write job scratch dirs (and
	// the compilation cache); Landlock keeps them from the key and the
	// rest of the repo where the kernel offers it.
	pool, err := sandbox.NewPool(ctx, sandbox.Config{
		Slots:     slots,
		Dir:       scratch,
		CacheDir:  filepath.Join(s.n.repo, "cache", "wasm"),
		ReadDirs:  []string{modules},
		WriteDirs: []string{jobScratch},
	})
	if err != nil {
		return nil, fmt.Errorf("start %d sandbox workers: %w", slots, err)
	}
	r, err := local.New(local.Config{Sandbox: pool, Blocks: s.blocks(), Key: s.n.key, Dir: s.dir})
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.pool, s.runner = pool, r
	s.log.Info("sandbox workers started", "slots", slots, "landlock", pool.Stats().Confined)
	return r, nil
}

// update changes rec under s.mu, bumps its version and wakes waiters. It
// persists the record the first time and whenever the job has ended: a
// job stored unfinished is queued again on start, so the states between
// are not worth a write each.
func (s *jobService) update(rec *jobRecord, fn func(info *client.JobInfo)) {
	s.mu.Lock()
	fn(&rec.info)
	rec.info.Version++
	rec.info.Updated = time.Now().UTC().Format(time.RFC3339Nano)
	state, _ := jobs.ParseState(rec.info.State)
	persist := !rec.stored || state.Terminal()
	rec.stored = true
	var st storedJob
	if persist {
		st.Info = rec.info
		if b, err := rec.spec.Encode(); err == nil {
			st.Spec = b
		}
		if rec.result != nil {
			if b, err := rec.result.Encode(); err == nil {
				st.Result = b
			}
		}
	}
	if rec.changed != nil {
		close(rec.changed)
		rec.changed = nil
	}
	s.mu.Unlock()
	if !persist {
		return
	}
	b, err := json.Marshal(st)
	if err == nil {
		err = s.ds.Put(context.Background(), datastore.NewKey(rec.spec.ID.String()), b)
	}
	if err != nil {
		s.log.Error("cannot store job state", "job", rec.spec.ID, "err", err)
		return
	}
	if state.Terminal() {
		s.forgetEnded(rec.spec.ID)
	}
}

// maxEndedInMemory is how many ended jobs a node keeps in memory, for
// the callers still waiting on them; older ones are read from the
// datastore.
const maxEndedInMemory = 256

// forgetEnded notes that job id's end is stored and drops the oldest
// ended jobs from memory past keepEnded. (A job noted twice leaves a
// little early; nothing is lost, it is read from the datastore.)
func (s *jobService) forgetEnded(id cid.Cid) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.recs[id]; !ok {
		return
	}
	s.ended = append(s.ended, id)
	for len(s.ended) > s.keepEnded {
		old := s.ended[0]
		s.ended = s.ended[1:]
		if rec := s.recs[old]; rec != nil {
			if st, _ := jobs.ParseState(rec.info.State); st.Terminal() {
				delete(s.recs, old)
			}
		}
	}
}

// storedRecord reads ended job id from the datastore, or returns nil.
func (s *jobService) storedRecord(ctx context.Context, id cid.Cid) *jobRecord {
	b, err := s.ds.Get(ctx, datastore.NewKey(id.String()))
	if err != nil {
		return nil
	}
	rec, err := decodeStoredJob(b)
	if rec == nil {
		s.log.Warn("stored job is unreadable", "job", id, "err", err)
		return nil
	}
	if err != nil {
		// Its info still says how it ended.
		s.log.Warn("stored job has an unreadable result", "job", id, "err", err)
		rec.result = nil
	}
	if rec.spec.ID != id {
		s.log.Warn("stored job is another job", "key", id, "job", rec.spec.ID)
		return nil
	}
	rec.stored = true
	return rec
}

// storedInfo decodes the info of a storedJob alone, for listing.
func storedInfo(b []byte) (client.JobInfo, error) {
	var st struct {
		Info client.JobInfo `json:"info"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return client.JobInfo{}, fmt.Errorf("decode stored job: %w", err)
	}
	return st.Info, nil
}

// decodeStoredJob decodes a storedJob and checks its spec and result.
func decodeStoredJob(b []byte) (*jobRecord, error) {
	var st storedJob
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("decode stored job: %w", err)
	}
	spec, err := jobs.DecodeSignedSpec(st.Spec)
	if err != nil {
		return nil, fmt.Errorf("stored job spec: %w", err)
	}
	rec := &jobRecord{info: st.Info, spec: spec}
	if st.Result != nil {
		if rec.result, err = jobs.DecodeSignedResult(st.Result); err != nil {
			return rec, fmt.Errorf("stored job %s result: %w", spec.ID, err)
		}
	}
	return rec, nil
}

// submit builds, signs and starts the job of req.
func (s *jobService) submit(req *client.JobRequest) (*jobRecord, error) {
	rec, err := s.prepare(req)
	if err != nil {
		return nil, err
	}
	s.admit(rec)
	return rec, nil
}

// prepare checks req and returns its job, signed by this node, not yet
// known to the service.
func (s *jobService) prepare(req *client.JobRequest) (*jobRecord, error) {
	comp := jobs.Computation{Runtime: jobs.RuntimeWASIP1, Args: req.Args, Env: req.Env, Inputs: map[string]cid.Cid{}}
	var err error
	if comp.Module, err = cid.Decode(req.Module); err != nil {
		return nil, fmt.Errorf("module %q is not a CID: %w", req.Module, err)
	}
	for name, v := range req.Inputs {
		if comp.Inputs[name], err = cid.Decode(v); err != nil {
			return nil, fmt.Errorf("input %s: %q is not a CID: %w", name, v, err)
		}
	}
	env, err := jobs.NewEnvelope(s.n.id, comp, crand.Reader, time.Now())
	if err != nil {
		return nil, err
	}
	if req.TimeoutMS > 0 {
		env.Limits.WallTime = time.Duration(req.TimeoutMS) * time.Millisecond
	}
	for _, l := range []struct {
		v   uint64
		dst *uint64
	}{{req.Memory, &env.Limits.Memory}, {req.Stdout, &env.Limits.Stdout}, {req.Stderr, &env.Limits.Stderr}, {req.Outputs, &env.Limits.Outputs}} {
		if l.v > 0 {
			*l.dst = l.v
		}
	}
	if err := setReplicas(env, req.Replicas, req.Quorum); err != nil { // see jobs_net.go
		return nil, err
	}
	for k, v := range req.Constraints {
		env.Constraints[k] = v
	}
	spec, err := jobs.SignSpec(s.n.key, env)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	rec := &jobRecord{spec: spec, fresh: true, info: client.JobInfo{
		Job:         spec.ID.String(),
		State:       string(jobs.StateQueued),
		Computation: spec.CompCID.String(),
		Module:      comp.Module.String(),
		Args:        append([]string{}, comp.Args...),
		Submitter:   s.n.id.String(),
		Created:     now,
		Results:     []client.JobResult{},
	}}
	return rec, nil
}

// admit makes a prepared job known and starts it.
func (s *jobService) admit(rec *jobRecord) {
	s.mu.Lock()
	s.recs[rec.spec.ID] = rec
	s.mu.Unlock()
	s.start(rec)
}

// start runs rec in the background.
func (s *jobService) start(rec *jobRecord) {
	ctx, cancel := context.WithCancel(s.ctx)
	s.mu.Lock()
	rec.cancel = cancel
	s.mu.Unlock()
	s.update(rec, func(i *client.JobInfo) {
		i.State = string(jobs.StateQueued)
		i.Blocker = "waiting for a free job slot"
	})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		s.run(ctx, rec)
	}()
}

func (s *jobService) run(ctx context.Context, rec *jobRecord) {
	if s.runNet(ctx, rec) { // across the network, see jobs_net.go
		return
	}
	t0 := time.Now()
	id := rec.spec.ID
	fail := func(f jobs.Failure, err error) {
		s.log.Warn("job failed", "job", id, "err", err)
		s.runs.WithLabelValues(string(jobs.StateFailed)).Inc()
		s.update(rec, func(i *client.JobInfo) {
			i.State, i.Blocker, i.Failure, i.Reason = string(jobs.StateFailed), "", string(f), err.Error()
		})
	}
	runner, err := s.getRunner(ctx)
	if err != nil {
		fail(jobs.FailureInternal, err)
		return
	}
	res, err := runner.Execute(ctx, rec.spec, func(st jobs.State) {
		s.update(rec, func(i *client.JobInfo) { i.State, i.Blocker = string(st), "" })
	})
	if err != nil {
		if s.ctx.Err() != nil {
			return // node closing: the job stays unfinished in the store and resumes on start
		}
		if ctx.Err() != nil {
			s.runs.WithLabelValues(string(jobs.StateCancelled)).Inc()
			s.update(rec, func(i *client.JobInfo) { i.State, i.Blocker = string(jobs.StateCancelled), "" })
			return
		}
		fail(jobs.FailureInternal, err)
		return
	}
	r := res.Result
	for _, c := range []cid.Cid{r.Stdout, r.Stderr, r.Outputs} {
		if err := s.blocks().Pin(s.ctx, c); err != nil {
			s.log.Warn("cannot pin job result", "job", id, "cid", c, "err", err)
		}
	}
	state := jobs.StateDone
	if !r.OK() {
		state = jobs.StateFailed
	}
	s.runs.WithLabelValues(string(state)).Inc()
	s.duration.Observe(time.Since(t0).Seconds())
	s.mu.Lock()
	rec.result = res
	s.mu.Unlock()
	s.update(rec, func(i *client.JobInfo) {
		code := r.ExitCode
		i.State, i.Blocker = string(state), ""
		i.ExitCode = &code
		i.Failure, i.Reason = string(r.Failure), r.Reason
		i.Stdout, i.Stderr, i.Outputs = r.Stdout.String(), r.Stderr.String(), r.Outputs.String()
		i.Results = []client.JobResult{resultInfo(res)}
	})
	s.log.Debug("job finished", "job", id, "state", state, "exit", r.ExitCode, "took", time.Since(t0))
}

func resultInfo(res *jobs.SignedResult) client.JobResult {
	r := res.Result
	return client.JobResult{
		Worker: r.Worker.String(), Result: res.CID.String(), ExitCode: r.ExitCode,
		Failure: string(r.Failure), Reason: r.Reason,
		Stdout: r.Stdout.String(), Stderr: r.Stderr.String(), Outputs: r.Outputs.String(),
		WallMS: float64(r.WallTime.Microseconds()) / 1000, PeakMemory: r.PeakMemory,
	}
}

// lookup returns the record of the job named by the {id} path value.
func (s *jobService) lookup(w http.ResponseWriter, r *http.Request) (*jobRecord, bool) {
	id, err := cid.Decode(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("%q is not a job ID (a CID such as bafyrei...)", r.PathValue("id")))
		return nil, false
	}
	s.mu.Lock()
	rec, ok := s.recs[id]
	s.mu.Unlock()
	if !ok {
		if rec := s.storedRecord(r.Context(), id); rec != nil {
			return rec, true
		}
		if rec := s.netRecord(r.Context(), id); rec != nil { // announced by its submitter, see jobs_net.go
			return rec, true
		}
		writeError(w, http.StatusNotFound, fmt.Errorf("no job %s is known to this node: it was not submitted here, and no outcome of it has been announced "+
			"(other nodes hear of a job when it ends with results; until then, or if it is cancelled, ask its submitter); list the jobs known here with: shoal job list", id))
		return nil, false
	}
	return rec, true
}

func (s *jobService) snapshot(rec *jobRecord) client.JobInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return rec.info
}

func (n *Node) registerJobsRoutes(mux *http.ServeMux) {
	s := n.jobs
	if s == nil {
		return
	}
	mux.HandleFunc("POST /v1/jobs", s.handleSubmit)
	mux.HandleFunc("POST /v1/jobs/batch", s.handleSubmitBatch)
	mux.HandleFunc("GET /v1/jobs", s.handleList)
	mux.HandleFunc("GET /v1/jobs/{id}", s.handleGet)
	mux.HandleFunc("POST /v1/jobs/{id}/cancel", s.handleCancel)
	mux.HandleFunc("GET /v1/jobs/{id}/logs", s.handleLogs)
	mux.HandleFunc("GET /v1/jobs/{id}/outputs", s.handleOutputs)
	mux.HandleFunc("POST /v1/jobs/payloads", s.handleUpload)
}

// handleSubmit submits a job and answers 202 with its state at once, or
// with ?wait=D once it has ended (200) or D (at most 60 s) has passed
// (202): one request for callers that want the outcome.
func (s *jobService) handleSubmit(w http.ResponseWriter, r *http.Request) {
	wait, ok := waitParam(w, r)
	if !ok {
		return
	}
	var req client.JobRequest
	if !readJSON(w, r, &req) {
		return
	}
	rec, err := s.submit(&req)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if wait == 0 {
		writeJSON(w, http.StatusAccepted, s.snapshot(rec))
		return
	}
	info, ok := s.wait(r.Context(), rec, 0, true, wait)
	if !ok {
		return
	}
	code := http.StatusAccepted
	if st, _ := jobs.ParseState(info.State); st.Terminal() {
		code = http.StatusOK
	}
	writeJSON(w, code, info)
}

// handleSubmitBatch submits many jobs in one request: every job is checked
// and signed before any starts, so a bad one rejects the whole batch and
// nothing runs. With ?wait=D the answer waits until every job has ended
// (200) or D (at most 60 s) passes (202, jobs as they are then).
func (s *jobService) handleSubmitBatch(w http.ResponseWriter, r *http.Request) {
	wait, ok := waitParam(w, r)
	if !ok {
		return
	}
	var req client.BatchRequest
	if !readJSONLimit(w, r, &req, maxBatchBody) {
		return
	}
	if len(req.Jobs) == 0 {
		writeError(w, http.StatusBadRequest, errors.New("the batch holds no jobs"))
		return
	}
	if len(req.Jobs) > client.MaxBatchJobs {
		writeError(w, http.StatusBadRequest, fmt.Errorf("the batch holds %d jobs, more than the %d allowed: split it", len(req.Jobs), client.MaxBatchJobs))
		return
	}
	recs := make([]*jobRecord, len(req.Jobs))
	for i := range req.Jobs {
		rec, err := s.prepare(&req.Jobs[i])
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("job %d of the batch: %w (no job was submitted)", i, err))
			return
		}
		recs[i] = rec
	}
	for _, rec := range recs {
		s.admit(rec)
	}
	out := client.BatchInfo{Jobs: make([]client.JobInfo, len(recs))}
	code := http.StatusOK
	deadline := time.Now().Add(min(wait, time.Minute))
	for i, rec := range recs {
		left := time.Until(deadline)
		if wait == 0 || left <= 0 {
			out.Jobs[i] = s.snapshot(rec)
		} else if out.Jobs[i], ok = s.wait(r.Context(), rec, 0, true, left); !ok {
			return
		}
		if st, _ := jobs.ParseState(out.Jobs[i].State); !st.Terminal() {
			code = http.StatusAccepted
		}
	}
	writeJSON(w, code, out)
}

// waitParam reads ?wait=D (0 when absent); on a bad value it answers 400
// and returns false.
func waitParam(w http.ResponseWriter, r *http.Request) (time.Duration, bool) {
	q := r.URL.Query().Get("wait")
	if q == "" {
		return 0, true
	}
	wait, err := time.ParseDuration(q)
	if err != nil || wait < 0 {
		writeError(w, http.StatusBadRequest, fmt.Errorf("wait=%q is not a duration such as 30s", q))
		return 0, false
	}
	return wait, true
}

// handleList answers every job, newest first; with ?limit=N only the
// newest N.
func (s *jobService) handleList(w http.ResponseWriter, r *http.Request) {
	limit := 0
	if q := r.URL.Query().Get("limit"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("limit=%q is not a number of jobs (0 for all)", q))
			return
		}
		limit = n
	}
	s.mu.Lock()
	list := make([]client.JobInfo, 0, len(s.recs))
	inMemory := make(map[string]bool, len(s.recs))
	for _, rec := range s.recs {
		list = append(list, rec.info)
		inMemory[rec.info.Job] = true
	}
	s.mu.Unlock()
	// The ended jobs no longer in memory, from the datastore (only their
	// info is decoded).
	res, err := s.ds.Query(r.Context(), query.Query{})
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("read stored jobs: %w", err))
		return
	}
	defer res.Close()
	for e := range res.Next() {
		if e.Error != nil {
			writeError(w, http.StatusInternalServerError, fmt.Errorf("read stored jobs: %w", e.Error))
			return
		}
		info, err := storedInfo(e.Value)
		if err != nil || info.Job == "" || inMemory[info.Job] {
			continue
		}
		list = append(list, info)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Created > list[j].Created })
	if limit > 0 && len(list) > limit {
		list = list[:limit]
	}
	writeJSON(w, http.StatusOK, list)
}

// handleGet answers at once, or with ?after=V&wait=D once the job's
// version passes V, it ends, or D (at most 60 s) passes.
func (s *jobService) handleGet(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.lookup(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	if q.Get("wait") == "" {
		writeJSON(w, http.StatusOK, s.snapshot(rec))
		return
	}
	wait, err := time.ParseDuration(q.Get("wait"))
	if err != nil || wait < 0 {
		writeError(w, http.StatusBadRequest, fmt.Errorf("wait=%q is not a duration such as 30s", q.Get("wait")))
		return
	}
	var after int64
	if _, err := fmt.Sscan(q.Get("after"), &after); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("after=%q is not a version number", q.Get("after")))
		return
	}
	// until=end answers only once the job has ended (or the wait is over),
	// for callers that want the outcome, not each step.
	untilEnd := false
	switch u := q.Get("until"); u {
	case "", "change":
	case "end":
		untilEnd = true
	default:
		writeError(w, http.StatusBadRequest, fmt.Errorf("until=%q: want \"change\" (the default) or \"end\"", u))
		return
	}
	if info, ok := s.wait(r.Context(), rec, after, untilEnd, wait); ok {
		writeJSON(w, http.StatusOK, info)
	}
}

// wait returns rec's state once its version passes after (with untilEnd,
// once it has ended), or when wait (at most a minute) has passed; ok is
// false if ctx ended first.
func (s *jobService) wait(ctx context.Context, rec *jobRecord, after int64, untilEnd bool, wait time.Duration) (info client.JobInfo, ok bool) {
	timer := time.NewTimer(min(wait, time.Minute))
	defer timer.Stop()
	for {
		s.mu.Lock()
		info, ch := rec.info, rec.changedLocked()
		s.mu.Unlock()
		st, _ := jobs.ParseState(info.State)
		if st.Terminal() || info.Version > after && !untilEnd {
			return info, true
		}
		select {
		case <-ch:
		case <-timer.C:
			return info, true
		case <-ctx.Done():
			return info, false
		}
	}
}

func (s *jobService) handleCancel(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.lookup(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	cancel := rec.cancel
	st, _ := jobs.ParseState(rec.info.State)
	s.mu.Unlock()
	if st.Terminal() || cancel == nil {
		writeError(w, http.StatusConflict, fmt.Errorf("job %s has already ended (%s)", rec.spec.ID, st))
		return
	}
	cancel()
	// Wait briefly for the runner to record the cancellation.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if st, _ := jobs.ParseState(s.snapshot(rec).State); st.Terminal() {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	writeJSON(w, http.StatusOK, s.snapshot(rec))
}

func (s *jobService) handleLogs(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.lookup(w, r)
	if !ok {
		return
	}
	info := s.snapshot(rec)
	var c string
	switch stream := r.URL.Query().Get("stream"); stream {
	case "", "stdout":
		c = info.Stdout
	case "stderr":
		c = info.Stderr
	default:
		writeError(w, http.StatusBadRequest, fmt.Errorf("stream=%q: want stdout or stderr", stream))
		return
	}
	if c == "" {
		writeError(w, http.StatusConflict, fmt.Errorf("job %s has no logs yet (state %s); wait for it with: shoal job status %s", info.Job, info.State, info.Job))
		return
	}
	s.streamFile(w, r, c)
}

func (s *jobService) streamFile(w http.ResponseWriter, r *http.Request, cs string) {
	c, err := cid.Decode(cs)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	rc, _, err := s.blocks().Open(r.Context(), c)
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("open %s: %w", c, err))
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	io.Copy(w, rc)
}

// handleOutputs streams the job's /outputs directory as a tar archive.
func (s *jobService) handleOutputs(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.lookup(w, r)
	if !ok {
		return
	}
	info := s.snapshot(rec)
	c, err := cid.Decode(info.Outputs)
	if err != nil {
		writeError(w, http.StatusConflict, fmt.Errorf("job %s has no outputs yet (state %s)", info.Job, info.State))
		return
	}
	tmp, err := os.MkdirTemp(s.dir, "export-")
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	defer os.RemoveAll(tmp)
	dst := filepath.Join(tmp, "outputs")
	if err := s.blocks().ExportPath(r.Context(), c, dst); err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("export outputs %s: %w", c, err))
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	tw := tar.NewWriter(w)
	err = filepath.WalkDir(dst, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dst, path)
		if err != nil || rel == "." {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: filepath.ToSlash(rel) + "/", Mode: 0o755})
		case fi.Mode().IsRegular():
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: filepath.ToSlash(rel), Mode: 0o644, Size: fi.Size()}); err != nil {
				return err
			}
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.CopyN(tw, f, fi.Size())
			return err
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		s.log.Debug("outputs stream ended early", "job", info.Job, "err", err)
	}
}

// handleUpload stores a module or input: a raw file, or a tar stream of a
// directory (Content-Type application/x-tar), and answers {"cid": ...}.
func (s *jobService) handleUpload(w http.ResponseWriter, r *http.Request) {
	body := http.MaxBytesReader(w, r.Body, maxPayloadUpload)
	if r.Header.Get("Content-Type") != "application/x-tar" {
		c, _, err := s.blocks().AddReader(r.Context(), body)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("store upload: %w", err))
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"cid": c.String()})
		return
	}
	tmp, err := os.MkdirTemp(s.dir, "upload-")
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "dir")
	if err := untar(body, root); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("upload is not a tar of files and directories: %w", err))
		return
	}
	c, _, err := s.blocks().AddPath(r.Context(), root)
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("store upload: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"cid": c.String()})
}

// untar writes the regular files and directories of r under dir, refusing
// links and paths that leave dir.
func untar(r io.Reader, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(filepath.FromSlash(h.Name))
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, ".."+string(filepath.Separator)) {
			return fmt.Errorf("unsafe path %q", h.Name)
		}
		dst := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				return err
			}
			f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("%q has type %c; only files and directories are allowed", h.Name, h.Typeflag)
		}
	}
}
