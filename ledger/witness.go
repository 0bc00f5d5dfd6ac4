package ledger

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ErrUnproven is returned (wrapped) by Witness.Observe when a peer cannot
// prove that a new checkpoint extends the one the witness holds, yet the
// witness could not build evidence either (for example the peer stopped
// answering, or its log shrank). The checkpoint is not accepted.
var ErrUnproven = errors.New("ledger: checkpoint not proven consistent")

// A Witness keeps, per peer, the newest checkpoint of that peer's log it
// has verified, and accepts a newer one only with a valid consistency
// proof. When a peer's checkpoints conflict it builds Evidence and keeps
// it. It replicates the logs of the peers it witnesses, so that a peer
// that rewrites its history is convicted by two of its own entries. State
// lives in a directory (checkpoints/<peer ID>, evidence/<CID>,
// replicas/<peer ID>).
// A Witness is safe for concurrent use.
type Witness struct {
	dir     string
	network string

	mu       sync.Mutex
	latest   map[peer.ID]*Checkpoint // guarded by mu
	evidence map[cid.Cid]*Evidence   // guarded by mu
	replicas map[peer.ID]*Replica    // guarded by mu; opened on first use
	hook     func(*Evidence)         // guarded by mu; see OnEvidence
}

// OnEvidence sets fn to be called once for each piece of evidence the
// witness stores for the first time, whichever call found or received it
// (Observe, Audit, AddEvidence). fn runs synchronously in that call, after
// the evidence is durable, without the witness's lock held; it is where the
// caller records, gossips and acts on the evidence.
func (w *Witness) OnEvidence(fn func(*Evidence)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.hook = fn
}

// OpenWitness opens (creating it if needed) the witness state in dir for
// network. Stored checkpoints and evidence are re-verified on load; a file
// that does not verify is an error naming it.
func OpenWitness(dir, network string) (*Witness, error) {
	w := &Witness{dir: dir, network: network, latest: map[peer.ID]*Checkpoint{}, evidence: map[cid.Cid]*Evidence{}, replicas: map[peer.ID]*Replica{}}
	for _, sub := range []string{"checkpoints", "evidence", "replicas"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("ledger: create witness dir: %w", err)
		}
	}
	cps, err := os.ReadDir(filepath.Join(dir, "checkpoints"))
	if err != nil {
		return nil, fmt.Errorf("ledger: read witness dir: %w", err)
	}
	for _, de := range cps {
		if filepath.Ext(de.Name()) == ".tmp" {
			continue
		}
		path := filepath.Join(dir, "checkpoints", de.Name())
		id, err := peer.Decode(de.Name())
		if err != nil {
			return nil, fmt.Errorf("ledger: witness file %s is not named by a peer ID: %w", path, err)
		}
		data, err := readBounded(path, MaxCheckpointSize)
		if err != nil {
			return nil, err
		}
		cp, err := ParseCheckpoint(data, OriginOf(network, id))
		if err != nil {
			return nil, fmt.Errorf("ledger: witness file %s: %w (remove it to forget this peer)", path, err)
		}
		w.latest[id] = cp
	}
	evs, err := os.ReadDir(filepath.Join(dir, "evidence"))
	if err != nil {
		return nil, fmt.Errorf("ledger: read witness dir: %w", err)
	}
	for _, de := range evs {
		if filepath.Ext(de.Name()) == ".tmp" {
			continue
		}
		path := filepath.Join(dir, "evidence", de.Name())
		data, err := readBounded(path, MaxEvidenceSize)
		if err != nil {
			return nil, err
		}
		ev, err := DecodeEvidence(data)
		if err != nil {
			return nil, fmt.Errorf("ledger: evidence file %s: %w", path, err)
		}
		w.evidence[ev.CID()] = ev
	}
	return w, nil
}

func readBounded(path string, max int) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("ledger: stat %s: %w", path, err)
	}
	if st.Size() > int64(max) {
		return nil, fmt.Errorf("ledger: %s is %d bytes, more than %d", path, st.Size(), max)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ledger: read %s: %w", path, err)
	}
	return data, nil
}

// replaceFile writes data to path via a temporary file and a rename: a
// reader sees the old or the new content, never a mix. With durable set
// the file and the directory are synced, so the new content survives a
// crash; without, a crash may bring the old one back.
func replaceFile(path string, data []byte, durable bool) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("ledger: create %s: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("ledger: write %s: %w", tmp, err)
	}
	if durable {
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("ledger: sync %s: %w", tmp, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("ledger: close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("ledger: rename %s: %w", tmp, err)
	}
	if !durable {
		return nil
	}
	return syncDir(filepath.Dir(path))
}

// Latest returns the newest verified checkpoint of p's log, or nil.
func (w *Witness) Latest(p peer.ID) *Checkpoint {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.latest[p]
}

// Peers returns the peers the witness holds a checkpoint of, sorted.
func (w *Witness) Peers() []peer.ID {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]peer.ID, 0, len(w.latest))
	for id := range w.latest {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Evidence returns every piece of evidence the witness holds, sorted by CID.
func (w *Witness) Evidence() []*Evidence {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*Evidence, 0, len(w.evidence))
	for _, ev := range w.evidence {
		out = append(out, ev)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CID().KeyString() < out[j].CID().KeyString() })
	return out
}

