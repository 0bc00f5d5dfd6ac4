package dist

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoalnet/shoal/crypto"
	"github.com/shoalnet/shoal/jobs"
	"github.com/shoalnet/shoal/jobs/capacity"
	"github.com/shoalnet/shoal/jobs/proto"
	"github.com/shoalnet/shoal/jobs/quorum"
	"github.com/shoalnet/shoal/jobs/sched"
)

// A View is the capacity view the manager schedules from;
// *capacity.Service implements it.
type View interface {
	// View returns the current entries, this node's own included.
	View() []capacity.Entry
	// Changed returns a channel closed at the next change of the view.
	Changed() <-chan struct{}
}

var _ View = (*capacity.Service)(nil)

// An Announcer publishes a finished job's outcome to the network. It must
// be safe for concurrent use.
type Announcer interface {
	Announce(ctx context.Context, spec *jobs.SignedSpec, st Status) error
}

// ManagerConfig configures a Manager. Host, Key, Store and View are required.
type ManagerConfig struct {
	Host host.Host
	Key  crypto.PrivKey
	// Store holds job state; pass a namespace of the node's datastore.
	Store datastore.Batching
	View  View
	// Local, when set, is this node's own worker, used when the scheduler
	// picks this node.
	Local *Worker
	// Announcer publishes verdicts. Optional.
	Announcer Announcer
	// Recorder records each job this node submits in the node's ledger: a
	// job.submitted entry when the job starts and a job.verdict entry,
	// before the job is reported ended, when it ends. Optional; a failure to
	// record is logged and shown in the job's Status.Ledger.
	Recorder jobs.Recorder
	// Convicted reports whether a peer must never be chosen as a worker
	// (the node holds fork evidence against its ledger). Optional.
	Convicted func(p peer.ID) bool
	// Ended, if set, is called once with the final status of each job this
	// node submitted, after its verdict is recorded and announced. It must
	// not block; long work (such as replicating the workers' ledgers) goes
	// in a goroutine of the caller's.
	Ended func(st Status)
	// Latency returns the round-trip time to a peer. Optional.
	Latency sched.LatencyFunc
	// AllowSelf lets the scheduler pick this node like any other; without it
	// this node runs a replica only when no other peer can. Default false.
	AllowSelf bool
	// Retries is how many offers a job may make beyond one per replica
	// (declines for lack of a free slot do not count). Default 3 (when
	// 0); NoRetries for none.
	Retries int
	// FetchAllowance is added to a job's wall time to give the worker's
	// run timeout: the time to fetch blocks and store results. Default 30s.
	FetchAllowance time.Duration
	// OfferTimeout bounds opening a stream, sending the offer and reading
	// the answer. Default 5s.
	OfferTimeout time.Duration
	// CommitWait is how long after the first commitment the manager waits
	// for the others before it asks for reveals. Default 5s.
	CommitWait time.Duration
	// RevealTimeout bounds the wait for a result after Reveal. Default 10s.
	RevealTimeout time.Duration
	// Deadline bounds a whole job from submission: when it passes, replicas
	// still missing fail. Default 3 × (wall time + FetchAllowance), at least 1m.
	Deadline func(spec *jobs.SignedSpec) time.Duration
	// Runtime maps a job runtime to the capacity advert runtime.
	// Default: jobs.RuntimeWASIP1 → capacity.RuntimeWasm, others unchanged.
	Runtime func(jobRuntime string) string
	// Logger receives the manager's logs. Default: discard.
	Logger *slog.Logger
	// Registerer receives the manager's metrics. Optional.
	Registerer prometheus.Registerer
}

// NoRetries is the ManagerConfig.Retries of a manager that makes no
// offer beyond one per replica.
const NoRetries = -1

