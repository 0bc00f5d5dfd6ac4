package jobs

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multicodec"

	"github.com/shoalnet/shoal/crypto"
)

// A Failure says why the sandbox, not the program, ended a run. The empty
// Failure means the program exited on its own (with any exit code). The
// list is append-only: values cross the wire.
type Failure string

// The failures a run can end with.
const (
	FailureNone          Failure = ""
	FailureWallTime      Failure = "wall_time"      // ran past limits.wall_ms and was killed
	FailureMemory        Failure = "memory"         // needed more than limits.memory
	FailureStdout        Failure = "stdout_limit"   // wrote more than limits.stdout
	FailureStderr        Failure = "stderr_limit"   // wrote more than limits.stderr
	FailureOutputs       Failure = "outputs_limit"  // wrote more than limits.outputs under /outputs
	FailureTrap          Failure = "trap"           // the module trapped (unreachable, bad memory access, ...)
	FailureInvalidModule Failure = "invalid_module" // not a WebAssembly module, or it does not compile
	FailureImport        Failure = "unknown_import" // imports something the sandbox does not offer
	FailureInput         Failure = "input"          // the module or an input could not be fetched or exported
	FailureWorker        Failure = "worker"         // the sandbox worker died or misbehaved
	FailureInternal      Failure = "internal"       // the node failed around the run (storage, signing)
)

// Failures returns every known Failure except FailureNone.
func Failures() []Failure {
	return []Failure{FailureWallTime, FailureMemory, FailureStdout, FailureStderr, FailureOutputs,
		FailureTrap, FailureInvalidModule, FailureImport, FailureInput, FailureWorker, FailureInternal}
}

// Valid reports whether f is FailureNone or a known failure.
func (f Failure) Valid() bool {
	if f == FailureNone {
		return true
	}
	for _, k := range Failures() {
		if f == k {
			return true
		}
	}
	return false
}

// MaxReasonSize bounds Result.Reason in bytes.
const MaxReasonSize = 1024

// A Result is what one worker reports for one run of a job. Its canonical
// encoding is signed by the worker (crypto.DomainJobResult); its CID names
// it. Replicas agree when ExitCode, Stdout and Outputs are equal.
type Result struct {
	Version     int     // FormatVersion
	Job         cid.Cid // the job ID (envelope CID)
	Computation cid.Cid // the computation CID
	Worker      peer.ID // the peer that ran it
	ExitCode    int64   // the program's exit code; -1 when a Failure ended it
	Failure     Failure
	Reason      string  // human-readable detail of a failure, at most MaxReasonSize bytes
	Stdout      cid.Cid // UnixFS file of the captured stdout (up to the limit)
	Stderr      cid.Cid // UnixFS file of the captured stderr (up to the limit)
	Outputs     cid.Cid // UnixFS directory of /outputs
	WallTime    time.Duration
	PeakMemory  uint64 // peak linear memory, bytes
}

// OK reports whether the program ran to completion with exit code 0.
func (r *Result) OK() bool { return r.Failure == FailureNone && r.ExitCode == 0 }

