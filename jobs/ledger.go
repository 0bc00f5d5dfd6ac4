package jobs

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	"github.com/libp2p/go-libp2p/core/peer"
)

// A Recorder appends entries to the node's own ledger. The ledger package's
// *ledger.Log implements it; the jobs subsystem records what it submitted,
// ran and decided through it, and never imports the ledger.
type Recorder interface {
	// Record appends an entry of kind (one of the LedgerKind constants)
	// with body (at most MaxLedgerBodySize bytes) and returns its sequence
	// number once the entry is durable. An error means the entry may not
	// be recorded; the caller must report it, not ignore it. Record is
	// safe for concurrent use.
	Record(ctx context.Context, kind string, body []byte) (seq uint64, err error)
}

// A BatchRecorder is a Recorder that also appends several entries at
// once: in order, next to each other, and durable together (one sync),
// returning their sequence numbers. The ledger's Log is one; a submitter
// records a short job's job.submitted and job.verdict entries this way.
type BatchRecorder interface {
	Recorder
	RecordAll(ctx context.Context, kinds []string, bodies [][]byte) (seqs []uint64, err error)
}

// RecorderFunc adapts a function to a Recorder.
type RecorderFunc func(ctx context.Context, kind string, body []byte) (uint64, error)

// Record calls f.
func (f RecorderFunc) Record(ctx context.Context, kind string, body []byte) (uint64, error) {
	return f(ctx, kind, body)
}

// The ledger entry kinds the jobs subsystem records.
const (
	// LedgerKindSubmitted is recorded by a submitter when it accepts a
	// job; its body is a SubmittedEntry.
	LedgerKindSubmitted = "job.submitted"
	// LedgerKindExecuted is recorded by a worker when it has run a job,
	// before it hands the signed result out; its body is an ExecutedEntry.
	LedgerKindExecuted = "job.executed"
	// LedgerKindVerdict is recorded by a submitter when a job ends; its
	// body is a VerdictEntry.
	LedgerKindVerdict = "job.verdict"
)

// Bounds of ledger entry bodies.
const (
	// MaxLedgerBodySize is the ledger's bound on an entry body (60 KiB).
	MaxLedgerBodySize = 60 << 10
	// MaxVerdictReasonSize bounds VerdictEntry.Reason in bytes.
	MaxVerdictReasonSize = 2048
	// MaxVerdictResults bounds the results and disagreeing workers named
	// by one VerdictEntry.
	MaxVerdictResults = 64
)

// LedgerVersion is the version field of every ledger entry body the jobs
// subsystem writes. An incompatible change gets a new version.
const LedgerVersion = 1

// A SubmittedEntry is the body of a job.submitted entry:
//
//	{version: 1, job: link, spec: bytes}
//
// spec is the signed spec's encoding, or empty when it does not fit in an
// entry body (the job CID still names it).
type SubmittedEntry struct {
	Job  cid.Cid
	Spec *SignedSpec // nil when the spec was too large to include
}

// NewSubmittedEntry returns the entry body of spec, including the signed
// spec when it fits.
func NewSubmittedEntry(spec *SignedSpec) *SubmittedEntry {
	e := &SubmittedEntry{Job: spec.ID, Spec: spec}
	if b, err := spec.Encode(); err != nil || len(b) > MaxLedgerBodySize-128 {
		e.Spec = nil
	}
	return e
}

// Encode returns the canonical DAG-CBOR encoding of e.
func (e *SubmittedEntry) Encode() ([]byte, error) {
	if !e.Job.Defined() {
		return nil, fmt.Errorf("jobs: %s.job: missing job CID", LedgerKindSubmitted)
	}
	var spec []byte
	if e.Spec != nil {
		if e.Spec.ID != e.Job {
			return nil, fmt.Errorf("jobs: %s: spec is job %s, entry names %s", LedgerKindSubmitted, e.Spec.ID, e.Job)
		}
		var err error
		if spec, err = e.Spec.Encode(); err != nil {
			return nil, err
		}
	}
	return encodeBody(LedgerKindSubmitted, 3, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "version", qp.Int(LedgerVersion))
		qp.MapEntry(ma, "job", link(e.Job))
		qp.MapEntry(ma, "spec", qp.Bytes(spec))
	})
}