func (c *ManagerConfig) setDefaults() {
	switch {
	case c.Retries == 0:
		c.Retries = 3
	case c.Retries < 0:
		c.Retries = 0
	}
	if c.FetchAllowance == 0 {
		c.FetchAllowance = 30 * time.Second
	}
	if c.OfferTimeout == 0 {
		c.OfferTimeout = 5 * time.Second
	}
	if c.CommitWait == 0 {
		c.CommitWait = 5 * time.Second
	}
	if c.RevealTimeout == 0 {
		c.RevealTimeout = 10 * time.Second
	}
	if c.Deadline == nil {
		fetch := c.FetchAllowance
		c.Deadline = func(s *jobs.SignedSpec) time.Duration {
			return max(time.Minute, 3*(s.Envelope.Limits.WallTime+fetch))
		}
	}
	if c.Runtime == nil {
		c.Runtime = func(r string) string {
			if r == jobs.RuntimeWASIP1 {
				return capacity.RuntimeWasm
			}
			return r
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Errors callers branch on.
var (
	// ErrUnknownJob is returned (wrapped) for a job this node neither
	// submitted nor heard announced.
	ErrUnknownJob = errors.New("unknown job")
	// ErrNotSubmitter is returned (wrapped) by Submit for a spec signed by
	// another node.
	ErrNotSubmitter = errors.New("spec was not submitted by this node")
	// ErrClosed is returned (wrapped) after Close.
	ErrClosed = errors.New("job manager is closed")
)

// A Manager runs this node's submitted jobs across the network: it places
// replicas on workers, retries failures, runs commit-then-reveal, decides
// the verdict, persists every job and resumes unfinished ones on start.
// Its methods are safe for concurrent use.
type Manager struct {
	cfg  ManagerConfig
	self peer.ID
	log  *slog.Logger
	load sched.Load
	st   *store
	met  *managerMetrics

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	jobs    map[cid.Cid]*job // guarded by mu; jobs running, to resume, or ended lately (see forget)
	streams streamPool       // idle job streams to workers
	closed  bool             // guarded by mu

	endedGrace time.Duration // defaultEndedGrace; shorter in tests
}

// NewManager returns a Manager and resumes every unfinished job in
// cfg.Store.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if cfg.Host == nil || cfg.Key == nil || cfg.Store == nil || cfg.View == nil {
		return nil, errors.New("dist: NewManager needs a host, a key, a store and a capacity view")
	}
	cfg.setDefaults()
	self, err := crypto.PeerID(cfg.Key)
	if err != nil {
		return nil, err
	}
	met, err := newManagerMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, self: self, log: cfg.Logger, st: &store{ds: cfg.Store}, met: met, jobs: make(map[cid.Cid]*job), endedGrace: defaultEndedGrace}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.wg.Add(1)
	go m.sweepStreams()
	pending, err := m.st.pending(m.ctx)
	if err != nil {
		return nil, err
	}
	for _, rec := range pending {
		j := newJob(rec)
		m.jobs[j.id] = j
		m.log.Info("resuming job", "job", j.id, "results", len(rec.Results))
		m.start(j)
	}
	return m, nil
}

// Close stops every job's goroutines, leaving unfinished jobs in the store
// to be resumed by the next Manager, and waits for them.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	return nil
}

// Submit persists spec, which this node must have signed, and starts
// running it across the network. It returns once the job is stored;
// Status and Wait follow it. Submitting a job again is a no-op.
func (m *Manager) Submit(ctx context.Context, spec *jobs.SignedSpec) error {
	return m.submit(ctx, spec, true)
}

// SubmitNew is Submit for a spec this node has just made and never
// submitted: its envelope's random nonce gives it an ID no stored job
// has, so the store is not searched for an earlier run of it.
func (m *Manager) SubmitNew(ctx context.Context, spec *jobs.SignedSpec) error {
	return m.submit(ctx, spec, false)
}

func (m *Manager) submit(ctx context.Context, spec *jobs.SignedSpec, lookUp bool) error {
	if spec.Envelope.Submitter != m.self {
		return fmt.Errorf("dist: submit job %s: %w (submitter %s, this node %s)", spec.ID, ErrNotSubmitter, spec.Envelope.Submitter, m.self)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("dist: submit job %s: %w", spec.ID, ErrClosed)
	}
	if _, ok := m.jobs[spec.ID]; ok {
		return nil
	}
	if lookUp {
		if _, err := m.st.get(ctx, spec.ID); err == nil {
			return nil // ended before: Status reads it from the store
		}
	}
	now := time.Now()
	rec := &record{Version: recordVersion, Spec: spec, State: jobs.StateQueued,
		Created: now, Updated: now, Deadline: now.Add(m.cfg.Deadline(spec))}
	if err := m.st.put(ctx, rec); err != nil {
		return err
	}
	j := newJob(rec)
	m.jobs[j.id] = j
	m.start(j)
	return nil
}

