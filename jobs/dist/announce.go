package dist

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoalnet/shoal/crypto"
	"github.com/shoalnet/shoal/jobs"
	"github.com/shoalnet/shoal/jobs/capacity"
	"github.com/shoalnet/shoal/jobs/proto"
	"github.com/shoalnet/shoal/jobs/quorum"
)

// An Announced is a checked results announcement.
type Announced struct {
	Spec     *jobs.SignedSpec
	Verdict  quorum.Verdict // recomputed from Results; equal in kind to the announced one
	Reason   string         // as announced
	Results  []*jobs.SignedResult
	Finished time.Time
}

// SealAnnouncements returns one signed envelope over a batch of
// announcement bodies (from announcementBody) of jobs key's node submitted.
func SealAnnouncements(key crypto.PrivKey, bodies [][]byte) ([]byte, error) {
	body, err := proto.MarshalAnnouncements(bodies)
	if err != nil {
		return nil, err
	}
	return crypto.Seal(key, crypto.DomainJobAnnouncement, proto.AnnouncementsPayloadType, body)
}

// announcementBody returns the unsigned announcement of a finished job.
func announcementBody(spec *jobs.SignedSpec, st Status) ([]byte, error) {
	specBytes, err := spec.Encode()
	if err != nil {
		return nil, err
	}
	a := &proto.Announcement{Spec: specBytes, Verdict: string(st.Verdict), Reason: truncate(st.Reason),
		Finished: time.UnixMilli(max(1, st.Updated.UnixMilli()))}
	for i, r := range st.Results {
		if i == proto.MaxAnnouncedResults {
			break
		}
		a.Results = append(a.Results, r.Signed)
	}
	return proto.MarshalAnnouncement(a)
}

// CheckAnnouncements checks a signed envelope of announcements (one, or
// a batch) without checking the signatures of the specs and results
// inside: it checks the envelope's signature (the submitter's, over all
// of it) and, for each announcement, its encoding, that the signer is the
// job's submitter, that every result is for the job and that the
// announced verdict is the one the results give. It is what the results
// topic's validator does on every node, so that relaying costs one
// signature check per envelope, not one per signed thing inside; the
// embedded signatures are checked when a stored announcement is read
// (openAnnouncementOf), where a forged one makes the read fail. A
// submitter that signs an announcement with forged results inside is
// named by its own signature.
func CheckAnnouncements(data []byte) ([]*Announced, error) {
	return openAll(data, false)
}

// openEnvelope checks the envelope's signature and returns its signer and
// the announcement bodies it carries (one, or a batch).
func openEnvelope(data []byte) (peer.ID, [][]byte, error) {
	if len(data) > proto.MaxBatchSize+1024 {
		return "", nil, fmt.Errorf("dist: announcement of %d bytes is oversize", len(data))
	}
	op, typ, err := crypto.OpenOneOf(data, crypto.DomainJobAnnouncement, proto.AnnouncementsPayloadType, proto.AnnouncementPayloadType)
	if err != nil {
		return "", nil, fmt.Errorf("dist: announcement: %w", err)
	}
	if typ == proto.AnnouncementPayloadType {
		if len(op.Payload) > proto.MaxAnnouncementSize {
			return "", nil, fmt.Errorf("dist: announcement of %d bytes is oversize", len(op.Payload))
		}
		return op.Signer, [][]byte{op.Payload}, nil
	}
	bodies, err := proto.UnmarshalAnnouncements(op.Payload)
	if err != nil {
		return "", nil, fmt.Errorf("dist: announcement: %w", err)
	}
	return op.Signer, bodies, nil
}

