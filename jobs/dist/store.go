package dist

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoalnet/shoal/jobs"
	"github.com/shoalnet/shoal/jobs/quorum"
)

// recordVersion is the version of the stored job record; a new
// incompatible layout gets a new number.
const recordVersion = 1

// maxRecordSize bounds a stored job record (a spec plus up to
// jobs.MaxReplicas + retries signed results, base64 in JSON).
const maxRecordSize = 4 << 20

// A record is the persisted state of one submitted job. It is stored as
// JSON under /job/<job CID>; specs and results are their signed canonical
// encodings, checked again when read.
type record struct {
	Version     int
	Spec        *jobs.SignedSpec
	State       jobs.State
	Verdict     quorum.Kind
	Reason      string
	Results     []*jobs.SignedResult // every signed result received, in arrival order
	Disagreeing []peer.ID
	Attempts    int
	// Replicas holds each replica's last status (worker, attempts, last
	// error), stored at the job's end so that it is read back whole.
	Replicas []ReplicaStatus
	Created  time.Time
	Updated  time.Time
	Deadline time.Time
	// Ledger sequence numbers of the job's job.submitted and job.verdict
	// entries in this node's ledger, and any failure to record them.
	LedgerSubmitted *uint64
	LedgerVerdict   *uint64
	LedgerError     string
}

type recordJSON struct {
	Version     int             `json:"version"`
	Spec        []byte          `json:"spec"`
	State       jobs.State      `json:"state"`
	Verdict     quorum.Kind     `json:"verdict,omitempty"`
	Reason      string          `json:"reason,omitempty"`
	Results     [][]byte        `json:"results,omitempty"`
	Disagreeing []peer.ID       `json:"disagreeing,omitempty"`
	Attempts    int             `json:"attempts"`
	Replicas    []ReplicaStatus `json:"replicas,omitempty"`
	Created     time.Time       `json:"created"`
	Updated     time.Time       `json:"updated"`
	Deadline    time.Time       `json:"deadline"`

	LedgerSubmitted *uint64 `json:"ledger_submitted,omitempty"`
	LedgerVerdict   *uint64 `json:"ledger_verdict,omitempty"`
	LedgerError     string  `json:"ledger_error,omitempty"`
}

func encodeRecord(r *record) ([]byte, error) {
	spec, err := r.Spec.Encode()
	if err != nil {
		return nil, err
	}
	w := recordJSON{Version: r.Version, Spec: spec, State: r.State, Verdict: r.Verdict, Reason: r.Reason,
		Disagreeing: r.Disagreeing, Attempts: r.Attempts, Replicas: r.Replicas, Created: r.Created, Updated: r.Updated, Deadline: r.Deadline,
		LedgerSubmitted: r.LedgerSubmitted, LedgerVerdict: r.LedgerVerdict, LedgerError: r.LedgerError}
	for _, res := range r.Results {
		b, err := res.Encode()
		if err != nil {
			return nil, err
		}
		w.Results = append(w.Results, b)
	}
	return json.Marshal(w)
}