// Convicted reports whether the witness holds evidence against p.
func (w *Witness) Convicted(p peer.ID) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ev := range w.evidence {
		if ev.Offender() == p {
			return true
		}
	}
	return false
}

// AddEvidence stores verified evidence (for example received by gossip).
// It reports whether the evidence is new.
func (w *Witness) AddEvidence(ev *Evidence) (bool, error) {
	c := ev.CID()
	w.mu.Lock()
	if _, ok := w.evidence[c]; ok {
		w.mu.Unlock()
		return false, nil
	}
	if err := replaceFile(filepath.Join(w.dir, "evidence", c.String()), ev.Encoded(), true); err != nil {
		w.mu.Unlock()
		return false, err
	}
	w.evidence[c] = ev
	hook := w.hook
	w.mu.Unlock()
	if hook != nil {
		hook(ev)
	}
	return true, nil
}

// setLatest holds cp as id's newest checkpoint and stores it. The file of
// a replicated peer is replaced atomically but not synced: after a crash
// the witness may hold an older checkpoint of it, but the replica's
// entries, synced on their own, still convict a newer checkpoint that
// contradicts them. A watched peer's checkpoint is all the witness has of
// it, so that one is synced.
func (w *Witness) setLatest(id peer.ID, cp *Checkpoint, replicated bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if old := w.latest[id]; old != nil && old.Size >= cp.Size {
		return nil
	}
	if err := replaceFile(filepath.Join(w.dir, "checkpoints", id.String()), cp.Note, !replicated); err != nil {
		return err
	}
	w.latest[id] = cp
	return nil
}

// Observe considers checkpoint cp (already verified by ParseCheckpoint) of
// the log that src serves. The first checkpoint of a peer is accepted as is
// (call Audit to check the whole log first). A newer one is accepted only
// if src proves it consistent with the one held. On a conflict Observe
// builds, stores and returns Evidence (with a nil error); if the conflict
// cannot be proven it returns an error wrapping ErrUnproven.
func (w *Witness) Observe(ctx context.Context, cp *Checkpoint, src Source) (*Evidence, error) {
	return w.observe(ctx, cp, src, true)
}

// Watch is Observe without replication: a newer checkpoint is held once
// src proves it consistent with the one held, but no entries are fetched.
// It is how a node keeps watch on the logs of peers it does not work
// with: it still catches a peer whose checkpoints contradict each other,
// at the cost of one signature and one proof per checkpoint instead of
// one signature per entry. A later Observe of the same peer replicates
// its log from the start.
func (w *Witness) Watch(ctx context.Context, cp *Checkpoint, src Source) (*Evidence, error) {
	return w.observe(ctx, cp, src, false)
}