func openAll(data []byte, embedded bool) ([]*Announced, error) {
	signer, bodies, err := openEnvelope(data)
	if err != nil {
		return nil, err
	}
	out := make([]*Announced, 0, len(bodies))
	for _, body := range bodies {
		a, err := checkBody(body, signer, embedded)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// openAnnouncementOf returns the announcement of job id in data (one or a
// batch), checked in full; the batch's other announcements are only
// decoded as far as their job IDs.
func openAnnouncementOf(data []byte, id cid.Cid) (*Announced, error) {
	signer, bodies, err := openEnvelope(data)
	if err != nil {
		return nil, err
	}
	for _, body := range bodies {
		a, err := proto.UnmarshalAnnouncement(body)
		if err != nil {
			return nil, err
		}
		spec, err := jobs.DecodeSignedSpecUnverified(a.Spec)
		if err != nil {
			return nil, fmt.Errorf("dist: announcement: %w", err)
		}
		if spec.ID == id {
			return checkBody(body, signer, true)
		}
	}
	return nil, fmt.Errorf("dist: the stored announcement does not hold job %s", id)
}

// checkBody checks one announcement body signed (in its envelope) by
// signer; with embedded, the signatures of the spec and results too.
func checkBody(body []byte, signer peer.ID, embedded bool) (*Announced, error) {
	decodeSpec, decodeResult := jobs.DecodeSignedSpec, jobs.DecodeSignedResult
	if !embedded {
		decodeSpec, decodeResult = jobs.DecodeSignedSpecUnverified, jobs.DecodeSignedResultUnverified
	}
	a, err := proto.UnmarshalAnnouncement(body)
	if err != nil {
		return nil, err
	}
	spec, err := decodeSpec(a.Spec)
	if err != nil {
		return nil, fmt.Errorf("dist: announcement: %w", err)
	}
	if spec.Envelope.Submitter != signer {
		return nil, fmt.Errorf("dist: announcement of job %s signed by %s, not by its submitter %s", spec.ID, signer, spec.Envelope.Submitter)
	}
	out := &Announced{Spec: spec, Reason: a.Reason, Finished: a.Finished}
	var votes []quorum.Result
	for i, b := range a.Results {
		r, err := decodeResult(b)
		if err != nil {
			return nil, fmt.Errorf("dist: announcement of job %s: result %d: %w", spec.ID, i, err)
		}
		if r.Result.Job != spec.ID {
			return nil, fmt.Errorf("dist: announcement of job %s: result %d is for job %s", spec.ID, i, r.Result.Job)
		}
		out.Results = append(out.Results, r)
		if counts(r) {
			votes = append(votes, quorum.ResultOf(r))
		}
	}
	out.Verdict = quorum.Decide(votes, spec.Envelope.Quorum)
	if string(out.Verdict.Kind) != a.Verdict {
		return nil, fmt.Errorf("dist: announcement of job %s claims %s but its results give %s", spec.ID, a.Verdict, out.Verdict.Kind)
	}
	return out, nil
}

// Status returns the job status the announcement describes.
func (a *Announced) Status() Status {
	env := a.Spec.Envelope
	st := Status{Job: a.Spec.ID, Verdict: a.Verdict.Kind, Reason: a.Reason, Submitter: env.Submitter,
		Replicas: env.Replicas, Quorum: env.Quorum, Disagreeing: a.Verdict.Disagreeing,
		Created: env.Created, Updated: a.Finished, Remote: true, State: jobs.StateFailed}
	if a.Verdict.Kind == quorum.Verified {
		st.State = jobs.StateDone
	}
	for _, r := range a.Results {
		rs := resultStatus(r, counts(r))
		rs.Agrees = a.Verdict.Kind == quorum.Verified && rs.Vote && !contains(a.Verdict.Disagreeing, rs.Worker)
		st.Results = append(st.Results, rs)
		st.Workers = append(st.Workers, ReplicaStatus{Replica: len(st.Workers), Worker: r.Result.Worker, State: jobs.StateDone})
	}
	return st
}

// A Gossip publishes this node's verdicts on the results topic and stores
// the checked announcements of other nodes, so that Manager.Status answers
// for jobs submitted anywhere. It implements Announcer.
type Gossip struct {
	key   crypto.PrivKey
	self  peer.ID
	ps    *pubsub.PubSub
	name  string
	topic *pubsub.Topic
	sub   *pubsub.Subscription
	st    *store
	log   *slog.Logger

	retention time.Duration
	window    time.Duration

	mu      sync.Mutex
	pending []queued      // announcements not yet published; guarded by mu
	wake    chan struct{} // signalled when pending was empty and is not
	room    chan struct{} // closed and replaced when pending is taken; guarded by mu

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

var _ Announcer = (*Gossip)(nil)

// DefaultRetention is how long a node keeps the results announcements it
// heard, unless told otherwise.
const DefaultRetention = 7 * 24 * time.Hour

// pruneEvery is how often a Gossip deletes announcements past retention.
const pruneEvery = time.Hour

// NewGossip joins the results topic of network on ps. ds must be the same
// datastore the node's Manager uses. Announcements are kept for retention
// after they were first heard (DefaultRetention if 0), then deleted: a job
// of another node is readable here for that long.
func NewGossip(ps *pubsub.PubSub, network string, key crypto.PrivKey, ds datastore.Batching, logger *slog.Logger, retention time.Duration) (*Gossip, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if retention < 0 {
		return nil, fmt.Errorf("dist: announcement retention %v must not be negative", retention)
	}
	if retention == 0 {
		retention = DefaultRetention
	}
	self, err := crypto.PeerID(key)
	if err != nil {
		return nil, err
	}
	g := &Gossip{key: key, self: self, ps: ps, name: proto.ResultsTopic(network), st: &store{ds: ds}, log: logger, retention: retention,
		window: AnnounceWindow, wake: make(chan struct{}, 1), room: make(chan struct{})}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	if err := ps.RegisterTopicValidator(g.name, g.validate, pubsub.WithValidatorInline(true)); err != nil {
		return nil, fmt.Errorf("dist: register validator for topic %s: %w", g.name, err)
	}
	if g.topic, err = ps.Join(g.name); err != nil {
		ps.UnregisterTopicValidator(g.name)
		return nil, fmt.Errorf("dist: join topic %s: %w", g.name, err)
	}
	if g.sub, err = g.topic.Subscribe(); err != nil {
		g.topic.Close()
		ps.UnregisterTopicValidator(g.name)
		return nil, fmt.Errorf("dist: subscribe to topic %s: %w", g.name, err)
	}
	g.wg.Add(3)
	go g.readLoop()
	go g.pruneLoop()
	go g.publishLoop()
	return g, nil
}

// AnnounceWindow is how long a node gathers the verdicts of its jobs
// before it publishes them, signed once, in one announcement: the first
// verdict waits at most this long, and under load many share a signature
// and a message.
const AnnounceWindow = 200 * time.Millisecond

// maxPendingAnnouncements bounds the verdicts waiting to be published;
// Announce waits beyond it.
const maxPendingAnnouncements = 4 * proto.MaxBatchAnnouncements

// A queued announcement waits in Gossip.pending to be published.
type queued struct {
	job  cid.Cid
	body []byte
}

// publishLoop publishes the pending announcements in batches: it waits
// for a first one, then AnnounceWindow (or until a batch is full), and
// publishes what it has. On Close it publishes what is left.
func (g *Gossip) publishLoop() {
	defer g.wg.Done()
	timer := time.NewTimer(0)
	<-timer.C
	for {
		select {
		case <-g.wake:
		case <-g.ctx.Done():
			g.flush()
			return
		}
		timer.Reset(g.window)
	gather:
		for {
			g.mu.Lock()
			full := len(g.pending) >= proto.MaxBatchAnnouncements
			g.mu.Unlock()
			if full {
				break
			}
			select {
			case <-timer.C:
				break gather
			case <-g.wake:
			case <-g.ctx.Done():
				break gather
			}
		}
		timer.Stop()
		g.flush()
	}
}

// flush publishes every pending announcement, in batches that fit a
// message (also while the Gossip closes: the verdicts are not dropped).
func (g *Gossip) flush() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g.mu.Lock()
	pending := g.pending
	g.pending = nil
	close(g.room)
	g.room = make(chan struct{})
	g.mu.Unlock()
	for len(pending) > 0 {
		n, size := 0, 16
		for n < len(pending) && n < proto.MaxBatchAnnouncements && size+len(pending[n].body)+8 <= proto.MaxBatchSize {
			size += len(pending[n].body) + 8
			n++
		}
		if err := g.publish(ctx, pending[:n]); err != nil {
			g.log.Warn("could not announce job verdicts", "count", n, "err", err)
		}
		pending = pending[n:]
	}
}

// publish seals the announcements qs in one envelope, stores it and
// publishes it.
func (g *Gossip) publish(ctx context.Context, qs []queued) error {
	bodies := make([][]byte, len(qs))
	ids := make([]cid.Cid, len(qs))
	for i, q := range qs {
		bodies[i], ids[i] = q.body, q.job
	}
	b, err := SealAnnouncements(g.key, bodies)
	if err != nil {
		return err
	}
	if err := g.st.putAnnouncedBatch(ctx, b, ids); err != nil {
		return fmt.Errorf("dist: store announcements: %w", err)
	}
	if err := g.topic.Publish(ctx, b); err != nil {
		return fmt.Errorf("dist: publish %d verdicts on %s: %w", len(bodies), g.name, err)
	}
	return nil
}

// pruneLoop deletes announcements past retention, at start and every
// pruneEvery.
func (g *Gossip) pruneLoop() {
	defer g.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
		}
		n, err := g.Prune(g.ctx, time.Now().Add(-g.retention))
		switch {
		case err != nil && g.ctx.Err() == nil:
			g.log.Warn("could not prune old results announcements", "err", err)
		case n > 0:
			g.log.Info("pruned old results announcements", "count", n, "retention", g.retention)
		}
		if n == maxPrunePass {
			t.Reset(time.Second) // more to do
		} else {
			t.Reset(pruneEvery)
		}
	}
}

