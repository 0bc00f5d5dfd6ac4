package node

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoalnet/shoal/jobs"
	"github.com/shoalnet/shoal/jobs/dist"
	"github.com/shoalnet/shoal/ledger"
	"github.com/shoalnet/shoal/node/client"
)

// The node's log is the jobs subsystem's recorder, and the two agree on
// the size of an entry body (this fails to compile if they differ).
var _ jobs.Recorder = (*ledger.Log)(nil)

const _ = uint(ledger.MaxBodySize-jobs.MaxLedgerBodySize) + uint(jobs.MaxLedgerBodySize-ledger.MaxBodySize)

// LedgerDirName is the ledger's directory inside a repo: the log's entry
// file, and witness/ with the checkpoints and evidence held about peers.
const LedgerDirName = "ledger"

// Ledger timing: how often the node looks for new entries to announce, and
// how often it re-announces an unchanged checkpoint for peers that joined.
const (
	ledgerAnnounceCheck = time.Second
	ledgerAnnounceEvery = 30 * time.Second
	ledgerPeerTimeout   = 2 * time.Minute
	// ledgerReplicateDelay is how long after a job ends its workers'
	// logs are replicated, if their checkpoint gossip (at most
	// ledgerAnnounceCheck apart while a log grows) has not already
	// brought the entries the node awaits. It also gathers the workers
	// of jobs that end close together into one replication per worker.
	ledgerReplicateDelay = 2 * time.Second
	// ledgerPartnerFor is how long after the last job with a peer its
	// log is still replicated entry by entry; other peers' checkpoints
	// are only watched (ledger.Witness.Watch).
	ledgerPartnerFor = 24 * time.Hour
	// maxLedgerPartners bounds the peers remembered as partners.
	maxLedgerPartners = 4096
	// ledgerRecordGrace is how long after a job ends its workers' logs
	// may take to show the job.executed entries of their results (a
	// worker records before it answers, so one replication is enough).
	ledgerRecordGrace = 30 * time.Second
	// ledgerExpectFor is how long a result is awaited in a log that
	// cannot be replicated (its worker offline) before it is given up.
	ledgerExpectFor = time.Hour
	// maxLedgerExpected bounds the results awaited per worker.
	maxLedgerExpected = 10_000
)

// ledgerArea is the node's ledger: its own log, the stream server, the
// witness of its peers' logs and the checkpoint gossip.
type ledgerArea struct {
	log     *ledger.Log
	witness *ledger.Witness
	gossip  *ledger.Gossip
	logger  *slog.Logger

	mu       sync.Mutex
	watching map[peer.ID]bool      // guarded by mu: peers with an Observe in flight
	again    map[peer.ID]bool      // guarded by mu: peers to replicate again when their Observe ends
	received map[cid.Cid]bool      // guarded by mu: evidence that arrived by gossip
	ended    chan peer.ID          // workers of ended jobs, for replicateEnded
	partners map[peer.ID]time.Time // guarded by mu: peers worked with, and when last
	// expect holds, per worker, the results it returned to this node's
	// jobs that its log has not yet been seen to record; scanned is how
	// far each worker's replica has been looked through. Guarded by mu.
	expect  map[peer.ID]map[cid.Cid]expectedEntry
	scanned map[peer.ID]uint64
	// early holds, per worker, results for this node's jobs found in its
	// replicated log before the jobs ended here (a worker records before
	// it answers, and its checkpoint gossip may bring the entry first, or
	// the job waits on other replicas), and when; kept ledgerExpectFor.
	// Guarded by mu.
	early       map[peer.ID]map[cid.Cid]time.Time
	unrecorded  prometheus.Counter
	recordGrace time.Duration // ledgerRecordGrace; shorter in tests
	wg          sync.WaitGroup
}

// An expectedEntry is a result a worker returned, awaited in its log.
type expectedEntry struct {
	job   cid.Cid
	since time.Time
}

