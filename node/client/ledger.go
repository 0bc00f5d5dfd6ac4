package client

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"
)

// LedgerCheckpoint is a signed checkpoint of a node's ledger.
type LedgerCheckpoint struct {
	Origin string `json:"origin"` // shoal/<network>/<peer ID>
	Size   uint64 `json:"size"`   // number of entries covered
	Root   string `json:"root"`   // base64 RFC 6962 tree hash
	Note   string `json:"note"`   // the signed note (C2SP tlog-checkpoint form)
}

// LedgerEntry is one ledger entry, as shown by GET /v1/ledger/entries.
type LedgerEntry struct {
	Seq  uint64 `json:"seq"`
	CID  string `json:"cid"`
	Prev string `json:"prev,omitempty"` // CID of entry seq-1; empty for seq 0
	Time string `json:"time"`           // RFC 3339 with nanoseconds, UTC
	Kind string `json:"kind"`
	Body []byte `json:"body"` // base64 in JSON
}

// LedgerReport is the answer of GET /v1/ledger/verify: either OK with the
// sizes verified, or the first bad sequence number and why.
type LedgerReport struct {
	OK             bool   `json:"ok"`
	Origin         string `json:"origin"`
	Entries        uint64 `json:"entries"`
	CheckpointSize uint64 `json:"checkpoint_size"`
	Root           string `json:"root,omitempty"`
	BadSeq         *int64 `json:"bad_seq,omitempty"` // first bad entry; absent when the fault is not in an entry
	Reason         string `json:"reason,omitempty"`
	EvidenceCID    string `json:"evidence_cid,omitempty"` // set when the log conflicts with a checkpoint held
}

// LedgerProof is an inclusion proof of one entry in a signed checkpoint,
// already checked by the daemon.
type LedgerProof struct {
	Origin     string   `json:"origin"`
	Seq        uint64   `json:"seq"`
	EntryCID   string   `json:"entry_cid"`
	Kind       string   `json:"kind"`
	TreeSize   uint64   `json:"tree_size"`
	Root       string   `json:"root"`
	Proof      []string `json:"proof"` // base64 hashes, tlog.RecordProof order
	Checkpoint string   `json:"checkpoint"`
	Verified   bool     `json:"verified"`
}

// LedgerEvidence is one piece of fork evidence a node holds.
type LedgerEvidence struct {
	CID      string `json:"cid"`
	Kind     string `json:"kind"`
	Origin   string `json:"origin"`
	Offender string `json:"offender"`
	Encoded  []byte `json:"encoded"` // the evidence bytes, verifiable offline; base64 in JSON
}

func ledgerQuery(path, peer string, kv ...string) string {
	q := url.Values{}
	if peer != "" {
		q.Set("peer", peer)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// LedgerCheckpoint returns the newest checkpoint of the daemon's own ledger
// (peer empty) or of peer's, fetched and signature-checked by the daemon.
func (c *Client) LedgerCheckpoint(ctx context.Context, peer string) (LedgerCheckpoint, error) {
	var v LedgerCheckpoint
	err := c.Do(ctx, "GET", ledgerQuery("/v1/ledger/checkpoint", peer), nil, &v)
	return v, err
}

// LedgerEntries returns up to limit entries from from of the daemon's own
// ledger (peer empty) or of peer's (each entry signature-checked).
func (c *Client) LedgerEntries(ctx context.Context, peer string, from uint64, limit int) ([]LedgerEntry, error) {
	var v []LedgerEntry
	err := c.Do(ctx, "GET", ledgerQuery("/v1/ledger/entries", peer, "from", strconv.FormatUint(from, 10), "limit", strconv.Itoa(limit)), nil, &v)
	return v, err
}

// LedgerExport streams an export file of the daemon's own ledger (peer
// empty) or of peer's. The caller must close the reader.
func (c *Client) LedgerExport(ctx context.Context, peer string) (io.ReadCloser, error) {
	resp, err := c.Stream(ctx, "GET", ledgerQuery("/v1/ledger/export", peer), nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// LedgerVerify has the daemon fetch and verify a whole ledger: its own
// (peer empty) or peer's. A log that fails verification is not an error:
// the report says where and why.
func (c *Client) LedgerVerify(ctx context.Context, peer string) (LedgerReport, error) {
	var v LedgerReport
	err := c.Do(ctx, "GET", ledgerQuery("/v1/ledger/verify", peer), nil, &v)
	return v, err
}

// LedgerProof returns the inclusion proof of entry seq in the newest
// checkpoint of the daemon's own ledger (peer empty) or of peer's.
func (c *Client) LedgerProof(ctx context.Context, peer string, seq uint64) (LedgerProof, error) {
	var v LedgerProof
	err := c.Do(ctx, "GET", ledgerQuery("/v1/ledger/proof", peer, "seq", strconv.FormatUint(seq, 10)), nil, &v)
	return v, err
}

// LedgerEvidence returns the fork evidence the daemon holds.
func (c *Client) LedgerEvidence(ctx context.Context) ([]LedgerEvidence, error) {
	var v []LedgerEvidence
	err := c.Do(ctx, "GET", "/v1/ledger/evidence", nil, &v)
	return v, err
}

// String returns "seq kind cid".
func (e LedgerEntry) String() string { return fmt.Sprintf("%d %s %s", e.Seq, e.Kind, e.CID) }