// start runs j; m.mu may be held.
func (m *Manager) start(j *job) {
	m.wg.Add(1)
	ctx, cancel := context.WithCancel(m.ctx)
	j.cancel = cancel
	go func() {
		defer m.wg.Done()
		defer cancel()
		m.run(ctx, j)
		m.forget(j)
	}()
}

// forget drops j from memory endedGrace after its end is stored (callers
// following it read it from memory until then): a node's memory does not
// grow with the jobs it ever submitted, and reads of an ended job go to
// the store.
func (m *Manager) forget(j *job) {
	j.mu.Lock()
	saved := j.endSaved
	j.mu.Unlock()
	if !saved {
		return // still to resume, or only in memory: kept
	}
	time.AfterFunc(m.endedGrace, func() {
		m.mu.Lock()
		if m.jobs[j.id] == j {
			delete(m.jobs, j.id)
		}
		m.mu.Unlock()
	})
}

// defaultEndedGrace is how long an ended job stays in a Manager's memory.
const defaultEndedGrace = 30 * time.Second

func (m *Manager) lookup(id cid.Cid) *job {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.jobs[id]
}

// Status returns the state of job id: this node's own job, or one it has
// stored from the network's results announcements.
func (m *Manager) Status(ctx context.Context, id cid.Cid) (Status, error) {
	if j := m.lookup(id); j != nil {
		return j.status(), nil
	}
	if rec, err := m.st.get(ctx, id); err == nil {
		return newJob(rec).status(), nil
	}
	if st, err := m.st.announced(ctx, id); err == nil {
		return st, nil
	}
	return Status{}, fmt.Errorf("dist: job %s: %w (submit it here or wait for its announcement)", id, ErrUnknownJob)
}

// Announced returns the checked results announcement of job id that this
// node stored from the results topic.
func (m *Manager) Announced(ctx context.Context, id cid.Cid) (*Announced, error) {
	a, err := m.st.openAnnounced(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("dist: announcement of job %s: %w", id, err)
	}
	return a, nil
}

// Watch returns the status of job id and a channel closed at its next
// change. The channel is nil when the job has ended.
func (m *Manager) Watch(ctx context.Context, id cid.Cid) (Status, <-chan struct{}, error) {
	if j := m.lookup(id); j != nil {
		j.mu.Lock()
		ch := j.changed
		j.mu.Unlock()
		return j.status(), ch, nil
	}
	st, err := m.Status(ctx, id)
	if err != nil {
		return Status{}, nil, err
	}
	if st.Terminal() {
		return st, nil, nil
	}
	// Not this node's job and not finished yet: its announcement may
	// arrive at any time; look again shortly.
	ch := make(chan struct{})
	time.AfterFunc(250*time.Millisecond, func() { close(ch) })
	return st, ch, nil
}

// Wait blocks until job id ends or ctx is done, and returns its status.
func (m *Manager) Wait(ctx context.Context, id cid.Cid) (Status, error) {
	for {
		st, ch, err := m.Watch(ctx, id)
		if err != nil || st.Terminal() {
			return st, err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return st, fmt.Errorf("dist: wait for job %s: %w", id, ctx.Err())
		}
	}
}

// Cancel stops job id on every worker and marks it cancelled.
func (m *Manager) Cancel(ctx context.Context, id cid.Cid) error {
	j := m.lookup(id)
	if j == nil {
		if _, err := m.st.get(ctx, id); err == nil {
			return nil // it has ended
		}
		return fmt.Errorf("dist: cancel job %s: %w (only its submitter can cancel it)", id, ErrUnknownJob)
	}
	j.mu.Lock()
	if j.state.Terminal() {
		j.mu.Unlock()
		return nil
	}
	j.canceled = true
	j.mu.Unlock()
	if j.cancel != nil {
		j.cancel()
	}
	select {
	case <-j.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("dist: cancel job %s: %w", id, ctx.Err())
	}
}