// startLedger opens the log in REPO/ledger with the node key, serves it on
// /shoal/ledger/1.0.0, joins the ledger gossip topic, witnesses the
// checkpoints peers gossip and announces the node's own.
func (n *Node) startLedger(ctx context.Context) error {
	dir := filepath.Join(n.repo, LedgerDirName)
	l, err := ledger.Open(ctx, dir, n.key, n.cfg.Network.Name, ledger.Options{})
	if err != nil {
		return fmt.Errorf("open ledger (if it names a corrupt entry, restore %s from a backup): %w", dir, err)
	}
	n.onClose("ledger log", l.Close)
	w, err := ledger.OpenWitness(filepath.Join(dir, "witness"), n.cfg.Network.Name)
	if err != nil {
		return err
	}
	n.onClose("ledger witness", w.Close)
	a := &ledgerArea{log: l, witness: w, logger: n.log.With("subsystem", "ledger"), watching: map[peer.ID]bool{}, again: map[peer.ID]bool{}, received: map[cid.Cid]bool{},
		ended: make(chan peer.ID, 1024), partners: map[peer.ID]time.Time{},
		expect: map[peer.ID]map[cid.Cid]expectedEntry{}, scanned: map[peer.ID]uint64{}, early: map[peer.ID]map[cid.Cid]time.Time{}, recordGrace: ledgerRecordGrace,
		unrecorded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_ledger_unrecorded_results_total",
			Help: "Results workers returned to this node's jobs that their own ledgers did not record in time.",
		})}
	if err := n.metrics.Register(a.unrecorded); err != nil {
		return fmt.Errorf("register ledger metrics: %w", err)
	}
	n.ledger = a
	w.OnEvidence(func(ev *ledger.Evidence) { n.ledgerNewEvidence(a, ev) })
	n.host.SetStreamHandler(ledger.ProtocolID, ledger.NewServer(l).Handle)
	n.onClose("ledger protocol", func() error { n.host.RemoveStreamHandler(ledger.ProtocolID); return nil })
	g, err := ledger.JoinGossip(n.ps, n.cfg.Network.Name)
	if err != nil {
		return err
	}
	a.gossip = g
	n.onClose("ledger gossip", func() error {
		err := g.Close()
		a.wg.Wait()
		if n.ctx.Err() != nil {
			// Close cancels the pubsub router first; leaving its topics
			// then fails with that cancellation, which is no fault.
			return nil
		}
		return err
	})
	a.wg.Add(3)
	go n.ledgerAnnounce(a)
	go n.ledgerListen(a)
	go n.ledgerReplicateEnded(a)
	return nil
}

// Ledger returns the node's own log. Its Record method is the recorder the
// jobs subsystem is handed.
func (n *Node) Ledger() *ledger.Log { return n.ledger.log }

// LedgerConvicted reports whether the node holds fork evidence against p;
// such a peer must not be chosen as a worker.
func (n *Node) LedgerConvicted(p peer.ID) bool { return n.ledger.witness.Convicted(p) }