// DecodeSubmittedEntry decodes and checks a job.submitted body: size,
// canonical form, fields, and the included spec's signature and job CID.
func DecodeSubmittedEntry(data []byte) (*SubmittedEntry, error) {
	f, err := readBody(LedgerKindSubmitted, data, "version", "job", "spec")
	if err != nil {
		return nil, err
	}
	e := &SubmittedEntry{Job: f.link("job")}
	spec := f.bytes("spec")
	if f.err != nil {
		return nil, f.err
	}
	if len(spec) > 0 {
		s, err := DecodeSignedSpec(spec)
		if err != nil {
			return nil, fmt.Errorf("jobs: %s.spec: %w", LedgerKindSubmitted, err)
		}
		if s.ID != e.Job {
			return nil, fmt.Errorf("jobs: %s.spec is job %s, the entry names %s", LedgerKindSubmitted, s.ID, e.Job)
		}
		e.Spec = s
	}
	return e, nil
}

// An ExecutedEntry is the body of a job.executed entry:
//
//	{version: 1, job: link, submitter: bytes(peer ID), result: link,
//	 signed: bytes(signed result encoding)}
//
// result is the result CID (SignedResult.CID).
type ExecutedEntry struct {
	Job       cid.Cid
	Submitter peer.ID
	Result    *SignedResult
}

// Encode returns the canonical DAG-CBOR encoding of e.
func (e *ExecutedEntry) Encode() ([]byte, error) {
	switch {
	case !e.Job.Defined():
		return nil, fmt.Errorf("jobs: %s.job: missing job CID", LedgerKindExecuted)
	case e.Submitter == "":
		return nil, fmt.Errorf("jobs: %s.submitter: missing peer ID", LedgerKindExecuted)
	case e.Result == nil || e.Result.Result.Job != e.Job:
		return nil, fmt.Errorf("jobs: %s.signed: missing, or not a result of job %s", LedgerKindExecuted, e.Job)
	}
	signed, err := e.Result.Encode()
	if err != nil {
		return nil, err
	}
	return encodeBody(LedgerKindExecuted, 5, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "version", qp.Int(LedgerVersion))
		qp.MapEntry(ma, "job", link(e.Job))
		qp.MapEntry(ma, "submitter", qp.Bytes([]byte(e.Submitter)))
		qp.MapEntry(ma, "result", link(e.Result.CID))
		qp.MapEntry(ma, "signed", qp.Bytes(signed))
	})
}

// DecodeExecutedEntry decodes and checks a job.executed body: size,
// canonical form, fields, the signed result's signature, and that it is a
// result of the entry's job with the entry's result CID.
func DecodeExecutedEntry(data []byte) (*ExecutedEntry, error) {
	f, err := readBody(LedgerKindExecuted, data, "version", "job", "submitter", "result", "signed")
	if err != nil {
		return nil, err
	}
	e := &ExecutedEntry{Job: f.link("job")}
	e.Submitter = peerField(f, "submitter")
	rc := f.link("result")
	signed := f.bytes("signed")
	if f.err != nil {
		return nil, f.err
	}
	res, err := DecodeSignedResult(signed)
	if err != nil {
		return nil, fmt.Errorf("jobs: %s.signed: %w", LedgerKindExecuted, err)
	}
	if res.Result.Job != e.Job || res.CID != rc {
		return nil, fmt.Errorf("jobs: %s.signed is result %s of job %s, the entry names result %s of job %s",
			LedgerKindExecuted, res.CID, res.Result.Job, rc, e.Job)
	}
	e.Result = res
	return e, nil
}

// ExecutedRef reads the job and result CIDs and the submitter of a
// job.executed body without checking the signed result it carries: for
// bodies of entries already verified, as a replica's are, when only the
// reference matters.
func ExecutedRef(data []byte) (job, result cid.Cid, submitter peer.ID, err error) {
	f, err := readBody(LedgerKindExecuted, data, "version", "job", "submitter", "result", "signed")
	if err != nil {
		return cid.Undef, cid.Undef, "", err
	}
	job, result = f.link("job"), f.link("result")
	submitter = peerField(f, "submitter")
	if f.err != nil {
		return cid.Undef, cid.Undef, "", f.err
	}
	return job, result, submitter, nil
}

