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

	"github.com/ipfs/go-cid"
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

	idleTimeout time.Duration // workerIdleTimeout; shorter in tests
}

// Timeouts of the worker side of the protocol.
const (
	workerOfferTimeout = 10 * time.Second // from stream open to the offer
	workerIdleTimeout  = time.Minute      // from the end of an exchange to the next offer
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
	if cfg.idleTimeout == 0 {
		cfg.idleTimeout = workerIdleTimeout
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
	cfg.Host.SetStreamHandler(proto.ID10, w.handleStream)
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
	w.cfg.Host.RemoveStreamHandler(proto.ID10)
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
	if err := w.serveStream(s, remote, s.Protocol() == proto.ID); err != nil {
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
		if err := w.serveStream(s, w.self, false); err != nil {
			w.log.Debug("local job exchange ended with an error", "err", err)
		}
		s.Close()
	}()
}

// serveStream serves the exchanges of one stream with remote: one, or with
// reusable one after another until remote closes the stream or leaves it
// idle for workerIdleTimeout. A nil error means the stream ended cleanly
// and may be closed; otherwise it must be reset.
func (w *Worker) serveStream(s stream, remote peer.ID, reusable bool) error {
	in := newInbox(proto.NewConn(s))
	defer in.stop()
	served := false // an exchange has ended on the stream
	for {
		timeout := workerOfferTimeout
		if served {
			timeout = w.cfg.idleTimeout
		}
		msg, err := in.next(w.ctx, timeout)
		if err != nil {
			if served && (errors.Is(err, io.EOF) || errors.Is(err, errIdle) || w.ctx.Err() != nil) {
				return nil // closed by the submitter, left idle, or the worker closes
			}
			return fmt.Errorf("read offer from %s: %w", remote, err)
		}
		offer, ok := msg.(*proto.Offer)
		if !ok {
			if c, late := msg.(*proto.Cancel); late && served {
				w.log.Debug("cancel of an ended exchange ignored", "job", c.Job, "peer", remote)
				continue
			}
			in.conn.Write(&proto.Error{Job: msg.JobCID(), Code: proto.CodeProtocol, Message: fmt.Sprintf("expected an offer, got %s", msg.Type())}, workerWriteTimeout)
			return fmt.Errorf("peer %s sent %s where an offer was due", remote, msg.Type())
		}
		switch err := w.serve(in, offer, remote); {
		case errors.Is(err, errDeclined):
			w.log.Debug("declined a job offer", "peer", remote, "err", err)
		case err != nil:
			return err
		}
		if !reusable {
			return nil
		}
		served = true
	}
}

// errIdle is returned by inbox.next when no message came in time.
var errIdle = errors.New("no message within the wait")

// An inbox reads the messages of one stream for as long as it lives, so
// that a message can be waited for along with other events.
type inbox struct {
	conn *proto.Conn
	msgs chan proto.Msg
	done chan struct{} // closed when reading has stopped; err says why
	err  error
	quit chan struct{}
	once sync.Once
}

func newInbox(conn *proto.Conn) *inbox {
	in := &inbox{conn: conn, msgs: make(chan proto.Msg), done: make(chan struct{}), quit: make(chan struct{})}
	go func() {
		defer close(in.done)
		for {
			m, err := conn.Read(0)
			if err != nil {
				in.err = err
				return
			}
			select {
			case in.msgs <- m:
			case <-in.quit:
				in.err = errors.New("the stream is no longer served")
				return
			}
		}
	}()
	return in
}

// next returns the next message, waiting at most timeout and not beyond
// ctx.
func (in *inbox) next(ctx context.Context, timeout time.Duration) (proto.Msg, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case m := <-in.msgs:
		return m, nil
	case <-in.done:
		return nil, in.err
	case <-t.C:
		return nil, fmt.Errorf("after %v: %w", timeout, errIdle)
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// stop ends the reading goroutine once the stream is closed or reset (a
// read blocked on the stream returns then).
func (in *inbox) stop() { in.once.Do(func() { close(in.quit) }) }

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

// serve runs the worker side of the exchange offer opens with remote. A nil
// error (or one wrapping errDeclined) means the exchange ended cleanly: the
// stream may carry the next one.
func (w *Worker) serve(in *inbox, offer *proto.Offer, remote peer.ID) error {
	conn := in.conn
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
	// Watch the submitter's messages while the job runs: Cancel or a broken
	// stream stops the run; Reveal is handed on. The watch ends before the
	// result goes out, so the next offer on the stream is not taken here.
	watch := watchExchange(in, offer.Job, cancel)
	defer watch.end()

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
		if err := watch.end(); err != nil {
			return err
		}
		return conn.Write(&proto.Error{Job: offer.Job, Code: code, Message: truncate(err.Error())}, workerWriteTimeout)
	}
	resBytes, err := res.Encode()
	if err != nil {
		conn.Write(&proto.Error{Job: offer.Job, Code: proto.CodeInternal, Message: truncate(err.Error())}, workerWriteTimeout)
		return fmt.Errorf("encode result of job %s: %w", offer.Job, err)
	}
	if err := w.record(spec, res); err != nil {
		log.Error("could not record a job's result in the ledger; the result is withheld", "result", res.CID, "err", err)
		if err := watch.end(); err != nil {
			return err
		}
		return conn.Write(&proto.Error{Job: offer.Job, Code: proto.CodeInternal,
			Message: truncate("the worker could not record its result in its ledger: " + err.Error())}, workerWriteTimeout)
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
		case <-watch.revealed:
		case <-watch.canceled:
			return fmt.Errorf("job %s: cancelled while waiting for reveal", offer.Job)
		case <-watch.done:
			return fmt.Errorf("job %s: waiting for reveal: %w", offer.Job, watch.err)
		case <-timer.C:
			return fmt.Errorf("job %s: no reveal within %v", offer.Job, offer.RunTimeout+revealGrace)
		case <-w.ctx.Done():
			return errors.New("worker closed")
		}
	}
	if err := watch.end(); err != nil {
		return err
	}
	if err := conn.Write(&proto.Result{Job: offer.Job, Result: resBytes}, workerWriteTimeout); err != nil {
		return err
	}
	log.Debug("job result sent", "result", res.CID, "exit", res.Result.ExitCode,
		"run", ran.Sub(accepted), "record", recorded.Sub(ran), "total", time.Since(accepted))
	return nil
}