// ledgerAnnounce publishes the node's checkpoint when the log has grown,
// and at least every ledgerAnnounceEvery. Only durable entries are ever
// covered: a Log's checkpoint never covers more.
func (n *Node) ledgerAnnounce(a *ledgerArea) {
	defer a.wg.Done()
	t := time.NewTicker(ledgerAnnounceCheck)
	defer t.Stop()
	var last uint64
	var lastAt time.Time
	for {
		// Not before a peer of the topic is known: the same checkpoint
		// published again within the pubsub seen-TTL is the same message
		// and would not go out, so a first one sent to nobody would keep
		// peers waiting for ledgerAnnounceEvery.
		size := a.log.Size()
		if size > 0 && (size != last || time.Since(lastAt) >= ledgerAnnounceEvery) && a.gossip.HasPeers() {
			cp, err := a.log.Checkpoint()
			if err == nil {
				err = a.gossip.PublishCheckpoint(n.ctx, cp)
			}
			if err != nil {
				if n.ctx.Err() != nil {
					return
				}
				a.logger.Warn("announce ledger checkpoint", "err", err)
			} else {
				last, lastAt = size, time.Now()
			}
		}
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ledgerListen witnesses gossiped checkpoints and stores gossiped evidence.
func (n *Node) ledgerListen(a *ledgerArea) {
	defer a.wg.Done()
	for {
		m, err := a.gossip.Next(n.ctx)
		if err != nil {
			return
		}
		switch {
		case m.Checkpoint != nil:
			_, id, _ := m.Checkpoint.Origin.Parse()
			if id == n.id {
				continue // this node's own, back from the topic
			}
			a.mu.Lock()
			busy := a.watching[id]
			a.watching[id] = true
			a.mu.Unlock()
			if busy {
				continue // the next announcement will be looked at
			}
			a.wg.Add(1)
			go func(cp *ledger.Checkpoint) {
				defer a.wg.Done()
				defer func() {
					a.mu.Lock()
					delete(a.watching, id)
					rerun := a.again[id]
					delete(a.again, id)
					a.mu.Unlock()
					if rerun && n.ctx.Err() == nil {
						n.ledgerReplicate(id) // asked for while this ran
					}
				}()
				ctx, cancel := context.WithTimeout(n.ctx, ledgerPeerTimeout)
				defer cancel()
				// New evidence is recorded and gossiped by the OnEvidence
				// hook. The logs of partners are replicated; the others'
				// checkpoints are checked against each other only.
				partner := n.isLedgerPartner(id)
				observe := a.witness.Watch
				if partner {
					observe = a.witness.Observe
				}
				if _, err := observe(ctx, cp, ledger.NewRemote(n.host, id, n.cfg.Network.Name)); err != nil {
					a.logger.Debug("ledger checkpoint not accepted", "peer", id, "size", cp.Size, "err", err)
				} else if partner {
					n.ledgerCheckRecorded(ctx, a, id)
				}
			}(m.Checkpoint)
		case m.Evidence != nil:
			a.mu.Lock()
			a.received[m.Evidence.CID()] = true
			a.mu.Unlock()
			if _, err := a.witness.AddEvidence(m.Evidence); err != nil {
				a.logger.Error("store ledger evidence", "evidence", m.Evidence.CID(), "err", err)
			}
		}
	}
}

// ledgerPartner records that this node works with p (ran a job of p's, or
// had p run one), so that p's log is replicated entry by entry, not only
// watched.
func (n *Node) ledgerPartner(p peer.ID) {
	a := n.ledger
	if a == nil {
		return
	}
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.partners) >= maxLedgerPartners {
		for q, at := range a.partners {
			if now.Sub(at) > ledgerPartnerFor {
				delete(a.partners, q)
			}
		}
		if len(a.partners) >= maxLedgerPartners {
			clear(a.partners) // at worst, some logs are only watched for a while
		}
	}
	a.partners[p] = now
}

// isLedgerPartner reports whether this node worked with p lately.
func (n *Node) isLedgerPartner(p peer.ID) bool {
	a := n.ledger
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.partners[p]
	return ok && time.Since(at) <= ledgerPartnerFor
}

// ledgerJobEnded is called by the job manager when a job this node
// submitted has ended: it has the ledgers of the job's workers replicated
// (by ledgerReplicateEnded, within ledgerReplicateDelay). It never blocks:
// should the queue be full, the worker's next checkpoint announcement
// brings its ledger over all the same.
func (n *Node) ledgerJobEnded(st dist.Status) {
	a := n.ledger
	for _, r := range st.Results {
		if r.Worker == n.id {
			continue
		}
		n.ledgerPartner(r.Worker)
		a.mu.Lock()
		if _, ok := a.early[r.Worker][r.CID]; ok {
			// Already seen in the worker's log.
			delete(a.early[r.Worker], r.CID)
			a.mu.Unlock()
			continue
		}
		exp := a.expect[r.Worker]
		if exp == nil {
			exp = make(map[cid.Cid]expectedEntry)
			a.expect[r.Worker] = exp
		}
		if len(exp) < maxLedgerExpected {
			exp[r.CID] = expectedEntry{job: st.Job, since: time.Now()}
		}
		a.mu.Unlock()
		select {
		case n.ledger.ended <- r.Worker:
		default:
		}
	}
}

// ledgerReplicateEnded replicates the ledgers of the workers of ended
// jobs, each at most once per ledgerReplicateDelay however many of its
// jobs ended, and only for results awaited that long: the worker's
// gossiped checkpoints (ledgerAnnounceCheck apart while its log grows)
// have its log replicated, and the results found there, sooner as a rule.
// A worker that runs jobs without pause always has some just returned.
func (n *Node) ledgerReplicateEnded(a *ledgerArea) {
	defer a.wg.Done()
	pending := make(map[peer.ID]bool)
	var due <-chan time.Time
	forget := time.NewTicker(10 * time.Minute)
	defer forget.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-forget.C:
			n.ledgerForgetExpected(a)
		case p := <-a.ended:
			pending[p] = true
			if due == nil {
				due = time.After(ledgerReplicateDelay)
			}
		case <-due:
			due = nil
			now := time.Now()
			for p := range pending {
				a.mu.Lock()
				oldest := oldestExpected(a.expect[p])
				a.mu.Unlock()
				switch {
				case oldest.IsZero():
					delete(pending, p) // its checkpoint gossip brought them all
				case now.Sub(oldest) >= ledgerReplicateDelay:
					delete(pending, p)
					n.ledgerReplicate(p)
				}
				// Otherwise only results of jobs that ended since are
				// awaited: the gossip may still bring them; look again.
			}
			if len(pending) > 0 {
				due = time.After(ledgerReplicateDelay)
			}
		}
	}
}