// A VerdictEntry is the body of a job.verdict entry:
//
//	{version: 1, job: link, state: string, verdict: string, reason: string,
//	 replicas: int, quorum: int,
//	 results: [{worker: bytes(peer ID), result: link, signed: bytes}],
//	 disagreeing: [bytes(peer ID)]}
//
// state is done, failed or cancelled; verdict is verified, mismatch or
// failed, and empty exactly when the job was cancelled. results lists every
// signed result the submitter received, in arrival order; signed is the
// signed result's encoding, or empty for the last results when all of them
// would not fit in an entry body (the result CID still names it).
type VerdictEntry struct {
	Job         cid.Cid
	State       State
	Verdict     string
	Reason      string
	Replicas    int
	Quorum      int
	Results     []VerdictResult
	Disagreeing []peer.ID
}

// A VerdictResult is one worker's result named by a VerdictEntry.
type VerdictResult struct {
	Worker peer.ID
	CID    cid.Cid       // the result CID
	Signed *SignedResult // nil when the body had no room for it
}

// The verdicts a VerdictEntry may carry; they are jobs/quorum's kinds.
var verdicts = []string{"verified", "mismatch", "failed"}

// NewVerdictEntry returns the verdict entry of job with every result in
// full, then drops the signed bytes of the last results until the
// encoding fits in an entry body. reason is truncated to
// MaxVerdictReasonSize.
func NewVerdictEntry(job cid.Cid, state State, verdict, reason string, replicas, quorum int,
	results []*SignedResult, disagreeing []peer.ID) (*VerdictEntry, []byte, error) {
	if len(reason) > MaxVerdictReasonSize {
		reason = strings.ToValidUTF8(reason[:MaxVerdictReasonSize-3], "") + "..."
	}
	e := &VerdictEntry{Job: job, State: state, Verdict: verdict, Reason: reason, Replicas: replicas,
		Quorum: quorum, Disagreeing: disagreeing}
	for _, r := range results {
		e.Results = append(e.Results, VerdictResult{Worker: r.Result.Worker, CID: r.CID, Signed: r})
	}
	for i := len(e.Results); ; i-- {
		b, err := e.encode()
		if err != nil {
			return nil, nil, err
		}
		if len(b) <= MaxLedgerBodySize || i == 0 {
			if len(b) > MaxLedgerBodySize {
				return nil, nil, fmt.Errorf("jobs: %s of job %s is %d bytes even without signed results", LedgerKindVerdict, job, len(b))
			}
			return e, b, nil
		}
		e.Results[i-1].Signed = nil
	}
}

func (e *VerdictEntry) validate() error {
	switch {
	case !e.Job.Defined():
		return fmt.Errorf("jobs: %s.job: missing job CID", LedgerKindVerdict)
	case e.State != StateDone && e.State != StateFailed && e.State != StateCancelled:
		return fmt.Errorf("jobs: %s.state %q: want done, failed or cancelled", LedgerKindVerdict, e.State)
	case (e.Verdict == "") != (e.State == StateCancelled):
		return fmt.Errorf("jobs: %s.verdict %q with state %s: a verdict is empty exactly when the job was cancelled", LedgerKindVerdict, e.Verdict, e.State)
	case e.Verdict != "" && !containsString(verdicts, e.Verdict):
		return fmt.Errorf("jobs: %s.verdict %q: want one of %v", LedgerKindVerdict, e.Verdict, verdicts)
	case len(e.Reason) > MaxVerdictReasonSize || !utf8.ValidString(e.Reason):
		return fmt.Errorf("jobs: %s.reason must be UTF-8 of at most %d bytes", LedgerKindVerdict, MaxVerdictReasonSize)
	case e.Replicas < 1 || e.Replicas > MaxReplicas || e.Quorum < 1 || e.Quorum > e.Replicas:
		return fmt.Errorf("jobs: %s: replicas %d, quorum %d: want 1 ≤ quorum ≤ replicas ≤ %d", LedgerKindVerdict, e.Replicas, e.Quorum, MaxReplicas)
	case len(e.Results) > MaxVerdictResults || len(e.Disagreeing) > MaxVerdictResults:
		return fmt.Errorf("jobs: %s: %d results and %d disagreeing workers, at most %d each", LedgerKindVerdict, len(e.Results), len(e.Disagreeing), MaxVerdictResults)
	}
	for i, r := range e.Results {
		switch {
		case r.Worker == "" || !r.CID.Defined():
			return fmt.Errorf("jobs: %s.results[%d]: missing worker or result CID", LedgerKindVerdict, i)
		case r.Signed != nil && (r.Signed.CID != r.CID || r.Signed.Result.Worker != r.Worker || r.Signed.Result.Job != e.Job):
			return fmt.Errorf("jobs: %s.results[%d].signed is result %s by %s of job %s, the entry names result %s by %s of job %s",
				LedgerKindVerdict, i, r.Signed.CID, r.Signed.Result.Worker, r.Signed.Result.Job, r.CID, r.Worker, e.Job)
		}
	}
	return nil
}

