package dist

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multicodec"

	"github.com/shoalnet/shoal/crypto"
	"github.com/shoalnet/shoal/jobs"
	"github.com/shoalnet/shoal/jobs/proto"
	"github.com/shoalnet/shoal/jobs/quorum"
)

// A CheatMode makes a worker return wrong results on purpose. It exists
// only so tests can check that the quorum outvotes a real cheater; never set
// it on a node that serves anyone.
type CheatMode string

// The cheat modes. CheatEnv is the environment variable that selects one on
// a daemon (test only).
const (
	CheatNone CheatMode = ""
	// CheatWrongStdout replaces stdout with a CID unique to the worker, so
	// two cheaters disagree with each other as well as with honest workers.
	CheatWrongStdout CheatMode = "wrong-stdout"
	// CheatColludeStdout replaces stdout with one fixed wrong CID, so
	// cheaters agree with each other (colluding cheaters).
	CheatColludeStdout CheatMode = "collude-stdout"
	// CheatUnrecorded returns honest results but leaves them out of the
	// worker's ledger, so that a submitter's check of the worker's log can
	// be tested against a worker that hides what it ran.
	CheatUnrecorded CheatMode = "unrecorded"

	CheatEnv = "SHOAL_TEST_CHEAT"
)

// ParseCheatMode returns the mode named s ("" for none).
func ParseCheatMode(s string) (CheatMode, error) {
	switch m := CheatMode(s); m {
	case CheatNone, CheatWrongStdout, CheatColludeStdout, CheatUnrecorded:
		return m, nil
	}
	return "", fmt.Errorf("dist: %s=%q: want %q, %q or %q (test only)", CheatEnv, s, CheatWrongStdout, CheatColludeStdout, CheatUnrecorded)
}

// WorkerConfig configures a Worker. Host, Key and Executor are required.
type WorkerConfig struct {
	Host host.Host
	Key  crypto.PrivKey
	// Executor runs accepted jobs on this node (jobs/local). It fetches the
	// job's blocks from the network; the offering peer is connected.
	Executor jobs.Executor
	// Slots is how many offers run at once; 0 declines every offer. Default 0.
	Slots int
	// Queue is how many accepted offers may wait for a slot beyond Slots.
	// Default 0.
	Queue int
	// OnFree is called with the number of free slots whenever it changes
	// (publish it in the capacity advert). Optional.
	OnFree func(free int)
	// Runtimes are the job runtimes this worker runs. Default [jobs.RuntimeWASIP1].
	Runtimes []string
	// Labels are this node's labels; offers whose constraints they do not
	// meet are declined. Optional.
	Labels map[string]string
	// Cheat makes this worker return wrong results (tests only).
	Cheat CheatMode
	// Recorder records a job.executed entry in the node's ledger for every
	// result, before the result (or its commitment) leaves the worker; a
	// result that cannot be recorded is withheld and the submitter told
	// why. Optional.
	Recorder jobs.Recorder
	// Logger receives the worker's logs. Default: discard.
	Logger *slog.Logger
}

// Timeouts of the worker side of the protocol.
const (
	workerOfferTimeout = 10 * time.Second // from stream open to the offer
	workerWriteTimeout = 10 * time.Second // any single write
	revealGrace        = 30 * time.Second // extra wait for Reveal beyond the run timeout
)

// A Worker serves /shoal/job/1.0.0: it accepts offers while it has a slot,
// runs them through its Runner and answers with a result or a commitment.
// Its methods are safe for concurrent use.
type Worker struct {
	cfg  WorkerConfig
	self peer.ID
	log  *slog.Logger
	sem  chan struct{} // one token per running job

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	admitted int // offers accepted and not finished; guarded by mu
	running  int // offers holding a slot; guarded by mu
	closed   bool
}

