package dist

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoalnet/shoal/jobs"
	"github.com/shoalnet/shoal/jobs/quorum"
)

// A Status is a snapshot of one distributed job, as "shoal job status"
// shows it.
type Status struct {
	Job       cid.Cid     `json:"job"`
	State     jobs.State  `json:"state"`
	Verdict   quorum.Kind `json:"verdict,omitempty"`
	Reason    string      `json:"reason,omitempty"`  // how the verdict was reached, or why the job failed
	Blocker   string      `json:"blocker,omitempty"` // why the job is waiting, in plain words
	Submitter peer.ID     `json:"submitter"`
	Replicas  int         `json:"replicas"`
	Quorum    int         `json:"quorum"`
	Attempts  int         `json:"attempts"` // offers made so far
	// Workers shows each replica's current worker and state.
	Workers []ReplicaStatus `json:"workers"`
	// Results are every signed result received, votes and failures alike.
	Results []ResultStatus `json:"results"`
	// Disagreeing names the workers whose result lost the vote.
	Disagreeing []peer.ID `json:"disagreeing,omitempty"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
	// Remote is set when the status was read from a results announcement of
	// another node rather than from this node's own job.
	Remote bool `json:"remote,omitempty"`
	// Ledger says where the submitter recorded the job in its ledger; nil
	// when it records nothing (or for a Remote status).
	Ledger *LedgerStatus `json:"ledger,omitempty"`
}

// A LedgerStatus says where a job is recorded in its submitter's ledger.
type LedgerStatus struct {
	// Submitted and Verdict are the sequence numbers of the job.submitted
	// and job.verdict entries, once recorded.
	Submitted *uint64 `json:"submitted,omitempty"`
	Verdict   *uint64 `json:"verdict,omitempty"`
	// Error says what could not be recorded, and why.
	Error string `json:"error,omitempty"`
}

// A ReplicaStatus is one replica's place in a job.
type ReplicaStatus struct {
	Replica  int        `json:"replica"`
	Worker   peer.ID    `json:"worker,omitempty"`
	State    jobs.State `json:"state"`
	Attempts int        `json:"attempts"`
	Error    string     `json:"error,omitempty"` // the last failed attempt's error
}

// A ResultStatus is one signed result of a job.
type ResultStatus struct {
	Worker   peer.ID      `json:"worker"`
	CID      cid.Cid      `json:"cid"`
	ExitCode int64        `json:"exit_code"`
	Failure  jobs.Failure `json:"failure,omitempty"`
	Reason   string       `json:"reason,omitempty"`
	Stdout   cid.Cid      `json:"stdout"`
	Stderr   cid.Cid      `json:"stderr"`
	Outputs  cid.Cid      `json:"outputs"`
	// Vote is false for results that did not count (the worker failed
	// around the run, e.g. could not fetch an input).
	Vote bool `json:"vote"`
	// Agrees is true for results in the winning group of a verified job.
	Agrees bool `json:"agrees"`
	// WallMS and PeakMemory are the run's wall time in milliseconds and
	// the program's peak memory in bytes, as the worker signed them.
	WallMS     float64 `json:"wall_ms"`
	PeakMemory uint64  `json:"peak_memory"`
	// Signed is the signed result record (jobs.DecodeSignedResult reads it).
	Signed []byte `json:"signed"`
	// Decoded is the checked result Signed holds, so that readers in this
	// process need not decode and verify it again. Not serialised.
	Decoded *jobs.SignedResult `json:"-"`
}

// statusJSON is Status with its CID as a plain string: the API's JSON
// carries CIDs as strings everywhere.
type statusJSON struct {
	plainStatus
	Job string `json:"job"`
}

type plainStatus Status

// MarshalJSON encodes s with the job CID as a string.
func (s Status) MarshalJSON() ([]byte, error) {
	return json.Marshal(statusJSON{plainStatus: plainStatus(s), Job: cidString(s.Job)})
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (s *Status) UnmarshalJSON(b []byte) error {
	var v statusJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	job, err := parseCID("job", v.Job)
	if err != nil {
		return err
	}
	*s = Status(v.plainStatus)
	s.Job = job
	return nil
}

type resultStatusJSON struct {
	plainResultStatus
	CID     string `json:"cid"`
	Stdout  string `json:"stdout"`
	Stderr  string `json:"stderr"`
	Outputs string `json:"outputs"`
}

type plainResultStatus ResultStatus

// MarshalJSON encodes r with its CIDs as strings.
func (r ResultStatus) MarshalJSON() ([]byte, error) {
	return json.Marshal(resultStatusJSON{plainResultStatus: plainResultStatus(r),
		CID: cidString(r.CID), Stdout: cidString(r.Stdout), Stderr: cidString(r.Stderr), Outputs: cidString(r.Outputs)})
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (r *ResultStatus) UnmarshalJSON(b []byte) error {
	var v resultStatusJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = ResultStatus(v.plainResultStatus)
	var err error
	for _, f := range []struct {
		name string
		s    string
		dst  *cid.Cid
	}{{"cid", v.CID, &r.CID}, {"stdout", v.Stdout, &r.Stdout}, {"stderr", v.Stderr, &r.Stderr}, {"outputs", v.Outputs, &r.Outputs}} {
		if *f.dst, err = parseCID(f.name, f.s); err != nil {
			return err
		}
	}
	return nil
}

func cidString(c cid.Cid) string {
	if !c.Defined() {
		return ""
	}
	return c.String()
}

func parseCID(field, s string) (cid.Cid, error) {
	if s == "" {
		return cid.Undef, nil
	}
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, fmt.Errorf("dist: status field %s: %q is not a CID: %w", field, s, err)
	}
	return c, nil
}

// Terminal reports whether the job has ended.
func (s Status) Terminal() bool { return s.State.Terminal() }

func resultStatus(r *jobs.SignedResult, vote bool) ResultStatus {
	b, _ := r.Encode()
	return ResultStatus{
		Worker: r.Result.Worker, CID: r.CID, ExitCode: r.Result.ExitCode, Failure: r.Result.Failure,
		Reason: r.Result.Reason, Stdout: r.Result.Stdout, Stderr: r.Result.Stderr, Outputs: r.Result.Outputs,
		WallMS: float64(r.Result.WallTime.Microseconds()) / 1000, PeakMemory: r.Result.PeakMemory,
		Vote: vote, Signed: b, Decoded: r,
	}
}

// counts reports whether r's outcome is a vote: a result whose worker
// failed around the run says nothing about the computation.
func counts(r *jobs.SignedResult) bool {
	switch r.Result.Failure {
	case jobs.FailureInput, jobs.FailureWorker, jobs.FailureInternal:
		return false
	}
	return true
}
