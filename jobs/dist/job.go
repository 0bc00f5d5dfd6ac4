package dist

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoalnet/shoal/jobs"
	"github.com/shoalnet/shoal/jobs/proto"
	"github.com/shoalnet/shoal/jobs/quorum"
	"github.com/shoalnet/shoal/jobs/sched"
)

// A job is one submitted job in memory.
type job struct {
	id        cid.Cid
	spec      *jobs.SignedSpec
	specBytes []byte
	cancel    context.CancelFunc // set by Manager.start
	done      chan struct{}      // closed when the run loop ends
	saveMu    sync.Mutex         // held across reading and storing rec, so saves land in order

	mu       sync.Mutex
	rec      *record         // persisted part; guarded by mu
	state    jobs.State      // guarded by mu
	blocker  string          // guarded by mu
	replicas []ReplicaStatus // guarded by mu
	canceled bool            // guarded by mu
	endSaved bool            // the job's end is in the store; guarded by mu
	changed  chan struct{}   // closed and replaced on every change; guarded by mu
	// subClaimed: recording the job.submitted entry has been taken on,
	// alone (recordSubmitted) or with the verdict (recordVerdict); subDone
	// is closed once it is recorded or failed. Guarded by mu.
	subClaimed bool
	subDone    chan struct{}
}

// claimSubmitted takes on recording j's job.submitted entry; it reports
// false if the entry is recorded or taken on already.
func (j *job) claimSubmitted() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.subClaimed || j.rec.LedgerSubmitted != nil {
		return false
	}
	j.subClaimed = true
	return true
}

// submittedRecorded notes the outcome of recording j's job.submitted
// entry, taken on by claimSubmitted: its number, or err.
func (j *job) submittedRecorded(seq uint64, err error) {
	j.update(func() {
		if err != nil {
			j.rec.LedgerError = joinError(j.rec.LedgerError, fmt.Sprintf("could not record %s: %v", jobs.LedgerKindSubmitted, err))
		} else {
			j.rec.LedgerSubmitted = &seq
		}
	})
	j.mu.Lock()
	done := j.subDone
	j.mu.Unlock()
	close(done)
}

func newJob(rec *record) *job {
	b, _ := rec.Spec.Encode()
	j := &job{id: rec.Spec.ID, spec: rec.Spec, specBytes: b, rec: rec, state: rec.State,
		done: make(chan struct{}), changed: make(chan struct{})}
	if len(rec.Replicas) == rec.Spec.Envelope.Replicas {
		j.replicas = slices.Clone(rec.Replicas) // an ended job's, as it ended
	} else {
		j.replicas = make([]ReplicaStatus, rec.Spec.Envelope.Replicas)
		for i := range j.replicas {
			j.replicas[i] = ReplicaStatus{Replica: i, State: jobs.StateQueued}
		}
	}
	if rec.State.Terminal() {
		close(j.done)
	}
	return j
}

// notifyLocked wakes watchers; j.mu must be held.
func (j *job) notifyLocked() {
	j.rec.Updated = time.Now()
	close(j.changed)
	j.changed = make(chan struct{})
}

func (j *job) update(f func()) {
	j.mu.Lock()
	defer j.mu.Unlock()
	f()
	j.notifyLocked()
}

func (j *job) status() Status {
	j.mu.Lock()
	defer j.mu.Unlock()
	env := j.spec.Envelope
	st := Status{
		Job: j.id, State: j.state, Verdict: j.rec.Verdict, Reason: j.rec.Reason, Blocker: j.blocker,
		Submitter: env.Submitter, Replicas: env.Replicas, Quorum: env.Quorum, Attempts: j.rec.Attempts,
		Workers: append([]ReplicaStatus(nil), j.replicas...), Disagreeing: append([]peer.ID(nil), j.rec.Disagreeing...),
		Created: j.rec.Created, Updated: j.rec.Updated,
	}
	if j.rec.LedgerSubmitted != nil || j.rec.LedgerVerdict != nil || j.rec.LedgerError != "" {
		st.Ledger = &LedgerStatus{Submitted: j.rec.LedgerSubmitted, Verdict: j.rec.LedgerVerdict, Error: j.rec.LedgerError}
	}
	for _, r := range j.rec.Results {
		rs := resultStatus(r, counts(r))
		if j.rec.Verdict == quorum.Verified && rs.Vote && !contains(j.rec.Disagreeing, rs.Worker) {
			rs.Agrees = true
		}
		st.Results = append(st.Results, rs)
	}
	return st
}

