// Package quorum implements the trust rules of replicated jobs: the
// commitments workers make before revealing a result, the check that a
// revealed result matches its commitment, and the verdict over a job's
// replica results (verified, mismatch or failed).
//
// The package is pure computation over small value types; it does no I/O.
package quorum

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoalnet/shoal/crypto"
	"github.com/shoalnet/shoal/jobs"
)

// A Result is what the quorum needs to know of one worker's signed result
// record. The caller has already checked the record's signature.
type Result struct {
	Job     cid.Cid // the job the result is for
	Worker  peer.ID // who computed and signed it
	CID     cid.Cid // the CID of the result record
	Outcome jobs.Outcome
}

// ResultOf returns the quorum's view of a checked signed result.
func ResultOf(s *jobs.SignedResult) Result {
	return Result{Job: s.Result.Job, Worker: s.Result.Worker, CID: s.CID, Outcome: s.Result.Outcome()}
}

// FormatOutcome returns "exit=N stdout=CID outputs=CID" (and the failure, if any).
func FormatOutcome(o jobs.Outcome) string {
	s := fmt.Sprintf("exit=%d stdout=%s outputs=%s", o.ExitCode, cidString(o.Stdout), cidString(o.Outputs))
	if o.Failure != jobs.FailureNone {
		s += " failure=" + string(o.Failure)
	}
	return s
}

func cidString(c cid.Cid) string {
	if !c.Defined() {
		return "none"
	}
	return c.String()
}

// hashDomain separates commitment hashes from every other sha2-256 use.
const hashDomain = "shoal/job-commitment-hash/1"