// decodeRecord decodes and checks a stored record: size, strict JSON,
// version, state and verdict names, replica statuses, the spec's and every
// result's signature, and that every result is for the record's job.
func decodeRecord(data []byte) (*record, error) {
	if len(data) > maxRecordSize {
		return nil, fmt.Errorf("dist: job record of %d bytes, over %d", len(data), maxRecordSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var w recordJSON
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("dist: job record: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("dist: job record: trailing data")
	}
	if w.Version != recordVersion {
		return nil, fmt.Errorf("dist: job record version %d, want %d", w.Version, recordVersion)
	}
	if !w.State.Valid() {
		return nil, fmt.Errorf("dist: job record: unknown state %q", w.State)
	}
	switch w.Verdict {
	case "", quorum.Verified, quorum.Mismatch, quorum.Failed:
	default:
		return nil, fmt.Errorf("dist: job record: unknown verdict %q", w.Verdict)
	}
	if w.Attempts < 0 {
		return nil, fmt.Errorf("dist: job record: attempts %d", w.Attempts)
	}
	spec, err := jobs.DecodeSignedSpec(w.Spec)
	if err != nil {
		return nil, fmt.Errorf("dist: job record: %w", err)
	}
	r := &record{Version: w.Version, Spec: spec, State: w.State, Verdict: w.Verdict, Reason: w.Reason,
		Disagreeing: w.Disagreeing, Attempts: w.Attempts, Replicas: w.Replicas, Created: w.Created, Updated: w.Updated, Deadline: w.Deadline,
		LedgerSubmitted: w.LedgerSubmitted, LedgerVerdict: w.LedgerVerdict, LedgerError: w.LedgerError}
	if n := len(w.Replicas); n != 0 && n != spec.Envelope.Replicas {
		return nil, fmt.Errorf("dist: job record %s: %d replica statuses for %d replicas", spec.ID, n, spec.Envelope.Replicas)
	}
	for i, rs := range w.Replicas {
		if rs.Replica != i || !rs.State.Valid() || rs.Attempts < 0 {
			return nil, fmt.Errorf("dist: job record %s: replica status %d (replica %d, state %q, attempts %d) is not valid", spec.ID, i, rs.Replica, rs.State, rs.Attempts)
		}
	}
	for i, b := range w.Results {
		res, err := jobs.DecodeSignedResult(b)
		if err != nil {
			return nil, fmt.Errorf("dist: job record %s: result %d: %w", spec.ID, i, err)
		}
		if res.Result.Job != spec.ID {
			return nil, fmt.Errorf("dist: job record %s: result %d is for job %s", spec.ID, i, res.Result.Job)
		}
		r.Results = append(r.Results, res)
	}
	return r, nil
}

// A store keeps job records and received announcements in a datastore.
type store struct{ ds datastore.Batching }

func jobKey(id cid.Cid) datastore.Key  { return datastore.NewKey("/job/" + id.String()) }
func seenKey(id cid.Cid) datastore.Key { return datastore.NewKey("/seen/" + id.String()) }

func (s *store) put(ctx context.Context, r *record) error {
	b, err := encodeRecord(r)
	if err != nil {
		return fmt.Errorf("dist: encode job %s: %w", r.Spec.ID, err)
	}
	if err := s.ds.Put(ctx, jobKey(r.Spec.ID), b); err != nil {
		return fmt.Errorf("dist: store job %s: %w", r.Spec.ID, err)
	}
	return nil
}

func (s *store) get(ctx context.Context, id cid.Cid) (*record, error) {
	b, err := s.ds.Get(ctx, jobKey(id))
	if err != nil {
		return nil, fmt.Errorf("dist: read job %s: %w", id, err)
	}
	return decodeRecord(b)
}

// all returns every stored job record; unreadable ones are skipped with an
// error only if nothing could be read at all.
func (s *store) all(ctx context.Context) ([]*record, error) {
	res, err := s.ds.Query(ctx, query.Query{Prefix: "/job"})
	if err != nil {
		return nil, fmt.Errorf("dist: list jobs: %w", err)
	}
	defer res.Close()
	var out []*record
	for e := range res.Next() {
		if e.Error != nil {
			return nil, fmt.Errorf("dist: list jobs: %w", e.Error)
		}
		r, err := decodeRecord(e.Value)
		if err != nil {
			// A corrupt record is skipped: it must not stop the node.
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

func (s *store) pending(ctx context.Context) ([]*record, error) {
	all, err := s.all(ctx)
	if err != nil {
		return nil, err
	}
	var out []*record
	for _, r := range all {
		if !r.State.Terminal() {
			out = append(out, r)
		}
	}
	return out, nil
}

// seenAtKey indexes a stored announcement by the time it was stored
// (written by earlier versions, which indexed each job; still pruned)
// (zero-padded unix milliseconds, so keys sort by time), for pruning.
func seenAtKey(at time.Time, id cid.Cid) datastore.Key {
	return datastore.NewKey(fmt.Sprintf("/seen-at/%015d/%s", at.UnixMilli(), id))
}

// batchRef marks a /seen/<job> value that names the stored batch holding
// the job's announcement (/seen-batch/<sha256 of the envelope>) instead
// of holding a single announcement. A signed envelope never starts so.
const batchRef = "batch/"

func seenBatchKey(hash string) datastore.Key { return datastore.NewKey("/seen-batch/" + hash) }

func seenBatchAtKey(at time.Time, hash string) datastore.Key {
	return datastore.NewKey(fmt.Sprintf("/seen-batch-at/%015d/%s", at.UnixMilli(), hash))
}

// putAnnouncedBatch stores a checked envelope of announcements (one or a
// batch) of the jobs ids once, and for each job a reference to it, in one
// write. The batch is indexed by the time it was first stored, with the
// IDs of its jobs, for pruning: a job's reference goes with the newest
// batch that announced it.
func (s *store) putAnnouncedBatch(ctx context.Context, data []byte, ids []cid.Cid) error {
	hash := hashOf(data)
	b, err := s.ds.Batch(ctx)
	if err != nil {
		return err
	}
	ref := []byte(batchRef + hash)
	for _, id := range ids {
		if err := b.Put(ctx, seenKey(id), ref); err != nil {
			return err
		}
	}
	// The same envelope heard again (after the pubsub seen-TTL) is
	// stored once, and pruned by its first time.
	stored, err := s.ds.Has(ctx, seenBatchKey(hash))
	if err != nil {
		return fmt.Errorf("dist: look up announcement batch %s: %w", hash, err)
	}
	if !stored {
		if err := b.Put(ctx, seenBatchKey(hash), data); err != nil {
			return err
		}
		if err := b.Put(ctx, seenBatchAtKey(time.Now(), hash), encodeIDs(ids)); err != nil {
			return err
		}
	}
	if err := b.Commit(ctx); err != nil {
		return fmt.Errorf("dist: store %d announcements: %w", len(ids), err)
	}
	return nil
}

// encodeIDs lists CIDs as a /seen-batch-at value: each one's bytes after
// their length as a uvarint.
func encodeIDs(ids []cid.Cid) []byte {
	var b []byte
	for _, id := range ids {
		b = binary.AppendUvarint(b, uint64(id.ByteLen()))
		b = append(b, id.Bytes()...)
	}
	return b
}

// decodeIDs reads a /seen-batch-at value; an empty one (batches stored
// before the value was kept, whose jobs have /seen-at keys) lists none.
func decodeIDs(b []byte) ([]cid.Cid, error) {
	var ids []cid.Cid
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return ids, errors.New("dist: malformed job list of a stored batch")
		}
		id, err := cid.Cast(b[k : k+int(n)])
		if err != nil {
			return ids, fmt.Errorf("dist: job list of a stored batch: %w", err)
		}
		ids = append(ids, id)
		b = b[k+int(n):]
	}
	return ids, nil
}

// loadAnnounced returns the stored envelope that holds job id's
// announcement.
func (s *store) loadAnnounced(ctx context.Context, id cid.Cid) ([]byte, error) {
	b, err := s.ds.Get(ctx, seenKey(id))
	if err != nil {
		return nil, err
	}
	if hash, ok := bytes.CutPrefix(b, []byte(batchRef)); ok {
		if b, err = s.ds.Get(ctx, seenBatchKey(string(hash))); err != nil {
			return nil, fmt.Errorf("dist: the announcement batch of job %s: %w", id, err)
		}
	}
	return b, nil
}

// maxPrunePass bounds the announcements one pruning pass deletes.
const maxPrunePass = 100_000

// pruneAnnounced deletes the announcements first stored before cutoff,
// at most maxPrunePass of them, and returns how many it deleted.
func (s *store) pruneAnnounced(ctx context.Context, cutoff time.Time) (int, error) {
	old, err := s.keysBefore(ctx, "/seen-at", seenAtKey(cutoff, cid.Undef).String())
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range old {
		// /seen-at/<ms>/<cid>
		if ns := k.Namespaces(); len(ns) == 3 {
			if id, err := cid.Decode(ns[2]); err == nil {
				if err := s.ds.Delete(ctx, seenKey(id)); err != nil && !errors.Is(err, datastore.ErrNotFound) {
					return n, fmt.Errorf("dist: prune announcement of job %s: %w", id, err)
				}
				n++
			}
		}
		if err := s.ds.Delete(ctx, k); err != nil && !errors.Is(err, datastore.ErrNotFound) {
			return n, fmt.Errorf("dist: prune announcement index %s: %w", k, err)
		}
	}
	// The batches, and the references of their jobs that still name them
	// (a job announced again names the newer batch).
	batches, err := s.keysBefore(ctx, "/seen-batch-at", seenBatchAtKey(cutoff, "").String())
	if err != nil {
		return n, err
	}
	for _, k := range batches {
		// /seen-batch-at/<ms>/<hash>
		if ns := k.Namespaces(); len(ns) == 3 {
			hash := ns[2]
			v, err := s.ds.Get(ctx, k)
			if err != nil && !errors.Is(err, datastore.ErrNotFound) {
				return n, fmt.Errorf("dist: read announcement index %s: %w", k, err)
			}
			// A damaged list yields the IDs before the damage; the batch
			// goes all the same, and references to it left behind read
			// as not found.
			ids, _ := decodeIDs(v)
			ref := []byte(batchRef + hash)
			for _, id := range ids {
				cur, err := s.ds.Get(ctx, seenKey(id))
				if err != nil || !bytes.Equal(cur, ref) {
					continue
				}
				if err := s.ds.Delete(ctx, seenKey(id)); err != nil && !errors.Is(err, datastore.ErrNotFound) {
					return n, fmt.Errorf("dist: prune announcement of job %s: %w", id, err)
				}
				n++
			}
			if err := s.ds.Delete(ctx, seenBatchKey(hash)); err != nil && !errors.Is(err, datastore.ErrNotFound) {
				return n, fmt.Errorf("dist: prune announcement batch %s: %w", hash, err)
			}
		}
		if err := s.ds.Delete(ctx, k); err != nil && !errors.Is(err, datastore.ErrNotFound) {
			return n, fmt.Errorf("dist: prune announcement index %s: %w", k, err)
		}
	}
	return n, nil
}

// keysBefore returns the keys under prefix that sort before limit, in
// order, at most maxPrunePass of them.
func (s *store) keysBefore(ctx context.Context, prefix, limit string) ([]datastore.Key, error) {
	res, err := s.ds.Query(ctx, query.Query{Prefix: prefix, KeysOnly: true, Orders: []query.Order{query.OrderByKey{}}})
	if err != nil {
		return nil, fmt.Errorf("dist: list stored announcements: %w", err)
	}
	defer res.Close()
	var out []datastore.Key
	for e := range res.Next() {
		if e.Error != nil {
			return nil, fmt.Errorf("dist: list stored announcements: %w", e.Error)
		}
		if e.Key >= limit || len(out) == maxPrunePass {
			break
		}
		out = append(out, datastore.RawKey(e.Key))
	}
	return out, nil
}

func (s *store) announced(ctx context.Context, id cid.Cid) (Status, error) {
	a, err := s.openAnnounced(ctx, id)
	if err != nil {
		return Status{}, err
	}
	return a.Status(), nil
}

// openAnnounced returns the stored announcement of job id, checked in full.
func (s *store) openAnnounced(ctx context.Context, id cid.Cid) (*Announced, error) {
	b, err := s.loadAnnounced(ctx, id)
	if err != nil {
		return nil, err
	}
	return openAnnouncementOf(b, id)
}

// hashOf names a stored batch: the hex sha256 of its envelope.
func hashOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