func contains(ids []peer.ID, p peer.ID) bool {
	for _, id := range ids {
		if id == p {
			return true
		}
	}
	return false
}

// Replica slot states inside the run loop.
type slotState int

const (
	slotIdle slotState = iota
	slotOffered
	slotRunning
	slotCommitted
	slotDone
	slotFailed
)

type slot struct {
	state  slotState
	worker peer.ID
	reveal chan struct{} // closed to ask the worker for its result
	err    error
}

const (
	minBackoff  = 50 * time.Millisecond
	maxBackoff  = 2 * time.Second
	busyBackoff = 250 * time.Millisecond
)

// run places, watches and decides job j until it ends, ctx is cancelled
// (Cancel, or the Manager closing) or its deadline passes.
func (m *Manager) run(ctx context.Context, j *job) {
	defer func() {
		select {
		case <-j.done:
		default:
			close(j.done)
		}
	}()
	env := j.spec.Envelope
	n := env.Replicas
	log := m.log.With("job", j.id)
	slots := make([]*slot, n)
	for i := range slots {
		slots[i] = &slot{reveal: make(chan struct{})}
	}
	used := make(map[peer.ID]bool) // peers that ran or are running a replica
	busyUntil := make(map[peer.ID]time.Time)
	j.mu.Lock()
	k := 0
	for _, r := range j.rec.Results {
		used[r.Result.Worker] = true
		if counts(r) && k < n {
			slots[k].state, slots[k].worker = slotDone, r.Result.Worker
			j.replicas[k].Worker, j.replicas[k].State = r.Result.Worker, jobs.StateDone
			k++
		}
	}
	deadline := j.rec.Deadline
	j.mu.Unlock()
	submitted := m.recordSubmitted(j)

	actx, acancel := context.WithCancel(ctx)
	defer acancel()
	events := make(chan event, 4*n)
	outstanding := 0
	unsaved := false // results received since the job was last saved
	revealPhase := false
	var commitC <-chan time.Time
	var retryC <-chan time.Time
	backoff := minBackoff
	deadlineT := time.NewTimer(time.Until(deadline))
	defer deadlineT.Stop()
	maxAttempts := n + m.cfg.Retries

	setReplica := func(i int, f func(r *ReplicaStatus)) {
		j.update(func() {
			f(&j.replicas[i])
			j.state = jobState(slots)
		})
	}
	startReveal := func() {
		revealPhase = true
		for _, s := range slots {
			if s.state == slotCommitted {
				close(s.reveal)
				s.state = slotRunning // waiting for the result
			}
		}
	}
	handle := func(ev event) {
		s := slots[ev.slot]
		switch ev.kind {
		case evAccepted:
			s.state = slotRunning
			setReplica(ev.slot, func(r *ReplicaStatus) { r.State = jobs.StateRunning })
		case evCommitted:
			s.state = slotCommitted
			setReplica(ev.slot, func(r *ReplicaStatus) { r.State = jobs.StateCommitted })
			if revealPhase {
				close(s.reveal)
				s.state = slotRunning
			} else if commitC == nil {
				commitC = time.After(m.cfg.CommitWait)
			}
		case evResult:
			outstanding--
			r := ev.result
			vote := counts(r)
			j.update(func() { j.rec.Results = append(j.rec.Results, r) })
			if vote {
				s.state = slotDone
				setReplica(ev.slot, func(rs *ReplicaStatus) { rs.State = jobs.StateDone; rs.Error = "" })
			} else {
				s.state, s.reveal = slotIdle, make(chan struct{})
				setReplica(ev.slot, func(rs *ReplicaStatus) {
					rs.State = jobs.StateQueued
					rs.Error = fmt.Sprintf("%s could not run it: %s %s", ev.worker, r.Result.Failure, r.Result.Reason)
				})
			}
			unsaved = true
		case evFailed:
			outstanding--
			m.met.failures.WithLabelValues(ev.code.String()).Inc()
			log.Debug("attempt failed", "worker", ev.worker, "replica", ev.slot, "err", ev.err)
			if ev.code == proto.CodeBusy {
				// A busy worker may take the job later; it does not use up the budget.
				delete(used, ev.worker)
				busyUntil[ev.worker] = time.Now().Add(busyBackoff)
				j.update(func() { j.rec.Attempts-- })
			}
			if ev.code.Retryable() {
				s.state, s.reveal, s.err = slotIdle, make(chan struct{}), ev.err
				setReplica(ev.slot, func(rs *ReplicaStatus) {
					rs.State, rs.Error = jobs.StateQueued, fmt.Sprintf("%s: %v", ev.worker, ev.err)
				})
			} else {
				s.state, s.err = slotFailed, ev.err
				setReplica(ev.slot, func(rs *ReplicaStatus) {
					rs.State, rs.Error = jobs.StateFailed, fmt.Sprintf("%s: %v", ev.worker, ev.err)
				})
			}
		}
	}

	timedOut := false
loop:
	for {
		// Place idle replicas.
		var idle []int
		for i, s := range slots {
			if s.state == slotIdle {
				idle = append(idle, i)
			}
		}
		j.mu.Lock()
		attempts := j.rec.Attempts
		j.mu.Unlock()
		if len(idle) > 0 && attempts >= maxAttempts && outstanding == 0 {
			for _, i := range idle {
				slots[i].state = slotFailed
				err := slots[i].err
				setReplica(i, func(r *ReplicaStatus) {
					r.State = jobs.StateFailed
					r.Error = fmt.Sprintf("retry budget of %d offers spent (last error: %v)", maxAttempts, err)
				})
			}
			idle = nil
		}
		if len(idle) > 0 && attempts < maxAttempts && retryC == nil {
			exclude := make(map[peer.ID]bool, len(used)+len(busyUntil))
			for p := range used {
				exclude[p] = true
			}
			now := time.Now()
			for p, t := range busyUntil {
				if now.Before(t) {
					exclude[p] = true
				} else {
					delete(busyUntil, p)
				}
			}
			count := min(len(idle), maxAttempts-attempts)
			plan := sched.Pick(m.cfg.View.View(), sched.Request{
				Runtime: m.cfg.Runtime(env.Computation.Runtime), Constraints: env.Constraints,
				Count: count, Exclude: exclude, Convicted: m.cfg.Convicted, Self: m.self, AllowSelf: m.cfg.AllowSelf,
				Salt: j.id.Bytes(),
			}, &m.load, m.cfg.Latency)
			if m.cfg.Local == nil {
				plan.Peers = slicesDelete(plan.Peers, m.self)
			}
			for k, p := range plan.Peers {
				i := idle[k]
				s := slots[i]
				s.state, s.worker = slotOffered, p
				used[p] = true
				outstanding++
				m.load.Add(p)
				j.update(func() {
					j.rec.Attempts++
					j.replicas[i].Worker, j.replicas[i].State = p, jobs.StateScheduled
					j.replicas[i].Attempts++
					j.state = jobState(slots)
				})
				go m.attempt(actx, j, i, p, s.reveal, events)
			}
			blocker := ""
			if len(plan.Peers) < len(idle) {
				why := plan.Blocker
				if why == "" {
					why = fmt.Sprintf("%d more worker(s) needed", len(idle)-len(plan.Peers))
				}
				blocker = fmt.Sprintf("%s; retrying in %v", why, backoff)
				retryC = time.After(backoff)
				backoff = min(2*backoff, maxBackoff)
			} else {
				backoff = minBackoff
			}
			j.update(func() { j.blocker = blocker })
		}
		if n > 1 && !revealPhase {
			if w := commitBlocker(slots); w != "" {
				j.update(func() {
					if j.blocker == "" || strings.Contains(j.blocker, "replicas committed") {
						j.blocker = w
					}
				})
			}
			all := true
			for _, s := range slots {
				if s.state != slotCommitted && s.state != slotDone && s.state != slotFailed {
					all = false
				}
			}
			if all {
				startReveal()
			}
		}
		terminal := true
		for _, s := range slots {
			if s.state != slotDone && s.state != slotFailed {
				terminal = false
			}
		}
		if terminal && outstanding == 0 {
			break // finish saves the job with its results
		}
		if unsaved {
			// Results are kept before waiting on anything more, so a
			// resumed job does not run them again.
			if err := m.save(ctx, j); err != nil {
				log.Warn("could not persist job result", "err", err)
			}
			unsaved = false
		}
		var changed <-chan struct{}
		if retryC != nil {
			changed = m.cfg.View.Changed()
		}
		select {
		case ev := <-events:
			handle(ev)
		case <-retryC:
			retryC = nil
		case <-changed:
			retryC = nil
		case <-commitC:
			if !revealPhase {
				log.Debug("commit deadline passed; revealing the commitments in hand")
				startReveal()
			}
		case <-deadlineT.C:
			timedOut = true
			break loop
		case <-ctx.Done():
			break loop
		}
	}
	// Stop what is still running and collect its events.
	acancel()
	for outstanding > 0 {
		ev := <-events
		switch ev.kind {
		case evResult:
			outstanding--
			r := ev.result
			j.update(func() { j.rec.Results = append(j.rec.Results, r) })
		case evFailed:
			outstanding--
		}
	}
	j.mu.Lock()
	canceled := j.canceled
	j.mu.Unlock()
	if ctx.Err() != nil && !canceled {
		// The manager is closing: leave the job to be resumed.
		return
	}
	m.finish(ctx, j, slots, timedOut, canceled, submitted)
}