// CommitHash returns the commitment hash binding worker, job and the CID of
// the worker's result record:
//
//	sha2-256("shoal/job-commitment-hash/1" || lp(worker) || lp(job) || lp(result))
//
// where lp(x) is uvarint(len(x)) followed by the binary form of x.
func CommitHash(worker peer.ID, job, result cid.Cid) [32]byte {
	h := sha256.New()
	h.Write([]byte(hashDomain))
	var lb [binary.MaxVarintLen64]byte
	for _, b := range [][]byte{[]byte(worker), job.Bytes(), result.Bytes()} {
		n := binary.PutUvarint(lb[:], uint64(len(b)))
		h.Write(lb[:n])
		h.Write(b)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// A Commitment is a worker's signed promise of a result it has not yet
// revealed.
type Commitment struct {
	Job    cid.Cid
	Worker peer.ID
	Hash   [32]byte
	Sig    []byte // Worker's signature of SignedMessage(), domain crypto.DomainJobCommitment
}

// SignedMessage returns the bytes a commitment signature covers:
// lp(job) || lp(worker) || hash.
func (c Commitment) SignedMessage() []byte {
	b := binary.AppendUvarint(nil, uint64(c.Job.ByteLen()))
	b = append(b, c.Job.Bytes()...)
	b = binary.AppendUvarint(b, uint64(len(c.Worker)))
	b = append(b, c.Worker...)
	return append(b, c.Hash[:]...)
}

// Commit returns key's signed commitment to the result record named result
// for job.
func Commit(key crypto.PrivKey, job, result cid.Cid) (Commitment, error) {
	worker, err := crypto.PeerID(key)
	if err != nil {
		return Commitment{}, err
	}
	c := Commitment{Job: job, Worker: worker, Hash: CommitHash(worker, job, result)}
	c.Sig, err = crypto.Sign(key, crypto.DomainJobCommitment, c.SignedMessage())
	if err != nil {
		return Commitment{}, fmt.Errorf("quorum: sign commitment for job %s: %w", job, err)
	}
	return c, nil
}

// Verify checks that c is signed by c.Worker. A bad signature wraps
// crypto.ErrBadSignature.
func (c Commitment) Verify() error {
	pub, err := crypto.PubKeyFromID(c.Worker)
	if err != nil {
		return fmt.Errorf("quorum: commitment for job %s: %w", c.Job, err)
	}
	if err := crypto.Verify(pub, crypto.DomainJobCommitment, c.SignedMessage(), c.Sig); err != nil {
		return fmt.Errorf("quorum: commitment of %s for job %s: %w", c.Worker, c.Job, err)
	}
	return nil
}

// ErrRevealMismatch is wrapped by CheckReveal when a revealed result does
// not match the commitment made for it.
var ErrRevealMismatch = errors.New("revealed result does not match its commitment")

// CheckReveal reports whether r is the result c committed to: same job,
// same worker and the commitment hash of r's CID. It does not check
// signatures.
func CheckReveal(c Commitment, r Result) error {
	switch {
	case r.Job != c.Job:
		return fmt.Errorf("quorum: result for job %s revealed against a commitment for job %s: %w", r.Job, c.Job, ErrRevealMismatch)
	case r.Worker != c.Worker:
		return fmt.Errorf("quorum: result by %s revealed against a commitment by %s: %w", r.Worker, c.Worker, ErrRevealMismatch)
	case CommitHash(r.Worker, r.Job, r.CID) != c.Hash:
		return fmt.Errorf("quorum: result %s of %s for job %s: %w", r.CID, r.Worker, r.Job, ErrRevealMismatch)
	}
	return nil
}

// A Kind is a job's verdict.
type Kind string

// The verdicts.
const (
	// Verified: at least quorum results agree, and no other outcome reached quorum.
	Verified Kind = "verified"
	// Mismatch: enough workers answered but no single outcome reached quorum
	// (or two did).
	Mismatch Kind = "mismatch"
	// Failed: fewer than quorum workers produced a result.
	Failed Kind = "failed"
)

// A Verdict is the decision over a job's results.
type Verdict struct {
	Kind Kind
	// Outcome is the agreed outcome; set only when Kind is Verified.
	Outcome jobs.Outcome
	// Agreeing lists the workers whose result is Outcome (Verified only).
	Agreeing []peer.ID
	// Disagreeing lists the workers whose result differs from Outcome
	// (Verified), or every worker that answered (Mismatch).
	Disagreeing []peer.ID
	// Reason says in words how the verdict was reached.
	Reason string
}

// Decide returns the verdict over results, the verified results of one job
// from distinct workers, given the quorum the job asked for. A worker that
// appears twice counts once (its first result). If quorum < 1, Decide panics.
func Decide(results []Result, quorum int) Verdict {
	if quorum < 1 {
		panic(fmt.Sprintf("quorum: Decide with quorum %d", quorum))
	}
	type group struct {
		outcome jobs.Outcome
		workers []peer.ID
	}
	var groups []*group
	seen := make(map[peer.ID]bool)
	n := 0
	for _, r := range results {
		if seen[r.Worker] {
			continue
		}
		seen[r.Worker] = true
		n++
		o := r.Outcome
		i := slices.IndexFunc(groups, func(g *group) bool { return g.outcome == o })
		if i < 0 {
			groups = append(groups, &group{outcome: o})
			i = len(groups) - 1
		}
		groups[i].workers = append(groups[i].workers, r.Worker)
	}
	if n < quorum {
		return Verdict{Kind: Failed, Reason: fmt.Sprintf("%d of the %d results needed were produced", n, quorum)}
	}
	var winners []*group
	for _, g := range groups {
		if len(g.workers) >= quorum {
			winners = append(winners, g)
		}
	}
	all := make([]peer.ID, 0, n)
	for _, g := range groups {
		all = append(all, g.workers...)
	}
	switch len(winners) {
	case 1:
		w := winners[0]
		var dis []peer.ID
		for _, g := range groups {
			if g != w {
				dis = append(dis, g.workers...)
			}
		}
		reason := fmt.Sprintf("%d of %d results agree (quorum %d)", len(w.workers), n, quorum)
		if len(dis) > 0 {
			reason += "; disagreeing: " + joinIDs(dis)
		}
		return Verdict{Kind: Verified, Outcome: w.outcome, Agreeing: w.workers, Disagreeing: dis, Reason: reason}
	case 0:
		sizes := make([]string, len(groups))
		for i, g := range groups {
			sizes[i] = fmt.Sprint(len(g.workers))
		}
		return Verdict{Kind: Mismatch, Disagreeing: all,
			Reason: fmt.Sprintf("%d results in %d disagreeing groups (sizes %s); none reaches quorum %d", n, len(groups), strings.Join(sizes, ", "), quorum)}
	default:
		return Verdict{Kind: Mismatch, Disagreeing: all,
			Reason: fmt.Sprintf("%d different outcomes each reach quorum %d; raise the quorum above half the replicas", len(winners), quorum)}
	}
}

func joinIDs(ids []peer.ID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.String()
	}
	return strings.Join(s, ", ")
}