// Encode returns the canonical DAG-CBOR encoding of e.
func (e *VerdictEntry) Encode() ([]byte, error) {
	b, err := e.encode()
	if err != nil {
		return nil, err
	}
	return checkBodySize(LedgerKindVerdict, b)
}

// encode returns the encoding of e whatever its size.
func (e *VerdictEntry) encode() ([]byte, error) {
	if err := e.validate(); err != nil {
		return nil, err
	}
	signed := make([][]byte, len(e.Results))
	for i, r := range e.Results {
		if r.Signed != nil {
			b, err := r.Signed.Encode()
			if err != nil {
				return nil, err
			}
			signed[i] = b
		}
	}
	return buildMap(LedgerKindVerdict+" entry", 9, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "version", qp.Int(LedgerVersion))
		qp.MapEntry(ma, "job", link(e.Job))
		qp.MapEntry(ma, "state", qp.String(string(e.State)))
		qp.MapEntry(ma, "verdict", qp.String(e.Verdict))
		qp.MapEntry(ma, "reason", qp.String(e.Reason))
		qp.MapEntry(ma, "replicas", qp.Int(int64(e.Replicas)))
		qp.MapEntry(ma, "quorum", qp.Int(int64(e.Quorum)))
		qp.MapEntry(ma, "results", qp.List(int64(len(e.Results)), func(la datamodel.ListAssembler) {
			for i, r := range e.Results {
				qp.ListEntry(la, qp.Map(3, func(ma datamodel.MapAssembler) {
					qp.MapEntry(ma, "worker", qp.Bytes([]byte(r.Worker)))
					qp.MapEntry(ma, "result", link(r.CID))
					qp.MapEntry(ma, "signed", qp.Bytes(signed[i]))
				}))
			}
		}))
		qp.MapEntry(ma, "disagreeing", qp.List(int64(len(e.Disagreeing)), func(la datamodel.ListAssembler) {
			for _, p := range e.Disagreeing {
				qp.ListEntry(la, qp.Bytes([]byte(p)))
			}
		}))
	})
}

// DecodeVerdictEntry decodes and checks a job.verdict body: size, canonical
// form, fields and their ranges, and every included signed result's
// signature, worker, job and CID.
func DecodeVerdictEntry(data []byte) (*VerdictEntry, error) {
	f, err := readBody(LedgerKindVerdict, data, "version", "job", "state", "verdict", "reason",
		"replicas", "quorum", "results", "disagreeing")
	if err != nil {
		return nil, err
	}
	e := &VerdictEntry{Job: f.link("job"), State: State(f.str("state")), Verdict: f.str("verdict"), Reason: f.str("reason")}
	e.Replicas = int(boundedInt(f, "replicas", MaxReplicas))
	e.Quorum = int(boundedInt(f, "quorum", MaxReplicas))
	var signed [][]byte
	f.list("results", MaxVerdictResults, func(i int, v datamodel.Node) {
		rf := readFields(fmt.Sprintf("%s.results[%d]", LedgerKindVerdict, i), v, "worker", "result", "signed")
		r := VerdictResult{Worker: peerField(rf, "worker"), CID: rf.link("result")}
		s := rf.bytes("signed")
		if rf.err != nil && f.err == nil {
			f.err = rf.err
		}
		e.Results = append(e.Results, r)
		signed = append(signed, s)
	})
	f.list("disagreeing", MaxVerdictResults, func(i int, v datamodel.Node) {
		b, err := v.AsBytes()
		if err != nil {
			f.fail(fmt.Sprintf("disagreeing[%d]", i), "is a %s, want bytes", v.Kind())
			return
		}
		p, err := peer.IDFromBytes(b)
		if err != nil {
			f.fail(fmt.Sprintf("disagreeing[%d]", i), "is not a peer ID: %v", err)
			return
		}
		e.Disagreeing = append(e.Disagreeing, p)
	})
	if f.err != nil {
		return nil, f.err
	}
	for i, s := range signed {
		if len(s) == 0 {
			continue
		}
		res, err := DecodeSignedResult(s)
		if err != nil {
			return nil, fmt.Errorf("jobs: %s.results[%d].signed: %w", LedgerKindVerdict, i, err)
		}
		e.Results[i].Signed = res
	}
	if err := e.validate(); err != nil {
		return nil, err
	}
	return e, nil
}