// finish decides the verdict, records it in the ledger, persists it and
// announces it. The job is reported ended only once its verdict entry is
// durable (or failed to record), so that a client that sees the end can
// find the entry.
func (m *Manager) finish(ctx context.Context, j *job, slots []*slot, timedOut, canceled bool, submitted <-chan struct{}) {
	env := j.spec.Envelope
	j.mu.Lock()
	var votes []quorum.Result
	for _, r := range j.rec.Results {
		if counts(r) {
			votes = append(votes, quorum.ResultOf(r))
		}
	}
	var (
		state       jobs.State
		verdict     quorum.Kind
		reason      string
		disagreeing []peer.ID
	)
	switch {
	case canceled:
		state, reason = jobs.StateCancelled, "cancelled by its submitter"
	default:
		v := quorum.Decide(votes, env.Quorum)
		verdict, disagreeing, reason = v.Kind, v.Disagreeing, v.Reason
		if v.Kind == quorum.Verified {
			state = jobs.StateDone
		} else {
			state = jobs.StateFailed
		}
		if v.Kind == quorum.Failed {
			var errs []string
			for i, s := range slots {
				if s.state != slotDone && s.err != nil {
					errs = append(errs, fmt.Sprintf("replica %d: %v", i, s.err))
				}
			}
			if timedOut {
				errs = append([]string{"the job's deadline passed"}, errs...)
			}
			if len(errs) > 0 {
				reason += "; " + strings.Join(errs, "; ")
			}
		}
	}
	results := append([]*jobs.SignedResult(nil), j.rec.Results...)
	j.mu.Unlock()

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	t0 := time.Now()
	seq, lerr := m.recordVerdict(sctx, j, submitted, state, verdict, reason, results, disagreeing)

	j.mu.Lock()
	j.blocker = ""
	j.state = state
	j.rec.Reason = reason
	if !canceled {
		j.rec.Verdict, j.rec.Disagreeing = verdict, disagreeing
	}
	if lerr != nil {
		j.rec.LedgerError = joinError(j.rec.LedgerError, lerr.Error())
	} else if m.cfg.Recorder != nil {
		j.rec.LedgerVerdict = &seq
	}
	for i := range j.replicas {
		if !j.replicas[i].State.Terminal() {
			j.replicas[i].State = j.state
		}
	}
	j.rec.State = j.state
	j.rec.Replicas = slices.Clone(j.replicas)
	j.notifyLocked()
	j.mu.Unlock()
	recorded := time.Now()
	if err := m.save(sctx, j); err != nil {
		m.log.Error("could not persist the end of a job", "job", j.id, "err", err)
	} else {
		j.update(func() { j.endSaved = true })
	}
	saved := time.Now()
	if canceled {
		m.met.verdicts.WithLabelValues("cancelled").Inc()
	} else {
		m.met.verdicts.WithLabelValues(string(j.rec.Verdict)).Inc()
		m.met.latency.Observe(time.Since(j.rec.Created).Seconds())
	}
	if m.cfg.Announcer != nil && !canceled {
		if err := m.cfg.Announcer.Announce(sctx, j.spec, j.status()); err != nil && !errors.Is(err, context.Canceled) {
			m.log.Warn("could not announce a job's verdict", "job", j.id, "err", err)
		}
	}
	// A verified job is logged at debug level: a busy node ends hundreds a
	// second, and `shoal job list`, the metrics and the ledger hold them.
	// Anything else is worth an operator's eye.
	level := slog.LevelInfo
	if j.rec.Verdict == quorum.Verified {
		level = slog.LevelDebug
	}
	m.log.Log(sctx, level, "job ended", "job", j.id, "state", j.state, "verdict", j.rec.Verdict, "reason", j.rec.Reason,
		"took", time.Since(j.rec.Created), "record", recorded.Sub(t0), "save", saved.Sub(recorded), "announce", time.Since(saved))
	if m.cfg.Ended != nil {
		m.cfg.Ended(j.status())
	}
}