// Validate checks r and returns an error naming the first bad field.
func (r *Result) Validate() error {
	switch {
	case r.Version != FormatVersion:
		return fmt.Errorf("jobs: result.version %d is not supported (want %d); upgrade shoal", r.Version, FormatVersion)
	case !r.Job.Defined():
		return fmt.Errorf("jobs: result.job: missing job CID")
	case !r.Computation.Defined():
		return fmt.Errorf("jobs: result.computation: missing computation CID")
	case r.Worker == "":
		return fmt.Errorf("jobs: result.worker: missing peer ID")
	case !r.Failure.Valid():
		return fmt.Errorf("jobs: result.failure %q is not a known failure", r.Failure)
	case r.Failure != FailureNone && r.ExitCode != -1:
		return fmt.Errorf("jobs: result.exit_code is %d with failure %q; want -1", r.ExitCode, r.Failure)
	case r.ExitCode < -1 || r.ExitCode > 1<<32-1:
		return fmt.Errorf("jobs: result.exit_code %d is outside [-1, 2^32-1]", r.ExitCode)
	case len(r.Reason) > MaxReasonSize || !utf8.ValidString(r.Reason):
		return fmt.Errorf("jobs: result.reason must be UTF-8 of at most %d bytes", MaxReasonSize)
	case !r.Stdout.Defined():
		return fmt.Errorf("jobs: result.stdout: missing CID")
	case !r.Stderr.Defined():
		return fmt.Errorf("jobs: result.stderr: missing CID")
	case !r.Outputs.Defined():
		return fmt.Errorf("jobs: result.outputs: missing CID")
	case r.WallTime < 0 || r.WallTime%time.Microsecond != 0:
		return fmt.Errorf("jobs: result.wall_us: %v must be non-negative whole microseconds", r.WallTime)
	case r.PeakMemory > 1<<62:
		return fmt.Errorf("jobs: result.peak_memory %d is out of range", r.PeakMemory)
	}
	if _, err := crypto.PubKeyFromID(r.Worker); err != nil {
		return fmt.Errorf("jobs: result.worker: %w", err)
	}
	return nil
}

// wireResult is the DAG-CBOR map of a result.
type wireResult struct {
	Version     int64   `cbor:"version"`
	Job         cidLink `cbor:"job"`
	Computation cidLink `cbor:"computation"`
	Worker      []byte  `cbor:"worker"`
	ExitCode    int64   `cbor:"exit_code"`
	Failure     string  `cbor:"failure"`
	Reason      string  `cbor:"reason"`
	Stdout      cidLink `cbor:"stdout"`
	Stderr      cidLink `cbor:"stderr"`
	Outputs     cidLink `cbor:"outputs"`
	WallUS      int64   `cbor:"wall_us"`
	PeakMemory  int64   `cbor:"peak_memory"`
}

// Encode returns the canonical DAG-CBOR encoding of r. It fails if r does
// not validate.
func (r *Result) Encode() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return encode("result", &wireResult{
		Version:     int64(r.Version),
		Job:         cidLink{r.Job},
		Computation: cidLink{r.Computation},
		Worker:      []byte(r.Worker),
		ExitCode:    r.ExitCode,
		Failure:     string(r.Failure),
		Reason:      r.Reason,
		Stdout:      cidLink{r.Stdout},
		Stderr:      cidLink{r.Stderr},
		Outputs:     cidLink{r.Outputs},
		WallUS:      r.WallTime.Microseconds(),
		PeakMemory:  int64(r.PeakMemory),
	})
}

// CID returns the DAG-CBOR CID of r's encoding.
func (r *Result) CID() (cid.Cid, error) {
	b, err := r.Encode()
	if err != nil {
		return cid.Undef, err
	}
	return crypto.CIDOf(multicodec.DagCbor, b), nil
}

