package jobs

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
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
	return encodeBody(LedgerKindSubmitted, &wireSubmittedEntry{Version: LedgerVersion, Job: cidLink{e.Job}, Spec: spec})
}

// wireSubmittedEntry is the DAG-CBOR map of a job.submitted body.
type wireSubmittedEntry struct {
	Version int64   `cbor:"version"`
	Job     cidLink `cbor:"job"`
	Spec    []byte  `cbor:"spec"`
}

// DecodeSubmittedEntry decodes and checks a job.submitted body: size,
// canonical form, fields, and the included spec's signature and job CID.
func DecodeSubmittedEntry(data []byte) (*SubmittedEntry, error) {
	var w wireSubmittedEntry
	if err := readBody(LedgerKindSubmitted, data, &w, &w.Version); err != nil {
		return nil, err
	}
	e := &SubmittedEntry{Job: w.Job.c}
	if len(w.Spec) > 0 {
		s, err := DecodeSignedSpec(w.Spec)
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
	return encodeBody(LedgerKindExecuted, &wireExecutedEntry{
		Version:   LedgerVersion,
		Job:       cidLink{e.Job},
		Submitter: []byte(e.Submitter),
		Result:    cidLink{e.Result.CID},
		Signed:    signed,
	})
}

// wireExecutedEntry is the DAG-CBOR map of a job.executed body.
type wireExecutedEntry struct {
	Version   int64   `cbor:"version"`
	Job       cidLink `cbor:"job"`
	Submitter []byte  `cbor:"submitter"`
	Result    cidLink `cbor:"result"`
	Signed    []byte  `cbor:"signed"`
}

// readExecuted decodes a job.executed body and its submitter, leaving the
// signed result in its bytes.
func readExecuted(data []byte) (*wireExecutedEntry, peer.ID, error) {
	var w wireExecutedEntry
	if err := readBody(LedgerKindExecuted, data, &w, &w.Version); err != nil {
		return nil, "", err
	}
	sub, err := peerField(LedgerKindExecuted+".submitter", w.Submitter)
	if err != nil {
		return nil, "", err
	}
	return &w, sub, nil
}

// DecodeExecutedEntry decodes and checks a job.executed body: size,
// canonical form, fields, the signed result's signature, and that it is a
// result of the entry's job with the entry's result CID.
func DecodeExecutedEntry(data []byte) (*ExecutedEntry, error) {
	w, sub, err := readExecuted(data)
	if err != nil {
		return nil, err
	}
	e := &ExecutedEntry{Job: w.Job.c, Submitter: sub}
	rc := w.Result.c
	res, err := DecodeSignedResult(w.Signed)
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
	w, sub, err := readExecuted(data)
	if err != nil {
		return cid.Undef, cid.Undef, "", err
	}
	return w.Job.c, w.Result.c, sub, nil
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
	w := &wireVerdictEntry{
		Version:     LedgerVersion,
		Job:         cidLink{e.Job},
		State:       string(e.State),
		Verdict:     e.Verdict,
		Reason:      e.Reason,
		Replicas:    int64(e.Replicas),
		Quorum:      int64(e.Quorum),
		Results:     make([]wireVerdictResult, len(e.Results)),
		Disagreeing: make([][]byte, len(e.Disagreeing)),
	}
	for i, r := range e.Results {
		w.Results[i] = wireVerdictResult{Worker: []byte(r.Worker), Result: cidLink{r.CID}, Signed: signed[i]}
	}
	for i, p := range e.Disagreeing {
		w.Disagreeing[i] = []byte(p)
	}
	return encode(LedgerKindVerdict+" entry", w)
}

// wireVerdictEntry is the DAG-CBOR map of a job.verdict body.
type wireVerdictEntry struct {
	Version     int64               `cbor:"version"`
	Job         cidLink             `cbor:"job"`
	State       string              `cbor:"state"`
	Verdict     string              `cbor:"verdict"`
	Reason      string              `cbor:"reason"`
	Replicas    int64               `cbor:"replicas"`
	Quorum      int64               `cbor:"quorum"`
	Results     []wireVerdictResult `cbor:"results"`
	Disagreeing [][]byte            `cbor:"disagreeing"`
}

// wireVerdictResult is one of wireVerdictEntry.Results.
type wireVerdictResult struct {
	Worker []byte  `cbor:"worker"`
	Result cidLink `cbor:"result"`
	Signed []byte  `cbor:"signed"`
}

// DecodeVerdictEntry decodes and checks a job.verdict body: size, canonical
// form, fields and their ranges, and every included signed result's
// signature, worker, job and CID.
func DecodeVerdictEntry(data []byte) (*VerdictEntry, error) {
	var w wireVerdictEntry
	if err := readBody(LedgerKindVerdict, data, &w, &w.Version); err != nil {
		return nil, err
	}
	e := &VerdictEntry{Job: w.Job.c, State: State(w.State), Verdict: w.Verdict, Reason: w.Reason}
	var c checks
	e.Replicas = c.bounded(LedgerKindVerdict+".replicas", w.Replicas, MaxReplicas)
	e.Quorum = c.bounded(LedgerKindVerdict+".quorum", w.Quorum, MaxReplicas)
	if c.err != nil {
		return nil, c.err
	}
	if len(w.Results) > MaxVerdictResults {
		return nil, fmt.Errorf("jobs: %s.results: has %d elements, more than %d", LedgerKindVerdict, len(w.Results), MaxVerdictResults)
	}
	signed := make([][]byte, len(w.Results))
	for i, r := range w.Results {
		worker, err := peerField(fmt.Sprintf("%s.results[%d].worker", LedgerKindVerdict, i), r.Worker)
		if err != nil {
			return nil, err
		}
		e.Results = append(e.Results, VerdictResult{Worker: worker, CID: r.Result.c})
		signed[i] = r.Signed
	}
	if len(w.Disagreeing) > MaxVerdictResults {
		return nil, fmt.Errorf("jobs: %s.disagreeing: has %d elements, more than %d", LedgerKindVerdict, len(w.Disagreeing), MaxVerdictResults)
	}
	for i, b := range w.Disagreeing {
		p, err := peerField(fmt.Sprintf("%s.disagreeing[%d]", LedgerKindVerdict, i), b)
		if err != nil {
			return nil, err
		}
		e.Disagreeing = append(e.Disagreeing, p)
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

// encodeBody encodes a body, a pointer to a wire struct, and checks its
// size.
func encodeBody(kind string, w any) ([]byte, error) {
	b, err := encode(kind+" entry", w)
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

// readBody decodes a body strictly into w, a pointer to a wire struct,
// and checks its version, read into *version.
func readBody(kind string, data []byte, w any, version *int64) error {
	if err := decodeCanonical(kind+" entry", kind, data, MaxLedgerBodySize, w); err != nil {
		return err
	}
	if *version != LedgerVersion {
		return fmt.Errorf("jobs: %s.version %d is not supported (want %d); upgrade shoal", kind, *version, LedgerVersion)
	}
	return nil
}

// peerField reads a peer ID stored as bytes; path names it in errors.
func peerField(path string, b []byte) (peer.ID, error) {
	p, err := peer.IDFromBytes(b)
	if err != nil {
		return "", fmt.Errorf("jobs: %s: is not a peer ID: %w", path, err)
	}
	return p, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