// recordTimeout bounds one ledger append of the manager or the worker.
const recordTimeout = 30 * time.Second

// recordSubmitted has job j's job.submitted entry recorded, unless it was
// recorded before (a resumed job), and returns a channel closed when that
// is done. A job that ends within submittedDefer has the entry recorded
// with its job.verdict entry, in one append and one sync (recordVerdict);
// one still running then, or left unfinished by Close, has it recorded
// alone. A failure is logged and kept in the job's status. The entry's
// number is persisted with the job's end, or after submittedSaveDelay if
// the job is still running then (so that a resumed job does not record it
// again).
func (m *Manager) recordSubmitted(j *job) <-chan struct{} {
	done := make(chan struct{})
	j.mu.Lock()
	recorded := j.rec.LedgerSubmitted != nil
	j.subDone = done
	j.mu.Unlock()
	if m.cfg.Recorder == nil || recorded {
		close(done)
		return done
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		wait := time.NewTimer(submittedDefer)
		select {
		case <-wait.C:
		case <-j.done: // ended (its verdict took the entry) or left for Close
		case <-m.ctx.Done():
		}
		wait.Stop()
		if !j.claimSubmitted() {
			return // recorded with the verdict
		}
		// Not cut short by Close: the append is brief and Close waits.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(m.ctx), recordTimeout)
		defer cancel()
		if err := m.recordSubmittedAlone(ctx, j); err != nil {
			return
		}
		t := time.NewTimer(submittedSaveDelay)
		defer t.Stop()
		select {
		case <-j.done:
		case <-t.C:
		case <-m.ctx.Done():
		}
		j.mu.Lock()
		saved := j.endSaved
		j.mu.Unlock()
		if saved {
			return // its end, saved after the entry was recorded, holds the number
		}
		if err := m.save(ctx, j); err != nil {
			m.log.Warn("could not persist a job's ledger entry number", "job", j.id, "err", err)
		}
	}()
	return done
}