// NewWorker starts serving the job protocol on cfg.Host.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	if cfg.Host == nil || cfg.Key == nil || cfg.Executor == nil {
		return nil, errors.New("dist: NewWorker needs a host, a key and an executor")
	}
	if cfg.Slots < 0 || cfg.Queue < 0 {
		return nil, fmt.Errorf("dist: worker slots %d, queue %d: want ≥ 0", cfg.Slots, cfg.Queue)
	}
	if len(cfg.Runtimes) == 0 {
		cfg.Runtimes = []string{jobs.RuntimeWASIP1}
	}
	if _, err := ParseCheatMode(string(cfg.Cheat)); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	self, err := crypto.PeerID(cfg.Key)
	if err != nil {
		return nil, err
	}
	w := &Worker{cfg: cfg, self: self, log: cfg.Logger, sem: make(chan struct{}, max(cfg.Slots, 1))}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	if cfg.Cheat != CheatNone {
		w.log.Warn("TEST-ONLY CHEAT MODE: this worker returns WRONG results on purpose", "mode", cfg.Cheat, "env", CheatEnv)
	}
	cfg.Host.SetStreamHandler(proto.ID, w.handleStream)
	w.reportFree()
	return w, nil
}

// Close stops accepting offers, cancels running jobs and waits for them.
func (w *Worker) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	w.cfg.Host.RemoveStreamHandler(proto.ID)
	w.cancel()
	w.wg.Wait()
	return nil
}

// Free returns the number of free slots.
func (w *Worker) Free() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return max(0, w.cfg.Slots-w.running)
}

func (w *Worker) reportFree() {
	if w.cfg.OnFree != nil {
		w.cfg.OnFree(w.Free())
	}
}

// A stream is what a worker or a submitter speaks the protocol over: a
// libp2p stream, or an in-memory pipe when a node offers a job to itself.
type stream interface {
	io.ReadWriteCloser
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// track counts one more exchange for Close to wait on; it reports false
// once the worker is closed.
func (w *Worker) track() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	w.wg.Add(1)
	return true
}

func (w *Worker) handleStream(s network.Stream) {
	if !w.track() {
		s.Reset()
		return
	}
	defer w.wg.Done()
	remote := s.Conn().RemotePeer()
	err := w.serve(s, remote)
	switch {
	case errors.Is(err, errDeclined):
		w.log.Debug("declined a job offer", "peer", remote, "err", err)
	case err != nil:
		w.log.Debug("job stream ended with an error", "peer", remote, "err", err)
		s.Reset()
		return
	}
	s.Close()
}

// serveLocal serves one exchange with this node over an in-memory pipe,
// in a goroutine that Close waits for.
func (w *Worker) serveLocal(s stream) {
	if !w.track() {
		s.Close()
		return
	}
	go func() {
		defer w.wg.Done()
		if err := w.serve(s, w.self); err != nil {
			w.log.Debug("local job exchange ended with an error", "err", err)
		}
		s.Close()
	}()
}

// errDeclined is wrapped by serve's error when it declined an offer; the
// stream is then closed, not reset, so the Decline arrives.
var errDeclined = errors.New("declined")

// decline writes a Decline and returns an error describing it.
func decline(conn *proto.Conn, job *proto.Offer, code proto.Code, reason string) error {
	if err := conn.Write(&proto.Decline{Job: job.Job, Code: code, Reason: reason}, workerWriteTimeout); err != nil {
		return err
	}
	return fmt.Errorf("%w job %s: %s: %s", errDeclined, job.Job, code, reason)
}

// admit takes an admission for one offer, or reports why not.
func (w *Worker) admit() (proto.Code, string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	code, reason, ok := w.wouldAdmitLocked()
	if ok {
		w.admitted++
	}
	return code, reason, ok
}

// wouldAdmit reports whether an offer would be admitted now, taking
// nothing.
func (w *Worker) wouldAdmit() (proto.Code, string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wouldAdmitLocked()
}

func (w *Worker) wouldAdmitLocked() (proto.Code, string, bool) {
	switch {
	case w.closed:
		return proto.CodeShuttingDown, "the worker is shutting down", false
	case w.cfg.Slots == 0:
		return proto.CodeRefused, "this node offers no job slots", false
	case w.admitted >= w.cfg.Slots+w.cfg.Queue:
		return proto.CodeBusy, fmt.Sprintf("all %d slots are busy", w.cfg.Slots), false
	}
	return 0, "", true
}

func (w *Worker) unadmit() {
	w.mu.Lock()
	w.admitted--
	w.mu.Unlock()
}

