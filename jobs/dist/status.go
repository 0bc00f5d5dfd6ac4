package dist

import (
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
	// Signed is the signed result record (jobs.DecodeSignedResult reads it).
	Signed []byte `json:"signed"`
}

// Terminal reports whether the job has ended.
func (s Status) Terminal() bool { return s.State.Terminal() }

func resultStatus(r *jobs.SignedResult, vote bool) ResultStatus {
	b, _ := r.Encode()
	return ResultStatus{
		Worker: r.Result.Worker, CID: r.CID, ExitCode: r.Result.ExitCode, Failure: r.Result.Failure,
		Reason: r.Result.Reason, Stdout: r.Result.Stdout, Stderr: r.Result.Stderr, Outputs: r.Result.Outputs,
		Vote: vote, Signed: b,
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