// submittedSaveDelay is how long a job's job.submitted entry number may
// wait to be persisted with the job's end before it is persisted alone.
const submittedSaveDelay = time.Second

// submittedDefer is how long a job's job.submitted entry waits for the
// job's end, to be appended with its job.verdict entry in one sync (the
// ledger's syncs are much of a short job's cost to its submitter).
const submittedDefer = 500 * time.Millisecond

// recordVerdict records the job.verdict entry after the job.submitted
// one: with it, in one append, if the submitted entry is not recorded or
// taken on yet; else once it is.
func (m *Manager) recordVerdict(ctx context.Context, j *job, submitted <-chan struct{}, state jobs.State, verdict quorum.Kind,
	reason string, results []*jobs.SignedResult, disagreeing []peer.ID) (uint64, error) {
	if m.cfg.Recorder == nil {
		return 0, nil
	}
	withSubmitted := j.claimSubmitted()
	if !withSubmitted {
		select {
		case <-submitted:
		case <-ctx.Done():
		}
	}
	env := j.spec.Envelope
	_, body, err := jobs.NewVerdictEntry(j.id, state, string(verdict), reason, env.Replicas, env.Quorum, results, disagreeing)
	var seq uint64
	switch {
	case err != nil && withSubmitted:
		m.recordSubmittedAlone(ctx, j)
	case err != nil:
	case withSubmitted:
		seq, err = m.recordWithSubmitted(ctx, j, body)
	default:
		seq, err = m.cfg.Recorder.Record(ctx, jobs.LedgerKindVerdict, body)
	}
	if err != nil {
		m.log.Error("could not record a job's verdict in the ledger", "job", j.id, "err", err)
		m.met.ledgerFailures.Inc()
		return 0, fmt.Errorf("could not record %s: %w", jobs.LedgerKindVerdict, err)
	}
	return seq, nil
}