// Prune deletes the announcements first heard before cutoff (at most
// 100 000 per call) and returns how many it deleted.
func (g *Gossip) Prune(ctx context.Context, cutoff time.Time) (int, error) {
	return g.st.pruneAnnounced(ctx, cutoff)
}

// Close leaves the topic.
func (g *Gossip) Close() error {
	g.closeOnce.Do(func() {
		g.cancel()
		g.sub.Cancel()
		g.wg.Wait()
		g.topic.Close()
		g.ps.UnregisterTopicValidator(g.name)
	})
	return nil
}

// Announce queues the verdict of a job this node submitted; it is stored
// and published with the others that end within AnnounceWindow. It waits
// only when many verdicts are already waiting.
func (g *Gossip) Announce(ctx context.Context, spec *jobs.SignedSpec, st Status) error {
	if st.Verdict == "" {
		return errors.New("dist: announce: the job has no verdict")
	}
	body, err := announcementBody(spec, st)
	if err != nil {
		return err
	}
	for {
		g.mu.Lock()
		if len(g.pending) < maxPendingAnnouncements {
			g.pending = append(g.pending, queued{job: spec.ID, body: body})
			n := len(g.pending)
			g.mu.Unlock()
			if n == 1 || n >= proto.MaxBatchAnnouncements {
				select {
				case g.wake <- struct{}{}:
				default:
				}
			}
			return nil
		}
		room := g.room
		g.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return fmt.Errorf("dist: announce verdict of job %s: %w", spec.ID, ctx.Err())
		case <-g.ctx.Done():
			return fmt.Errorf("dist: announce verdict of job %s: %w", spec.ID, ErrClosed)
		}
	}
}