// An exchangeWatch reads the submitter's messages while an accepted job
// runs.
type exchangeWatch struct {
	revealed chan struct{} // closed on the job's Reveal
	canceled chan struct{} // closed on the job's Cancel
	done     chan struct{} // closed when the watch has stopped; err says why
	err      error         // nil when stopped by end
	stopCh   chan struct{}
	once     sync.Once
}

// watchExchange watches in for the messages of job's exchange until end:
// Cancel calls cancel, Reveal closes revealed, a Cancel for another job (an
// exchange ended earlier) is ignored, and anything else, or the stream's
// end, stops the watch with an error and calls cancel.
func watchExchange(in *inbox, job cid.Cid, cancel context.CancelFunc) *exchangeWatch {
	x := &exchangeWatch{revealed: make(chan struct{}), canceled: make(chan struct{}), done: make(chan struct{}), stopCh: make(chan struct{})}
	go func() {
		defer close(x.done)
		revealed, canceled := false, false
		for {
			select {
			case m := <-in.msgs:
				switch m := m.(type) {
				case *proto.Cancel:
					if m.Job == job && !canceled {
						canceled = true
						close(x.canceled)
						cancel()
					}
					continue
				case *proto.Reveal:
					if m.Job == job && !revealed {
						revealed = true
						close(x.revealed)
						continue
					}
				}
				x.err = fmt.Errorf("job %s: the submitter sent %s for job %s", job, m.Type(), m.JobCID())
			case <-in.done:
				x.err = fmt.Errorf("job %s: %w", job, in.err)
			case <-x.stopCh:
				return
			}
			cancel()
			return
		}
	}()
	return x
}

// end stops the watch and returns the error that stopped it first, if any.
func (x *exchangeWatch) end() error {
	x.once.Do(func() { close(x.stopCh) })
	<-x.done
	return x.err
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