// recordWithSubmitted records j's job.submitted entry, claimed by the
// caller, and the job.verdict entry with body after it: in one append when
// the recorder takes several (jobs.BatchRecorder), else one after the
// other. It returns the verdict entry's number.
func (m *Manager) recordWithSubmitted(ctx context.Context, j *job, body []byte) (uint64, error) {
	br, ok := m.cfg.Recorder.(jobs.BatchRecorder)
	if !ok {
		m.recordSubmittedAlone(ctx, j)
		return m.cfg.Recorder.Record(ctx, jobs.LedgerKindVerdict, body)
	}
	sub, err := jobs.NewSubmittedEntry(j.spec).Encode()
	if err != nil {
		m.submittedOutcome(j, 0, err)
		return m.cfg.Recorder.Record(ctx, jobs.LedgerKindVerdict, body)
	}
	seqs, err := br.RecordAll(ctx, []string{jobs.LedgerKindSubmitted, jobs.LedgerKindVerdict}, [][]byte{sub, body})
	if err == nil && len(seqs) != 2 {
		err = fmt.Errorf("the ledger returned %d entry numbers for 2 entries", len(seqs))
	}
	if err != nil {
		m.submittedOutcome(j, 0, err)
		return 0, err
	}
	m.submittedOutcome(j, seqs[0], nil)
	return seqs[1], nil
}

// recordSubmittedAlone records j's job.submitted entry, claimed by the
// caller, on its own.
func (m *Manager) recordSubmittedAlone(ctx context.Context, j *job) error {
	body, err := jobs.NewSubmittedEntry(j.spec).Encode()
	var seq uint64
	if err == nil {
		seq, err = m.cfg.Recorder.Record(ctx, jobs.LedgerKindSubmitted, body)
	}
	m.submittedOutcome(j, seq, err)
	return err
}

// submittedOutcome notes in j the outcome of recording its job.submitted
// entry (see job.submittedRecorded), and logs and counts a failure.
func (m *Manager) submittedOutcome(j *job, seq uint64, err error) {
	if err != nil {
		m.log.Error("could not record a submitted job in the ledger", "job", j.id, "err", err)
		m.met.ledgerFailures.Inc()
	}
	j.submittedRecorded(seq, err)
}

func joinError(prev, s string) string {
	if prev == "" {
		return s
	}
	return prev + "; " + s
}

func (m *Manager) save(ctx context.Context, j *job) error {
	j.saveMu.Lock()
	defer j.saveMu.Unlock()
	j.mu.Lock()
	rec := *j.rec
	rec.Results = append([]*jobs.SignedResult(nil), j.rec.Results...)
	j.mu.Unlock()
	return m.st.put(ctx, &rec)
}

// jobState derives the job's state from its replicas'.
func jobState(slots []*slot) jobs.State {
	var offered, running, committed, done int
	for _, s := range slots {
		switch s.state {
		case slotOffered:
			offered++
		case slotRunning:
			running++
		case slotCommitted:
			committed++
		case slotDone:
			done++
		}
	}
	switch {
	case running > 0:
		return jobs.StateRunning
	case committed > 0 && committed+done == len(slots):
		return jobs.StateVerifying
	case committed > 0:
		return jobs.StateCommitted
	case offered > 0:
		return jobs.StateScheduled
	case done == len(slots):
		return jobs.StateVerifying
	}
	return jobs.StateQueued
}

// commitBlocker says which replicas the reveal is waiting on, or "".
func commitBlocker(slots []*slot) string {
	committed := 0
	var waiting []string
	for _, s := range slots {
		switch s.state {
		case slotCommitted, slotDone:
			committed++
		case slotOffered, slotRunning:
			waiting = append(waiting, shortID(s.worker))
		}
	}
	if committed == 0 || len(waiting) == 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d replicas committed, waiting on %s", committed, len(slots), strings.Join(waiting, ", "))
}

func shortID(p peer.ID) string {
	s := p.String()
	if len(s) > 16 {
		return s[:6] + "…" + s[len(s)-6:]
	}
	return s
}

func slicesDelete(ps []peer.ID, p peer.ID) []peer.ID {
	out := ps[:0]
	for _, q := range ps {
		if q != p {
			out = append(out, q)
		}
	}
	return out
}