func (g *Gossip) validate(_ context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	if from == g.self {
		// This node's own announcement, sealed and stored by publish.
		return pubsub.ValidationAccept
	}
	all, err := CheckAnnouncements(msg.Data)
	if err != nil {
		g.log.Debug("rejected results announcement", "from", from, "err", err)
		return pubsub.ValidationReject
	}
	msg.ValidatorData = all
	return pubsub.ValidationAccept
}

func (g *Gossip) readLoop() {
	defer g.wg.Done()
	for {
		msg, err := g.sub.Next(g.ctx)
		if err != nil {
			return
		}
		all, ok := msg.ValidatorData.([]*Announced)
		if !ok {
			continue
		}
		if err := g.st.putAnnouncedBatch(g.ctx, msg.Data, jobIDs(all)); err != nil {
			g.log.Warn("could not store a results announcement", "jobs", len(all), "err", err)
		}
	}
}

// ResultsScoreParams returns the gossipsub score parameters of the results
// topic, for the node's peer-score Topics map. Announcements come at the
// rate jobs end, so the topic rewards first deliveries (capped) and does not
// punish a quiet mesh (P3 and P3b are off); an announcement the validator
// rejects (a forged signature, a verdict its results do not give) costs its
// sender -100 × (invalid count)², decaying over about an hour.
func ResultsScoreParams() *pubsub.TopicScoreParams {
	p := capacity.TopicScoreParams()
	p.FirstMessageDeliveriesCap = 20
	return p
}

// jobIDs returns the job IDs of announcements.
func jobIDs(all []*Announced) []cid.Cid {
	ids := make([]cid.Cid, len(all))
	for i, a := range all {
		ids[i] = a.Spec.ID
	}
	return ids
}