// oldestExpected returns when the longest awaited of exp ended, or the
// zero time if exp is empty.
func oldestExpected(exp map[cid.Cid]expectedEntry) time.Time {
	var oldest time.Time
	for _, e := range exp {
		if oldest.IsZero() || e.since.Before(oldest) {
			oldest = e.since
		}
	}
	return oldest
}

// ledgerReplicate fetches p's newest checkpoint and has the witness verify
// and replicate p's log up to it: the whole log the first time, then only
// the new entries, accepted with a consistency proof against the
// checkpoint held. It runs in the background, one at a time per peer; a
// request while one is in flight runs once more after it, so the replica
// ends up covering every entry p had made when asked.
func (n *Node) ledgerReplicate(p peer.ID) {
	a := n.ledger
	a.mu.Lock()
	if a.watching[p] {
		a.again[p] = true
		a.mu.Unlock()
		return
	}
	a.watching[p] = true
	a.wg.Add(1)
	a.mu.Unlock()
	go func() {
		defer a.wg.Done()
		for {
			n.ledgerReplicateOnce(a, p)
			a.mu.Lock()
			if !a.again[p] || n.ctx.Err() != nil {
				delete(a.watching, p)
				delete(a.again, p)
				a.mu.Unlock()
				return
			}
			delete(a.again, p)
			a.mu.Unlock()
		}
	}()
}

func (n *Node) ledgerReplicateOnce(a *ledgerArea, p peer.ID) {
	ctx, cancel := context.WithTimeout(n.ctx, ledgerPeerTimeout)
	defer cancel()
	rem := ledger.NewRemote(n.host, p, n.cfg.Network.Name)
	cp, err := rem.Checkpoint(ctx)
	if err == nil {
		// New evidence is recorded and gossiped by the OnEvidence hook.
		_, err = a.witness.Observe(ctx, cp, rem)
	}
	if err != nil {
		if n.ctx.Err() == nil {
			a.logger.Info("could not replicate a worker's ledger", "peer", p, "err", err)
		}
		return
	}
	a.logger.Debug("replicated a worker's ledger", "peer", p, "size", cp.Size)
	n.ledgerCheckRecorded(ctx, a, p)
}

// ledgerCheckRecorded looks through the part of p's replicated log not
// yet seen for the job.executed entries of the results p returned to this
// node's jobs; those of jobs that have not ended here yet are kept aside
// (ledgerArea.early) for when they do. A result still missing ledgerRecordGrace after its job
// ended, although p's log was replicated since, means p answered with a
// result it did not record, which its log's promise forbids: it is logged
// as a warning and counted (shoal_ledger_unrecorded_results_total).
func (n *Node) ledgerCheckRecorded(ctx context.Context, a *ledgerArea, p peer.ID) {
	a.mu.Lock()
	if len(a.expect[p]) == 0 {
		a.mu.Unlock()
		return
	}
	from := a.scanned[p]
	a.mu.Unlock()
	r, err := a.witness.Replica(ctx, p)
	if err != nil {
		a.logger.Warn("cannot read a worker's replicated ledger", "peer", p, "err", err)
		return
	}
	var seen []cid.Cid
	next, err := r.Scan(from, func(e *ledger.Entry) bool {
		if e.Kind == ledger.KindJobExecuted {
			if _, res, submitter, err := jobs.ExecutedRef(e.Body); err == nil && submitter == n.id {
				seen = append(seen, res)
			}
		}
		return true
	})
	if err != nil {
		a.logger.Warn("cannot read a worker's replicated ledger", "peer", p, "err", err)
	}
	now := time.Now()
	type missing struct {
		result cid.Cid
		expectedEntry
	}
	var late []missing
	a.mu.Lock()
	a.scanned[p] = next
	exp := a.expect[p]
	early := a.early[p]
	for _, c := range seen {
		if _, ok := exp[c]; ok {
			delete(exp, c)
			continue
		}
		// Perhaps a result whose job has not ended here yet.
		if early == nil {
			early = make(map[cid.Cid]time.Time)
			a.early[p] = early
		}
		if len(early) < maxLedgerExpected {
			early[c] = now
		}
	}
	if len(early) == 0 {
		delete(a.early, p)
	}
	for c, e := range exp {
		if age := now.Sub(e.since); age > a.recordGrace {
			late = append(late, missing{c, e})
			delete(exp, c)
		}
	}
	if len(exp) == 0 {
		delete(a.expect, p)
	}
	a.mu.Unlock()
	for _, m := range late {
		a.unrecorded.Inc()
		a.logger.Warn("a worker returned a result its own ledger does not record", "peer", p, "job", m.job, "result", m.result,
			"ended", m.since.UTC().Format(time.RFC3339), "ledger_size", next)
	}
}