// serve runs the worker side of one exchange with remote.
func (w *Worker) serve(s stream, remote peer.ID) error {
	conn := proto.NewConn(s)
	msg, err := conn.Read(workerOfferTimeout)
	if err != nil {
		return fmt.Errorf("read offer from %s: %w", remote, err)
	}
	offer, ok := msg.(*proto.Offer)
	if !ok {
		conn.Write(&proto.Error{Job: msg.JobCID(), Code: proto.CodeProtocol, Message: fmt.Sprintf("expected an offer, got %s", msg.Type())}, workerWriteTimeout)
		return fmt.Errorf("peer %s opened with %s instead of an offer", remote, msg.Type())
	}
	// A full worker says so before it decodes and checks the spec; the
	// admission below is the one that counts.
	if code, reason, ok := w.wouldAdmit(); !ok {
		return decline(conn, offer, code, reason)
	}
	spec, err := jobs.DecodeSignedSpec(offer.Spec)
	if err != nil {
		return decline(conn, offer, proto.CodeBadSpec, err.Error())
	}
	env := spec.Envelope
	switch {
	case spec.ID != offer.Job:
		return decline(conn, offer, proto.CodeBadSpec, fmt.Sprintf("the spec is job %s, the offer names %s", spec.ID, offer.Job))
	case env.Submitter != remote:
		return decline(conn, offer, proto.CodeRefused, fmt.Sprintf("the spec was submitted by %s, not by the offering peer %s", env.Submitter, remote))
	case !slices.Contains(w.cfg.Runtimes, env.Computation.Runtime):
		return decline(conn, offer, proto.CodeRuntime, fmt.Sprintf("runtime %q is not offered here", env.Computation.Runtime))
	case offer.Replica >= env.Replicas:
		return decline(conn, offer, proto.CodeBadSpec, fmt.Sprintf("replica %d of a job with %d replicas", offer.Replica, env.Replicas))
	case offer.Commit != (env.Replicas > 1):
		return decline(conn, offer, proto.CodeBadSpec, fmt.Sprintf("commit=%v for a job with %d replicas", offer.Commit, env.Replicas))
	}
	for k, v := range env.Constraints {
		if w.cfg.Labels[k] != v {
			return decline(conn, offer, proto.CodeRefused, fmt.Sprintf("this node does not carry label %s=%s", k, v))
		}
	}
	if code, reason, ok := w.admit(); !ok {
		return decline(conn, offer, code, reason)
	}
	defer w.unadmit()
	if err := conn.Write(&proto.Accept{Job: offer.Job}, workerWriteTimeout); err != nil {
		return err
	}
	log := w.log.With("job", offer.Job, "submitter", remote, "replica", offer.Replica)
	accepted := time.Now()

	ctx, cancel := context.WithTimeout(w.ctx, offer.RunTimeout)
	defer cancel()
	// Read the submitter's messages while the job runs: Cancel or a broken
	// stream stops the run; Reveal is handed on.
	incoming := make(chan proto.Msg, 1)
	readErr := make(chan error, 1)
	go func() {
		for {
			m, err := conn.Read(0)
			if err != nil {
				readErr <- err
				cancel()
				return
			}
			if _, ok := m.(*proto.Cancel); ok {
				cancel()
			}
			select {
			case incoming <- m:
			case <-ctx.Done():
				readErr <- ctx.Err()
				return
			}
		}
	}()

	res, err := w.run(ctx, spec)
	ran := time.Now()
	if err != nil {
		code := proto.CodeRun
		if ctx.Err() != nil {
			code = proto.CodeCanceled
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				code = proto.CodeTimeout
			}
		}
		log.Debug("job did not produce a result", "err", err)
		conn.Write(&proto.Error{Job: offer.Job, Code: code, Message: truncate(err.Error())}, workerWriteTimeout)
		return nil
	}
	resBytes, err := res.Encode()
	if err != nil {
		conn.Write(&proto.Error{Job: offer.Job, Code: proto.CodeInternal, Message: truncate(err.Error())}, workerWriteTimeout)
		return fmt.Errorf("encode result of job %s: %w", offer.Job, err)
	}
	if err := w.record(spec, res); err != nil {
		log.Error("could not record a job's result in the ledger; the result is withheld", "result", res.CID, "err", err)
		conn.Write(&proto.Error{Job: offer.Job, Code: proto.CodeInternal,
			Message: truncate("the worker could not record its result in its ledger: " + err.Error())}, workerWriteTimeout)
		return nil
	}
	recorded := time.Now()
	if offer.Commit {
		c, err := quorum.Commit(w.cfg.Key, offer.Job, res.CID)
		if err != nil {
			conn.Write(&proto.Error{Job: offer.Job, Code: proto.CodeInternal, Message: truncate(err.Error())}, workerWriteTimeout)
			return err
		}
		if err := conn.Write(&proto.Commit{Job: offer.Job, Worker: c.Worker, Hash: c.Hash, Sig: c.Sig}, workerWriteTimeout); err != nil {
			return err
		}
		timer := time.NewTimer(offer.RunTimeout + revealGrace)
		defer timer.Stop()
		select {
		case m := <-incoming:
			if _, ok := m.(*proto.Reveal); !ok {
				return fmt.Errorf("job %s: waiting for reveal, got %s", offer.Job, m.Type())
			}
		case err := <-readErr:
			return fmt.Errorf("job %s: waiting for reveal: %w", offer.Job, err)
		case <-timer.C:
			return fmt.Errorf("job %s: no reveal within %v", offer.Job, offer.RunTimeout+revealGrace)
		case <-w.ctx.Done():
			return errors.New("worker closed")
		}
	}
	if err := conn.Write(&proto.Result{Job: offer.Job, Result: resBytes}, workerWriteTimeout); err != nil {
		return err
	}
	log.Debug("job result sent", "result", res.CID, "exit", res.Result.ExitCode,
		"run", ran.Sub(accepted), "record", recorded.Sub(ran), "total", time.Since(accepted))
	return nil
}