func (w *Witness) observe(ctx context.Context, cp *Checkpoint, src Source, replicate bool) (*Evidence, error) {
	if cp.Origin != src.Origin() {
		return nil, fmt.Errorf("ledger: witness: checkpoint of %s offered with a source for %s", cp.Origin, src.Origin())
	}
	network, id, err := cp.Origin.Parse()
	if err != nil {
		return nil, err
	}
	if network != w.network {
		return nil, fmt.Errorf("ledger: witness: checkpoint of network %q, want %q", network, w.network)
	}
	hold := func() (*Evidence, error) {
		if replicate {
			return w.accept(ctx, id, cp, src)
		}
		return nil, w.setLatest(id, cp, false)
	}
	old := w.Latest(id)
	if old == nil {
		return hold()
	}
	if cp.Size == old.Size {
		if cp.Hash == old.Hash {
			if replicate {
				// Held from a Watch: the entries may not be here yet.
				if r, err := w.replica(ctx, id); err != nil {
					return nil, err
				} else if r.Size() < cp.Size {
					return w.accept(ctx, id, cp, src)
				}
			}
			return nil, nil
		}
		ev, err := NewCheckpointFork(old.Note, cp.Note)
		if err != nil {
			return nil, err
		}
		_, err = w.AddEvidence(ev)
		return ev, err
	}
	small, large := old, cp
	if cp.Size < old.Size {
		small, large = cp, old
	}
	if small.Size > 0 {
		proof, err := src.ProveTree(ctx, small.Size, large.Size)
		if err == nil && CheckConsistency(proof, large.Size, large.Hash, small.Size, small.Hash) == nil {
			if large == cp {
				return hold()
			}
			return nil, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	} else if large == cp {
		return hold()
	} else {
		return nil, nil
	}
	// The peer could not prove consistency: fetch its whole log and convict
	// it with its own signatures.
	return w.audit(ctx, src, small, large)
}

// Audit fetches and verifies the whole log that src serves and checks it
// against the replica and the checkpoint held for its peer (if any). It
// returns the verification report, or (with a nil report) evidence if the
// log conflicts with what the witness holds. A log that verifies and conflicts with nothing
// is accepted (its checkpoint held, its entries replicated).
func (w *Witness) Audit(ctx context.Context, src Source) (*Report, *Evidence, error) {
	_, id, err := src.Origin().Parse()
	if err != nil {
		return nil, nil, err
	}
	cur, v, ev, err := w.fetchCompare(ctx, id, src)
	if ev != nil || err != nil {
		return nil, ev, err
	}
	rep, _ := v.Finish(cur)
	if old := w.Latest(id); old != nil {
		ev, err := w.convict(cur, v, old)
		if err != nil || ev != nil {
			return rep, ev, err
		}
	}
	if err := w.setLatest(id, cur, true); err != nil {
		return rep, nil, err
	}
	if r, err := w.replica(ctx, id); err != nil {
		return rep, nil, err
	} else if err := r.Sync(ctx, src, cur); err != nil {
		return rep, nil, err
	}
	return rep, nil, nil
}

// accept holds cp as the newest checkpoint of id and replicates src's
// entries up to it.
func (w *Witness) accept(ctx context.Context, id peer.ID, cp *Checkpoint, src Source) (*Evidence, error) {
	r, err := w.replica(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := r.Sync(ctx, src, cp); err != nil {
		// The peer serves entries that do not match its own checkpoint:
		// do not accept the checkpoint; look for a provable conflict.
		return w.audit(ctx, src, cp)
	}
	return nil, w.setLatest(id, cp, true)
}

// replica returns the replica of id's log, opening it on first use.
func (w *Witness) replica(ctx context.Context, id peer.ID) (*Replica, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if r := w.replicas[id]; r != nil {
		return r, nil
	}
	r, err := OpenReplica(ctx, filepath.Join(w.dir, "replicas", id.String()), OriginOf(w.network, id))
	if err != nil {
		return nil, err
	}
	w.replicas[id] = r
	return r, nil
}

// Replica returns the replica of p's log, opening it on first use.
func (w *Witness) Replica(ctx context.Context, p peer.ID) (*Replica, error) { return w.replica(ctx, p) }

// Close closes the replicas.
func (w *Witness) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for id, r := range w.replicas {
		if err := r.Close(); err != nil {
			errs = append(errs, err)
		}
		delete(w.replicas, id)
	}
	return errors.Join(errs...)
}

// errConflict stops a fetch once a conflicting entry is found.
var errConflict = errors.New("conflict found")

// fetchCompare fetches and verifies src's whole log, comparing each entry
// with the replica of id. On a conflict it stores and returns entry-fork
// evidence.
func (w *Witness) fetchCompare(ctx context.Context, id peer.ID, src Source) (*Checkpoint, *Verifier, *Evidence, error) {
	r, err := w.replica(ctx, id)
	if err != nil {
		return nil, nil, nil, err
	}
	var found *Evidence
	var seq uint64
	cur, v, err := Fetch(ctx, src, func(e []byte) error {
		ev, err := r.FirstConflict(seq, [][]byte{e})
		if err != nil {
			return err
		}
		seq++
		if ev != nil {
			found = ev
			return errConflict
		}
		return nil
	})
	if found != nil {
		if _, err := w.AddEvidence(found); err != nil {
			return nil, nil, nil, err
		}
		return nil, nil, found, nil
	}
	return cur, v, nil, err
}

func (w *Witness) audit(ctx context.Context, src Source, known ...*Checkpoint) (*Evidence, error) {
	_, id, err := src.Origin().Parse()
	if err != nil {
		return nil, err
	}
	cur, v, ev, err := w.fetchCompare(ctx, id, src)
	if ev != nil {
		return ev, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUnproven, src.Origin(), err)
	}
	for _, k := range known {
		ev, err := w.convict(cur, v, k)
		if err != nil || ev != nil {
			return ev, err
		}
	}
	return nil, fmt.Errorf("%w: %s: the served log (size %d) agrees with every checkpoint held, yet no consistency proof was given", ErrUnproven, src.Origin(), cur.Size)
}

// convict checks checkpoint k against the verified log v whose newest
// checkpoint is cur, and returns stored evidence if they conflict.
func (w *Witness) convict(cur *Checkpoint, v *Verifier, k *Checkpoint) (*Evidence, error) {
	if k.Size > cur.Size {
		return nil, nil
	}
	h, err := v.TreeHash(k.Size)
	if err != nil {
		return nil, err
	}
	if h == k.Hash {
		return nil, nil
	}
	var ev *Evidence
	if k.Size == cur.Size {
		ev, err = NewCheckpointFork(k.Note, cur.Note)
	} else {
		proof, perr := v.ProveTree(k.Size, cur.Size)
		if perr != nil {
			return nil, perr
		}
		ev, err = NewInconsistentCheckpoints(k.Note, cur.Note, h, proof)
	}
	if err != nil {
		return nil, err
	}
	if _, err := w.AddEvidence(ev); err != nil {
		return nil, err
	}
	return ev, nil
}