// DescribeLedgerEntry returns a one-line summary of a ledger entry body of
// one of the jobs kinds, for listings. ok is false for other kinds; a body
// that does not decode is described as such.
func DescribeLedgerEntry(kind string, body []byte) (summary string, ok bool) {
	switch kind {
	case LedgerKindSubmitted:
		e, err := DecodeSubmittedEntry(body)
		if err != nil {
			return "undecodable: " + err.Error(), true
		}
		if e.Spec == nil {
			return fmt.Sprintf("job %s (spec not included)", e.Job), true
		}
		env := e.Spec.Envelope
		return fmt.Sprintf("job %s module %s replicas %d quorum %d", e.Job, env.Computation.Module, env.Replicas, env.Quorum), true
	case LedgerKindExecuted:
		e, err := DecodeExecutedEntry(body)
		if err != nil {
			return "undecodable: " + err.Error(), true
		}
		r := e.Result.Result
		s := fmt.Sprintf("job %s for %s: result %s exit %d", e.Job, e.Submitter, e.Result.CID, r.ExitCode)
		if r.Failure != FailureNone {
			s += " failure " + string(r.Failure)
		}
		return s, true
	case LedgerKindVerdict:
		e, err := DecodeVerdictEntry(body)
		if err != nil {
			return "undecodable: " + err.Error(), true
		}
		v := e.Verdict
		if v == "" {
			v = string(e.State)
		}
		s := fmt.Sprintf("job %s %s with %d result(s)", e.Job, v, len(e.Results))
		if len(e.Disagreeing) > 0 {
			ids := make([]string, len(e.Disagreeing))
			for i, p := range e.Disagreeing {
				ids[i] = p.String()
			}
			s += "; disagreeing: " + strings.Join(ids, ", ")
		}
		return s, true
	}
	return "", false
}

// encodeBody builds a body map and checks its size.
func encodeBody(kind string, size int64, fn func(datamodel.MapAssembler)) ([]byte, error) {
	b, err := buildMap(kind+" entry", size, fn)
	if err != nil {
		return nil, err
	}
	return checkBodySize(kind, b)
}

func checkBodySize(kind string, b []byte) ([]byte, error) {
	if len(b) > MaxLedgerBodySize {
		return nil, fmt.Errorf("jobs: %s entry is %d bytes, more than the %d a ledger body may hold", kind, len(b), MaxLedgerBodySize)
	}
	return b, nil
}

// readBody decodes a body strictly and checks its version.
func readBody(kind string, data []byte, known ...string) (*fields, error) {
	n, err := decodeCanonical(kind+" entry", data, MaxLedgerBodySize)
	if err != nil {
		return nil, err
	}
	f := readFields(kind, n, known...)
	if v := f.int("version"); f.err == nil && v != LedgerVersion {
		return nil, fmt.Errorf("jobs: %s.version %d is not supported (want %d); upgrade shoal", kind, v, LedgerVersion)
	}
	if f.err != nil {
		return nil, f.err
	}
	return f, nil
}

// peerField reads a peer ID stored as bytes.
func peerField(f *fields, key string) peer.ID {
	b := f.bytes(key)
	if f.err != nil {
		return ""
	}
	p, err := peer.IDFromBytes(b)
	if err != nil {
		f.fail(key, "is not a peer ID: %v", err)
		return ""
	}
	return p
}

// list reads a list of at most max elements, handing each to fn.
func (f *fields) list(key string, max int, fn func(i int, v datamodel.Node)) {
	v := f.get(key)
	if v == nil {
		return
	}
	if v.Kind() != datamodel.Kind_List {
		f.fail(key, "is a %s, want a list", v.Kind())
		return
	}
	if v.Length() > int64(max) {
		f.fail(key, "has %d elements, more than %d", v.Length(), max)
		return
	}
	it := v.ListIterator()
	for !it.Done() && f.err == nil {
		i, e, err := it.Next()
		if err != nil {
			f.fail(key, "%v", err)
			return
		}
		fn(int(i), e)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