// record records res in the ledger as a job.executed entry, if the worker
// has a Recorder.
func (w *Worker) record(spec *jobs.SignedSpec, res *jobs.SignedResult) error {
	if w.cfg.Recorder == nil || w.cfg.Cheat == CheatUnrecorded {
		return nil
	}
	body, err := (&jobs.ExecutedEntry{Job: spec.ID, Submitter: spec.Envelope.Submitter, Result: res}).Encode()
	if err != nil {
		return err
	}
	// Not cut short by a cancelled job: the result exists and is signed.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), recordTimeout)
	defer cancel()
	if _, err := w.cfg.Recorder.Record(ctx, jobs.LedgerKindExecuted, body); err != nil {
		return fmt.Errorf("record %s of job %s: %w", jobs.LedgerKindExecuted, spec.ID, err)
	}
	return nil
}

// run waits for a slot and runs spec, applying the cheat mode if any.
func (w *Worker) run(ctx context.Context, spec *jobs.SignedSpec) (*jobs.SignedResult, error) {
	select {
	case w.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a free slot: %w", ctx.Err())
	}
	w.mu.Lock()
	w.running++
	w.mu.Unlock()
	w.reportFree()
	defer func() {
		<-w.sem
		w.mu.Lock()
		w.running--
		w.mu.Unlock()
		w.reportFree()
	}()
	res, err := w.cfg.Executor.Execute(ctx, spec, nil)
	if err != nil {
		return nil, err
	}
	if res == nil || res.Result == nil {
		return nil, errors.New("the executor returned no result")
	}
	if res.Result.Job != spec.ID || res.Result.Worker != w.self {
		return nil, fmt.Errorf("the executor returned a result for job %s by %s, want job %s by %s", res.Result.Job, res.Result.Worker, spec.ID, w.self)
	}
	if w.cfg.Cheat == CheatWrongStdout || w.cfg.Cheat == CheatColludeStdout {
		return w.cheat(res)
	}
	return res, nil
}

// cheat returns a re-signed copy of res with a wrong stdout CID.
func (w *Worker) cheat(res *jobs.SignedResult) (*jobs.SignedResult, error) {
	r := *res.Result
	switch w.cfg.Cheat {
	case CheatWrongStdout:
		r.Stdout = crypto.CIDOf(multicodec.Raw, []byte("wrong stdout from "+w.self.String()))
	case CheatColludeStdout:
		r.Stdout = crypto.CIDOf(multicodec.Raw, []byte("colluding wrong stdout"))
	}
	return jobs.SignResult(w.cfg.Key, &r)
}

func truncate(s string) string {
	if len(s) <= proto.MaxReasonSize {
		return s
	}
	return strings.ToValidUTF8(s[:proto.MaxReasonSize-3], "") + "..."
}