// List returns the status of every job this node submitted, newest first.
func (m *Manager) List(ctx context.Context) ([]Status, error) {
	recs, err := m.st.all(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Status, 0, len(recs))
	for _, rec := range recs {
		if j := m.lookup(rec.Spec.ID); j != nil {
			out = append(out, j.status())
		} else {
			out = append(out, newJob(rec).status())
		}
	}
	slices.SortFunc(out, func(a, b Status) int { return b.Created.Compare(a.Created) })
	return out, nil
}

// The outcome of one attempt, reported to the job's run loop.
type evKind int

const (
	evAccepted evKind = iota
	evCommitted
	evResult
	evFailed
)

type event struct {
	kind   evKind
	slot   int
	worker peer.ID
	commit quorum.Commitment
	result *jobs.SignedResult
	code   proto.Code
	err    error
}

// attempt runs the submitter side of one offer of replica slot to p.
func (m *Manager) attempt(ctx context.Context, j *job, slot int, p peer.ID, reveal <-chan struct{}, events chan<- event) {
	defer m.load.Done(p)
	env := j.spec.Envelope
	commit := env.Replicas > 1
	runTimeout := (env.Limits.WallTime + m.cfg.FetchAllowance).Truncate(time.Millisecond)

	t0 := time.Now()
	// The stream of the exchange: guarded by wmu once the AfterFunc below
	// may use it. clean is set when the exchange has ended as the protocol
	// says, so that the stream can carry the next one.
	var (
		wmu   sync.Mutex
		js    *jobStream
		clean bool
	)
	write := func(msg proto.Msg, timeout time.Duration) error {
		wmu.Lock()
		defer wmu.Unlock()
		return js.conn.Write(msg, timeout)
	}
	stop := context.AfterFunc(ctx, func() {
		wmu.Lock()
		defer wmu.Unlock()
		if js != nil {
			js.conn.Write(&proto.Cancel{Job: j.id, Reason: "the job was cancelled or its submitter is stopping"}, time.Second)
			js.reset()
		}
	})
	// settle is done with the stream: back to the pool when the exchange
	// ended cleanly, else reset. It runs before the attempt's last event
	// is sent, since that event may end the job and cancel ctx, which
	// must not then reset a stream whose exchange is over.
	settled := false
	settle := func() {
		if settled {
			return
		}
		settled = true
		if !stop() {
			return // the AfterFunc has reset the stream
		}
		if clean {
			m.release(p, js)
		} else if js != nil {
			js.reset()
		}
	}
	ended := false // a result or a failure was sent: every attempt sends exactly one
	send := func(e event) {
		e.slot, e.worker = slot, p
		if e.kind == evResult || e.kind == evFailed {
			ended = true
			settle()
		}
		events <- e
	}
	defer func() {
		if !ended {
			send(event{kind: evFailed, code: proto.CodeCanceled, err: fmt.Errorf("attempt stopped: %w", context.Cause(ctx))})
		}
	}()
	fail := func(code proto.Code, err error) { send(event{kind: evFailed, code: code, err: err}) }

	offer := &proto.Offer{Job: j.id, Spec: j.specBytes, Replica: slot, Commit: commit, RunTimeout: runTimeout}
	var msg proto.Msg
	for pooled := true; ; pooled = false {
		octx, ocancel := context.WithTimeout(ctx, m.cfg.OfferTimeout)
		next, err := m.open(octx, p, pooled)
		ocancel()
		if err != nil {
			fail(proto.CodeInternal, err)
			return
		}
		wmu.Lock()
		js = next
		wmu.Unlock()
		err = write(offer, m.cfg.OfferTimeout)
		if err == nil {
			msg, err = js.conn.Read(m.cfg.OfferTimeout)
		}
		if err == nil {
			break
		}
		if js.reused && !errors.Is(err, proto.ErrTimeout) && ctx.Err() == nil {
			// The worker closed the idle stream as the offer went out: it
			// never saw the offer. Again on a new stream.
			m.log.Debug("idle job stream gone; offering on a new one", "job", j.id, "worker", p, "err", err)
			wmu.Lock()
			js.reset()
			wmu.Unlock()
			continue
		}
		fail(proto.CodeTimeout, fmt.Errorf("no answer to the offer: %w", err))
		return
	}
	conn := js.conn
	switch msg := msg.(type) {
	case *proto.Accept:
		if msg.Job != j.id {
			fail(proto.CodeProtocol, fmt.Errorf("accepted job %s, offered %s", msg.Job, j.id))
			return
		}
		send(event{kind: evAccepted})
		m.log.Debug("offer accepted", "job", j.id, "worker", p, "replica", slot, "took", time.Since(t0))
	case *proto.Decline:
		clean = msg.Job == j.id
		fail(msg.Code, fmt.Errorf("declined: %s: %s", msg.Code, msg.Reason))
		return
	default:
		fail(proto.CodeProtocol, fmt.Errorf("answered the offer with %s", msg.Type()))
		return
	}

	msg, err := conn.Read(runTimeout + m.cfg.OfferTimeout)
	if err != nil {
		fail(proto.CodeTimeout, fmt.Errorf("running: %w", err))
		return
	}
	var cm *quorum.Commitment
	if commit {
		c, ok := msg.(*proto.Commit)
		if !ok {
			if e, ok := msg.(*proto.Error); ok {
				clean = e.Job == j.id
				fail(e.Code, fmt.Errorf("worker error: %s: %s", e.Code, e.Message))
				return
			}
			fail(proto.CodeProtocol, fmt.Errorf("sent %s where a commitment was due", msg.Type()))
			return
		}
		cc := quorum.Commitment{Job: c.Job, Worker: c.Worker, Hash: c.Hash, Sig: c.Sig}
		if c.Job != j.id || c.Worker != p {
			fail(proto.CodeProtocol, fmt.Errorf("commitment for job %s by %s on a stream for job %s with %s", c.Job, c.Worker, j.id, p))
			return
		}
		if err := cc.Verify(); err != nil {
			fail(proto.CodeProtocol, err)
			return
		}
		cm = &cc
		send(event{kind: evCommitted, commit: cc})
		select {
		case <-reveal:
		case <-ctx.Done():
			return
		}
		if err := write(&proto.Reveal{Job: j.id}, m.cfg.RevealTimeout); err != nil {
			fail(proto.CodeInternal, err)
			return
		}
		msg, err = conn.Read(m.cfg.RevealTimeout)
		if err != nil {
			fail(proto.CodeTimeout, fmt.Errorf("waiting for the revealed result: %w", err))
			return
		}
	}
	switch msg := msg.(type) {
	case *proto.Result:
		res, err := checkResult(j.id, p, msg.Result)
		if err != nil {
			fail(proto.CodeProtocol, err)
			return
		}
		if cm != nil {
			if err := quorum.CheckReveal(*cm, quorum.ResultOf(res)); err != nil {
				fail(proto.CodeProtocol, err)
				return
			}
		}
		clean = true
		send(event{kind: evResult, result: res})
		m.log.Debug("result received", "job", j.id, "worker", p, "replica", slot, "took", time.Since(t0))
	case *proto.Error:
		clean = msg.Job == j.id
		fail(msg.Code, fmt.Errorf("worker error: %s: %s", msg.Code, msg.Message))
	default:
		fail(proto.CodeProtocol, fmt.Errorf("sent %s where a result was due", msg.Type()))
	}
}

// checkResult decodes a signed result from worker and checks that it is
// worker's result for job.
func checkResult(job cid.Cid, worker peer.ID, b []byte) (*jobs.SignedResult, error) {
	res, err := jobs.DecodeSignedResult(b)
	if err != nil {
		return nil, fmt.Errorf("result from %s: %w", worker, err)
	}
	if res.Result.Job != job {
		return nil, fmt.Errorf("result from %s is for job %s, which was not offered to it (offered %s)", worker, res.Result.Job, job)
	}
	if res.Result.Worker != worker {
		return nil, fmt.Errorf("result from %s is signed as %s's", worker, res.Result.Worker)
	}
	return res, nil
}