// ledgerForgetExpected drops awaited results older than ledgerExpectFor:
// their workers' logs could not be replicated (the peer went away); and
// results seen early whose jobs never ended here.
func (n *Node) ledgerForgetExpected(a *ledgerArea) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for p, early := range a.early {
		for c, at := range early {
			if now.Sub(at) > ledgerExpectFor {
				delete(early, c)
			}
		}
		if len(early) == 0 {
			delete(a.early, p)
		}
	}
	for p, exp := range a.expect {
		for c, e := range exp {
			if now.Sub(e.since) > ledgerExpectFor {
				a.logger.Debug("gave up checking a result in a worker's ledger: it could not be replicated", "peer", p, "result", c)
				delete(exp, c)
			}
		}
		if len(exp) == 0 {
			delete(a.expect, p)
		}
	}
}

// ledgerNewEvidence runs once per piece of evidence the witness stores: it
// records the evidence in the node's own log and, unless it arrived by
// gossip, gossips it.
func (n *Node) ledgerNewEvidence(a *ledgerArea, ev *ledger.Evidence) {
	a.mu.Lock()
	received := a.received[ev.CID()]
	a.mu.Unlock()
	a.logger.Warn("ledger fork evidence", "offender", ev.Offender(), "kind", ev.Kind.String(), "evidence", ev.CID(), "by_gossip", received)
	ctx, cancel := context.WithTimeout(n.ctx, time.Minute)
	defer cancel()
	body := []byte(fmt.Sprintf(`{"evidence":%q,"kind":%q,"origin":%q}`, ev.CID(), ev.Kind.String(), ev.Origin))
	if _, err := a.log.Append(ctx, ledger.KindEvidence, body); err != nil {
		a.logger.Error("record ledger evidence", "evidence", ev.CID(), "err", err)
	}
	if !received {
		if err := a.gossip.PublishEvidence(ctx, ev); err != nil {
			a.logger.Warn("gossip ledger evidence", "evidence", ev.CID(), "err", err)
		}
	}
}

func (n *Node) registerLedgerRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/ledger/checkpoint", n.handleLedgerCheckpoint)
	mux.HandleFunc("GET /v1/ledger/entries", n.handleLedgerEntries)
	mux.HandleFunc("GET /v1/ledger/export", n.handleLedgerExport)
	mux.HandleFunc("GET /v1/ledger/verify", n.handleLedgerVerify)
	mux.HandleFunc("GET /v1/ledger/proof", n.handleLedgerProof)
	mux.HandleFunc("GET /v1/ledger/evidence", n.handleLedgerEvidence)
}

// ledgerSource returns the source named by the request's peer parameter:
// the node's own log when it is empty or the node's own ID.
func (n *Node) ledgerSource(w http.ResponseWriter, r *http.Request) (ledger.Source, *ledger.Remote, bool) {
	p := r.URL.Query().Get("peer")
	if p == "" || p == n.id.String() {
		return ledger.LocalSource(n.ledger.log), nil, true
	}
	id, err := peer.Decode(p)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("peer %q is not a peer ID (see: shoal peers): %w", p, err))
		return nil, nil, false
	}
	rem := ledger.NewRemote(n.host, id, n.cfg.Network.Name)
	return rem, rem, true
}