// DecodeResult decodes canonical result bytes, checking size first and
// rejecting unknown versions, unknown or missing fields and bad values with
// an error naming the field.
func DecodeResult(data []byte) (*Result, error) {
	var w wireResult
	if err := decodeCanonical("result", "result", data, MaxResultSize, &w); err != nil {
		return nil, err
	}
	if w.Version != FormatVersion {
		return nil, fmt.Errorf("jobs: result.version %d is not supported (want %d); upgrade shoal", w.Version, FormatVersion)
	}
	worker, err := peer.IDFromBytes(w.Worker)
	if err != nil {
		return nil, fmt.Errorf("jobs: result.worker is not a peer ID: %w", err)
	}
	var c checks
	if w.WallUS < 0 || w.WallUS > int64(MaxWallTime/time.Microsecond)*2 {
		c.fail("result.wall_us", "%d is out of range", w.WallUS)
	}
	peak := c.nonNegative("result.peak_memory", w.PeakMemory)
	if c.err != nil {
		return nil, c.err
	}
	r := &Result{
		Version:     FormatVersion,
		Job:         w.Job.c,
		Computation: w.Computation.c,
		Worker:      worker,
		ExitCode:    w.ExitCode,
		Failure:     Failure(w.Failure),
		Reason:      w.Reason,
		Stdout:      w.Stdout.c,
		Stderr:      w.Stderr.c,
		Outputs:     w.Outputs.c,
		WallTime:    time.Duration(w.WallUS) * time.Microsecond,
		PeakMemory:  peak,
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// A SignedResult is a result with its worker's detached signature
// (crypto.DomainJobResult). Its encoding is the DAG-CBOR map
// {"result": bytes, "sig": bytes}. One returned by SignResult or
// DecodeSignedResult has been checked; its fields must not be modified.
type SignedResult struct {
	Result *Result
	Bytes  []byte  // canonical result bytes
	Sig    []byte  // worker's signature of Bytes
	CID    cid.Cid // CID of Bytes
}

// SignResult encodes r and signs it with key, which must be r.Worker's key.
func SignResult(key crypto.PrivKey, r *Result) (*SignedResult, error) {
	id, err := crypto.PeerID(key)
	if err != nil {
		return nil, err
	}
	if id != r.Worker {
		return nil, fmt.Errorf("jobs: sign result: key is %s but result.worker is %s", id, r.Worker)
	}
	b, err := r.Encode()
	if err != nil {
		return nil, err
	}
	sig, err := crypto.Sign(key, crypto.DomainJobResult, b)
	if err != nil {
		return nil, fmt.Errorf("jobs: sign result: %w", err)
	}
	return &SignedResult{Result: r, Bytes: b, Sig: sig, CID: crypto.CIDOf(multicodec.DagCbor, b)}, nil
}

// wireSignedResult is the DAG-CBOR map of a signed result.
type wireSignedResult struct {
	Result []byte `cbor:"result"`
	Sig    []byte `cbor:"sig"`
}

// Encode returns the canonical encoding of s.
func (s *SignedResult) Encode() ([]byte, error) {
	return encode("signed result", &wireSignedResult{Result: s.Bytes, Sig: s.Sig})
}

// DecodeSignedResult decodes and checks a signed result: size, canonical
// form, the result (as DecodeResult does) and the worker's signature. A bad
// signature wraps crypto.ErrBadSignature.
func DecodeSignedResult(data []byte) (*SignedResult, error) {
	return decodeSignedResult(data, true)
}

// DecodeSignedResultUnverified is DecodeSignedResult without the signature
// check, for a result relayed inside a message signed by someone else (a
// results announcement) that is checked in full before it is shown or
// relied on.
func DecodeSignedResultUnverified(data []byte) (*SignedResult, error) {
	return decodeSignedResult(data, false)
}

func decodeSignedResult(data []byte, verify bool) (*SignedResult, error) {
	var w wireSignedResult
	if err := decodeCanonical("signed result", "signed result", data, MaxSignedResultSize, &w); err != nil {
		return nil, err
	}
	r, err := DecodeResult(w.Result)
	if err != nil {
		return nil, err
	}
	// The key was extracted once already, by Validate.
	if verify {
		pub, err := crypto.PubKeyFromID(r.Worker)
		if err != nil {
			return nil, fmt.Errorf("jobs: signed result: %w", err)
		}
		if err := crypto.Verify(pub, crypto.DomainJobResult, w.Result, w.Sig); err != nil {
			return nil, fmt.Errorf("jobs: signed result from %s: %w", r.Worker, err)
		}
	}
	return &SignedResult{Result: r, Bytes: w.Result, Sig: w.Sig, CID: crypto.CIDOf(multicodec.DagCbor, w.Result)}, nil
}

// An Outcome is the part of a result that replicas must agree on. It is
// comparable, so it works as a map key when counting votes.
type Outcome struct {
	ExitCode int64
	Failure  Failure
	Stdout   cid.Cid
	Outputs  cid.Cid
}

// Outcome returns r's outcome.
func (r *Result) Outcome() Outcome {
	return Outcome{ExitCode: r.ExitCode, Failure: r.Failure, Stdout: r.Stdout, Outputs: r.Outputs}
}
