package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"
)

// JobRequest is the body of POST /v1/jobs: a job to run, with CIDs of
// blocks the daemon already holds (or can fetch). Zero limits take the
// defaults of docs/jobs.md.
type JobRequest struct {
	Module      string            `json:"module"`                // CID of the WebAssembly module
	Inputs      map[string]string `json:"inputs,omitempty"`      // mount name → CID
	Args        []string          `json:"args,omitempty"`        // after argv[0]
	Env         map[string]string `json:"env,omitempty"`         // the whole environment
	TimeoutMS   int64             `json:"timeout_ms,omitempty"`  // wall-time limit
	Memory      uint64            `json:"memory,omitempty"`      // linear memory limit, bytes
	Stdout      uint64            `json:"stdout,omitempty"`      // stdout limit, bytes
	Stderr      uint64            `json:"stderr,omitempty"`      // stderr limit, bytes
	Outputs     uint64            `json:"outputs,omitempty"`     // /outputs limit, bytes
	Replicas    int               `json:"replicas,omitempty"`    // default 1
	Quorum      int               `json:"quorum,omitempty"`      // default 1
	Constraints map[string]string `json:"constraints,omitempty"` // worker labels
}

// JobResult is one worker's signed result, as the API shows it.
type JobResult struct {
	Worker     string  `json:"worker"` // peer ID
	Result     string  `json:"result"` // CID of the signed result record
	ExitCode   int64   `json:"exit_code"`
	Failure    string  `json:"failure,omitempty"`
	Reason     string  `json:"reason,omitempty"`
	Stdout     string  `json:"stdout"`  // CID
	Stderr     string  `json:"stderr"`  // CID
	Outputs    string  `json:"outputs"` // CID
	WallMS     float64 `json:"wall_ms"`
	PeakMemory uint64  `json:"peak_memory"`
}

// JobInfo is the answer of GET /v1/jobs/{id} and POST /v1/jobs.
type JobInfo struct {
	Job         string      `json:"job"`   // job ID (envelope CID)
	State       string      `json:"state"` // see jobs.State
	Computation string      `json:"computation"`
	Module      string      `json:"module"`
	Args        []string    `json:"args"`
	Submitter   string      `json:"submitter"`
	Created     string      `json:"created"` // RFC 3339
	Updated     string      `json:"updated"` // RFC 3339
	Blocker     string      `json:"blocker,omitempty"`
	ExitCode    *int64      `json:"exit_code"` // nil until a result is in
	Failure     string      `json:"failure,omitempty"`
	Reason      string      `json:"reason,omitempty"`
	Stdout      string      `json:"stdout,omitempty"`  // CID
	Stderr      string      `json:"stderr,omitempty"`  // CID
	Outputs     string      `json:"outputs,omitempty"` // CID
	Results     []JobResult `json:"results"`
	Verdict     string      `json:"verdict,omitempty"`     // verified, mismatch or failed (jobs run across the network)
	Disagreeing []string    `json:"disagreeing,omitempty"` // workers whose result lost the vote
	// Where the submitter recorded the job in its ledger (jobs run across
	// the network): sequence numbers of its job.submitted and job.verdict
	// entries, and what could not be recorded.
	LedgerSubmitted *uint64 `json:"ledger_submitted,omitempty"`
	LedgerVerdict   *uint64 `json:"ledger_verdict,omitempty"`
	LedgerError     string  `json:"ledger_error,omitempty"`
	Version         int64   `json:"version"` // grows with every change; see WaitJob
}

// Terminal reports whether j's state is final.
func (j JobInfo) Terminal() bool {
	return j.State == "done" || j.State == "failed" || j.State == "cancelled"
}

// SubmitJob asks the daemon to run a job and returns it as queued.
func (c *Client) SubmitJob(ctx context.Context, req JobRequest) (JobInfo, error) {
	var v JobInfo
	err := c.Do(ctx, "POST", "/v1/jobs", req, &v)
	return v, err
}

// SubmitJobWait submits a job and returns it once it has ended, or as it
// is when wait passes first (the daemon bounds a wait to a minute): one
// request instead of SubmitJob and WaitJobEnd.
func (c *Client) SubmitJobWait(ctx context.Context, req JobRequest, wait time.Duration) (JobInfo, error) {
	var v JobInfo
	err := c.Do(ctx, "POST", "/v1/jobs?"+url.Values{"wait": {wait.String()}}.Encode(), req, &v)
	return v, err
}

// MaxBatchJobs is the most jobs one POST /v1/jobs/batch may carry.
const MaxBatchJobs = 1000

// BatchRequest is the body of POST /v1/jobs/batch.
type BatchRequest struct {
	Jobs []JobRequest `json:"jobs"`
}

