// Package sched implements worker selection for a submitting node: from the
// node's capacity view it picks the peers that should run a job's replicas,
// and when it cannot place them all it says why in plain words (the
// blocker shown by "shoal job status").
//
// Pick is pure computation; the Load tracker counts the offers this node
// has outstanding per peer so that a burst of jobs spreads before the
// peers' next capacity adverts arrive.
package sched

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoalnet/shoal/jobs/capacity"
)

// A Request describes the workers a job still needs.
type Request struct {
	// Runtime is the advert runtime name the job needs, e.g. capacity.RuntimeWasm.
	Runtime string
	// Constraints are labels a worker must carry with exactly these values.
	Constraints map[string]string
	// Count is how many workers to pick (the replicas still unplaced).
	Count int
	// Exclude holds peers that must not be picked: those already running a
	// replica of the job (never two replicas on one peer) and those that
	// failed it.
	Exclude map[peer.ID]bool
	// Convicted, if not nil, reports whether a peer is convicted of
	// misbehaviour (the node holds fork evidence against its ledger); such
	// a peer is never picked, and the blocker counts it. This node itself
	// is not asked.
	Convicted func(p peer.ID) bool
	// Self is this node. It is picked only when AllowSelf is set or when no
	// other peer can take a replica.
	Self      peer.ID
	AllowSelf bool
	// Salt varies the order among equally good peers (pass the job CID's
	// bytes), so that concurrent jobs spread.
	Salt []byte
}

// A Plan is the outcome of Pick.
type Plan struct {
	// Peers are the picked workers, best first; at most Request.Count.
	Peers []peer.ID
	// Blocker says, when fewer than Count peers were picked, what stands in
	// the way, e.g. "0 of 4 known peers match region=eu".
	Blocker string
}

// LatencyFunc returns the measured round-trip time to p, or 0 if unknown.
type LatencyFunc func(p peer.ID) time.Duration

// A Load counts the offers this node has outstanding per peer. Its zero
// value is usable, and it is safe for concurrent use.
type Load struct {
	mu sync.Mutex
	n  map[peer.ID]int // guarded by mu
}

// Add records one more outstanding offer to p.
func (l *Load) Add(p peer.ID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == nil {
		l.n = make(map[peer.ID]int)
	}
	l.n[p]++
}

// Done records that one offer to p has ended.
func (l *Load) Done(p peer.ID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[p] <= 1 {
		delete(l.n, p)
		return
	}
	l.n[p]--
}

// Get returns the number of outstanding offers to p.
func (l *Load) Get(p peer.ID) int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[p]
}

// Pick chooses workers for req from view. A peer qualifies when it offers
// req.Runtime, carries every constraint label and has a free slot; it is
// never one in req.Exclude. Qualified peers are ranked by free slots minus
// this node's outstanding offers to them (load may be nil), then by lower
// latency (latency may be nil), then by a hash of the peer ID salted with
// req.Salt. Self comes last unless req.AllowSelf. When fewer than
// req.Count peers qualify, Plan.Blocker names the first filter that
// removed them.
func Pick(view []capacity.Entry, req Request, load *Load, latency LatencyFunc) Plan {
	if req.Count <= 0 {
		return Plan{}
	}
	type cand struct {
		id    peer.ID
		score int
		rtt   time.Duration
		tie   uint64
		self  bool
	}
	var (
		cands                                               []cand
		known, runtimeOK, labelsOK, free, others, convicted int
		selfOK                                              bool
	)
	for _, e := range view {
		if e.Peer == req.Self || e.Self {
			// counted separately below
		} else {
			known++
		}
		if !e.Offers(req.Runtime) {
			continue
		}
		isSelf := e.Peer == req.Self || e.Self
		if !isSelf {
			runtimeOK++
		}
		if !matches(e.Labels, req.Constraints) {
			continue
		}
		if !isSelf {
			labelsOK++
		}
		if e.SlotsFree <= 0 {
			continue
		}
		if !isSelf {
			free++
		}
		if req.Exclude[e.Peer] {
			continue
		}
		if !isSelf && req.Convicted != nil && req.Convicted(e.Peer) {
			convicted++
			continue
		}
		c := cand{id: e.Peer, score: e.SlotsFree - load.Get(e.Peer), self: isSelf, tie: tieBreak(req.Salt, e.Peer)}
		if latency != nil {
			c.rtt = latency(e.Peer)
		}
		if isSelf {
			selfOK = true
			if !req.AllowSelf {
				// Self is a last resort: keep it out of the ranking.
				continue
			}
		} else {
			others++
		}
		cands = append(cands, c)
	}
	slices.SortFunc(cands, func(a, b cand) int {
		if a.score != b.score {
			return cmp.Compare(b.score, a.score)
		}
		if a.rtt != b.rtt {
			return cmp.Compare(a.rtt, b.rtt)
		}
		return cmp.Compare(a.tie, b.tie)
	})
	var plan Plan
	for _, c := range cands {
		if len(plan.Peers) == req.Count {
			break
		}
		plan.Peers = append(plan.Peers, c.id)
	}
	if len(plan.Peers) < req.Count && selfOK && !req.AllowSelf && !slices.Contains(plan.Peers, req.Self) {
		// No other peer can take this replica: run it here.
		plan.Peers = append(plan.Peers, req.Self)
	}
	if len(plan.Peers) >= req.Count {
		return plan
	}
	need := req.Count - len(plan.Peers)
	var why string
	switch {
	case known == 0:
		why = "no other peer is known yet (waiting for capacity adverts)"
	case runtimeOK == 0:
		why = fmt.Sprintf("0 of %d known peers offer runtime %s", known, req.Runtime)
	case labelsOK == 0:
		why = fmt.Sprintf("0 of %d known peers match %s", known, formatLabels(req.Constraints))
	case free == 0:
		why = fmt.Sprintf("no peer has a free slot (%d match the job)", labelsOK)
	case convicted > 0 && convicted == free-others:
		why = fmt.Sprintf("%d of %d eligible peers are excluded: convicted of forking their ledger (see: shoal ledger evidence)", convicted, free)
	default:
		excluded := free - others - convicted
		why = fmt.Sprintf("%d of %d eligible peers are already running or have failed this job", excluded, free)
		if convicted > 0 {
			why += fmt.Sprintf(", %d are convicted of forking their ledger (see: shoal ledger evidence)", convicted)
		}
	}
	plan.Blocker = fmt.Sprintf("%d more worker(s) needed: %s", need, why)
	return plan
}

func matches(labels, constraints map[string]string) bool {
	for k, v := range constraints {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func formatLabels(m map[string]string) string {
	keys := slices.Collect(maps.Keys(m))
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

func tieBreak(salt []byte, p peer.ID) uint64 {
	h := fnv.New64a()
	h.Write(salt)
	h.Write([]byte(p))
	return h.Sum64()
}