func queryUint(w http.ResponseWriter, r *http.Request, name string, def uint64) (uint64, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, true
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("%s=%q is not a non-negative integer", name, s))
		return 0, false
	}
	return v, true
}

// ledgerErrorStatus maps a ledger error to an HTTP status.
func ledgerErrorStatus(err error) int {
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

func checkpointJSON(cp *ledger.Checkpoint) client.LedgerCheckpoint {
	return client.LedgerCheckpoint{Origin: string(cp.Origin), Size: cp.Size, Root: cp.Hash.String(), Note: string(cp.Note)}
}

func (n *Node) handleLedgerCheckpoint(w http.ResponseWriter, r *http.Request) {
	src, _, ok := n.ledgerSource(w, r)
	if !ok {
		return
	}
	cp, err := src.Checkpoint(r.Context())
	if err != nil {
		writeError(w, ledgerErrorStatus(err), fmt.Errorf("checkpoint of %s: %w", src.Origin(), err))
		return
	}
	writeJSON(w, http.StatusOK, checkpointJSON(cp))
}

func entryJSON(e *ledger.Entry) client.LedgerEntry {
	le := client.LedgerEntry{Seq: e.Seq, CID: e.CID().String(), Time: e.Time.Format(time.RFC3339Nano), Kind: string(e.Kind), Body: e.Body}
	if e.Prev.Defined() {
		le.Prev = e.Prev.String()
	}
	return le
}

func (n *Node) handleLedgerEntries(w http.ResponseWriter, r *http.Request) {
	src, _, ok := n.ledgerSource(w, r)
	if !ok {
		return
	}
	from, ok := queryUint(w, r, "from", 0)
	if !ok {
		return
	}
	limit, ok := queryUint(w, r, "limit", 100)
	if !ok {
		return
	}
	limit = min(max(limit, 1), ledger.MaxEntriesPerResponse)
	out := []client.LedgerEntry{}
	for uint64(len(out)) < limit {
		raws, err := src.Entries(r.Context(), from+uint64(len(out)), int(limit)-len(out))
		if errors.Is(err, ledger.ErrNotFound) {
			if len(out) == 0 && from > 0 {
				writeError(w, http.StatusNotFound, fmt.Errorf("%s has no entry %d: %w", src.Origin(), from, err))
				return
			}
			break
		}
		if err != nil {
			writeError(w, ledgerErrorStatus(err), fmt.Errorf("entries of %s: %w", src.Origin(), err))
			return
		}
		for _, raw := range raws {
			e, err := ledger.DecodeEntry(raw)
			seq := from + uint64(len(out))
			if err == nil && (e.Origin != src.Origin() || e.Seq != seq) {
				err = fmt.Errorf("served entry %d of %s for entry %d", e.Seq, e.Origin, seq)
			}
			if err != nil {
				writeError(w, http.StatusBadGateway, fmt.Errorf("entry %d of %s does not verify: %w", seq, src.Origin(), err))
				return
			}
			out = append(out, entryJSON(e))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handleLedgerExport(w http.ResponseWriter, r *http.Request) {
	src, _, ok := n.ledgerSource(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	cp, err := src.Checkpoint(ctx)
	if err != nil {
		writeError(w, ledgerErrorStatus(err), fmt.Errorf("checkpoint of %s: %w", src.Origin(), err))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	// Entries are written as served, unverified: the export is for
	// verification by `shoal ledger verify --file`.
	xw := ledger.NewExportWriter(w, cp)
	for next := uint64(0); next < cp.Size; {
		raws, err := src.Entries(ctx, next, int(min(cp.Size-next, ledger.MaxEntriesPerResponse)))
		if err != nil {
			// Headers are sent; a cut export fails verification, naming the entry.
			n.ledger.logger.Debug("ledger export cut", "origin", src.Origin(), "at", next, "err", err)
			xw.Flush()
			return
		}
		for _, raw := range raws {
			if next == cp.Size {
				break
			}
			xw.Write(raw)
			next++
		}
	}
	xw.Flush()
}

func (n *Node) handleLedgerVerify(w http.ResponseWriter, r *http.Request) {
	src, rem, ok := n.ledgerSource(w, r)
	if !ok {
		return
	}
	rep := client.LedgerReport{Origin: string(src.Origin())}
	var (
		res *ledger.Report
		ev  *ledger.Evidence
		err error
	)
	if rem != nil {
		res, ev, err = n.ledger.witness.Audit(r.Context(), rem)
	} else {
		var cp *ledger.Checkpoint
		var v *ledger.Verifier
		cp, v, err = ledger.Fetch(r.Context(), src, nil)
		if err == nil {
			res, err = v.Finish(cp)
		}
	}
	var ve *ledger.VerifyError
	switch {
	case ev != nil:
		rep.EvidenceCID = ev.CID().String()
		rep.Reason = fmt.Sprintf("the log conflicts with what this node witnessed before: %s", ev)
	case errors.As(err, &ve):
		rep.Reason = ve.Reason
		if ve.Seq >= 0 {
			seq := ve.Seq
			rep.BadSeq = &seq
		}
	case err != nil:
		writeError(w, ledgerErrorStatus(err), fmt.Errorf("verify %s: %w", src.Origin(), err))
		return
	default:
		rep.OK = true
		rep.Entries, rep.CheckpointSize, rep.Root = res.Entries, res.CheckpointSize, res.Root.String()
	}
	writeJSON(w, http.StatusOK, rep)
}

func (n *Node) handleLedgerProof(w http.ResponseWriter, r *http.Request) {
	src, rem, ok := n.ledgerSource(w, r)
	if !ok {
		return
	}
	if r.URL.Query().Get("seq") == "" {
		writeError(w, http.StatusBadRequest, errors.New("give the entry's sequence number: ?seq=N"))
		return
	}
	seq, ok := queryUint(w, r, "seq", 0)
	if !ok {
		return
	}
	ctx := r.Context()
	cp, err := src.Checkpoint(ctx)
	if err != nil {
		writeError(w, ledgerErrorStatus(err), fmt.Errorf("checkpoint of %s: %w", src.Origin(), err))
		return
	}
	if seq >= cp.Size {
		writeError(w, http.StatusNotFound, fmt.Errorf("%s has %d entries in its newest checkpoint; entry %d is not in it", src.Origin(), cp.Size, seq))
		return
	}
	var e *ledger.Entry
	var proofHashes []string
	var check error
	if rem != nil {
		ent, p, err := rem.ProveEntry(ctx, seq, cp.Size)
		if err != nil {
			writeError(w, ledgerErrorStatus(err), fmt.Errorf("proof of entry %d of %s: %w", seq, src.Origin(), err))
			return
		}
		e = ent
		check = ledger.CheckInclusion(p, cp.Size, cp.Hash, seq, e.Encoded())
		for _, h := range p {
			proofHashes = append(proofHashes, base64.StdEncoding.EncodeToString(h[:]))
		}
	} else {
		l := n.ledger.log
		p, err := l.ProveEntry(seq, cp.Size)
		if err == nil {
			e, err = l.Entry(seq)
		}
		if err != nil {
			writeError(w, http.StatusInternalServerError, fmt.Errorf("proof of entry %d: %w", seq, err))
			return
		}
		check = ledger.CheckInclusion(p, cp.Size, cp.Hash, seq, e.Encoded())
		for _, h := range p {
			proofHashes = append(proofHashes, base64.StdEncoding.EncodeToString(h[:]))
		}
	}
	if check != nil {
		writeError(w, http.StatusBadGateway, fmt.Errorf("the proof of entry %d served by %s does not verify: %w", seq, src.Origin(), check))
		return
	}
	writeJSON(w, http.StatusOK, client.LedgerProof{
		Origin: string(src.Origin()), Seq: seq, EntryCID: e.CID().String(), Kind: string(e.Kind),
		TreeSize: cp.Size, Root: cp.Hash.String(), Proof: proofHashes, Checkpoint: string(cp.Note), Verified: true,
	})
}

func (n *Node) handleLedgerEvidence(w http.ResponseWriter, r *http.Request) {
	out := []client.LedgerEvidence{}
	for _, ev := range n.ledger.witness.Evidence() {
		out = append(out, client.LedgerEvidence{
			CID: ev.CID().String(), Kind: ev.Kind.String(), Origin: string(ev.Origin),
			Offender: ev.Offender().String(), Encoded: ev.Encoded(),
		})
	}
	writeJSON(w, http.StatusOK, out)
}