// BatchInfo is the answer of POST /v1/jobs/batch: the jobs in the order
// they were asked for.
type BatchInfo struct {
	Jobs []JobInfo `json:"jobs"`
}

// SubmitJobs submits reqs (at most MaxBatchJobs) in one request and
// returns them in the same order once every one has ended, or as they are
// when wait passes first (0: at once; the daemon bounds a wait to a
// minute). The daemon checks every job before it starts any: when one is
// bad, the error names it and none was submitted.
func (c *Client) SubmitJobs(ctx context.Context, reqs []JobRequest, wait time.Duration) ([]JobInfo, error) {
	var v BatchInfo
	err := c.Do(ctx, "POST", "/v1/jobs/batch?"+url.Values{"wait": {wait.String()}}.Encode(), BatchRequest{Jobs: reqs}, &v)
	if err != nil {
		return nil, err
	}
	if len(v.Jobs) != len(reqs) {
		return nil, fmt.Errorf("the node answered %d jobs for a batch of %d", len(v.Jobs), len(reqs))
	}
	return v.Jobs, nil
}

// Job returns the job's current state.
func (c *Client) Job(ctx context.Context, id string) (JobInfo, error) {
	var v JobInfo
	err := c.Do(ctx, "GET", "/v1/jobs/"+url.PathEscape(id), nil, &v)
	return v, err
}

// WaitJob returns the job once its version is past after or it is
// terminal, or after wait (at most 60 s) with its state unchanged.
func (c *Client) WaitJob(ctx context.Context, id string, after int64, wait time.Duration) (JobInfo, error) {
	var v JobInfo
	q := url.Values{"after": {fmt.Sprint(after)}, "wait": {wait.String()}}
	err := c.Do(ctx, "GET", "/v1/jobs/"+url.PathEscape(id)+"?"+q.Encode(), nil, &v)
	return v, err
}

// WaitJobEnd returns the job once it has ended, or as it is when wait
// passes first (the daemon bounds a wait to a minute).
func (c *Client) WaitJobEnd(ctx context.Context, id string, wait time.Duration) (JobInfo, error) {
	var v JobInfo
	q := url.Values{"after": {"0"}, "wait": {wait.String()}, "until": {"end"}}
	err := c.Do(ctx, "GET", "/v1/jobs/"+url.PathEscape(id)+"?"+q.Encode(), nil, &v)
	return v, err
}

// Jobs lists the jobs the daemon knows, newest first.
func (c *Client) Jobs(ctx context.Context) ([]JobInfo, error) {
	return c.JobsNewest(ctx, 0)
}

// JobsNewest lists the newest limit jobs the node knows, newest first
// (every job when limit is 0).
func (c *Client) JobsNewest(ctx context.Context, limit int) ([]JobInfo, error) {
	path := "/v1/jobs"
	if limit > 0 {
		path += "?limit=" + strconv.Itoa(limit)
	}
	var v []JobInfo
	err := c.Do(ctx, "GET", path, nil, &v)
	return v, err
}

// CancelJob stops a job that has not finished.
func (c *Client) CancelJob(ctx context.Context, id string) (JobInfo, error) {
	var v JobInfo
	err := c.Do(ctx, "POST", "/v1/jobs/"+url.PathEscape(id)+"/cancel", nil, &v)
	return v, err
}

// JobLog streams the job's "stdout" or "stderr". The caller must close it.
func (c *Client) JobLog(ctx context.Context, id, stream string) (io.ReadCloser, error) {
	resp, err := c.Stream(ctx, "GET", "/v1/jobs/"+url.PathEscape(id)+"/logs?stream="+url.QueryEscape(stream), nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// JobOutputs streams the job's /outputs directory as a tar archive. The
// caller must close it.
func (c *Client) JobOutputs(ctx context.Context, id string) (io.ReadCloser, error) {
	resp, err := c.Stream(ctx, "GET", "/v1/jobs/"+url.PathEscape(id)+"/outputs", nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// UploadJobPayload stores r on the daemon for use as a job's module or
// input and returns its CID: a file, or, with isTar set, a tar stream of a
// directory (files and directories only).
func (c *Client) UploadJobPayload(ctx context.Context, r io.Reader, isTar bool) (string, error) {
	ct := "application/octet-stream"
	if isTar {
		ct = "application/x-tar"
	}
	resp, err := c.Stream(ctx, "POST", "/v1/jobs/payloads", r, ct)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var v struct {
		CID string `json:"cid"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&v); err != nil {
		return "", fmt.Errorf("decode answer of POST /v1/jobs/payloads: %w", err)
	}
	return v.CID, nil
}
