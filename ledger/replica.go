package ledger

import (
	"context"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// A Replica is a verified copy of another node's log, kept in an entry file
// of the same format as a node's own (header, then checksummed frames).
// Entries are stored only after a Verifier has checked them, chained to the
// entries already held, so a replica always is a prefix of one history
// signed by its author. It is safe for concurrent use.
type Replica struct {
	path   string
	origin Origin

	mu      sync.Mutex
	f       *os.File  // guarded by mu
	v       *Verifier // guarded by mu; state over every stored entry
	offsets []int64   // guarded by mu; frame offset of each entry
	end     int64     // guarded by mu; offset past the last frame
}

// OpenReplica opens (creating it if needed) the replica of origin's log in
// the file at path. Stored entries are re-checked (checksums, decoding,
// seq and prev links; not signatures, which were checked before storing).
func OpenReplica(ctx context.Context, path string, origin Origin) (*Replica, error) {
	v, err := NewVerifier(origin)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ledger: open replica %s: %w", path, err)
	}
	r := &Replica{path: path, origin: origin, f: f, v: v}
	var batch [][]byte
	end, err := openEntryFile(ctx, f, path, []byte(fileMagic+string(origin)+"\n"), func(seq uint64, off int64, data []byte) error {
		r.offsets = append(r.offsets, off)
		batch = append(batch, data)
		if len(batch) == 4096 {
			err := v.add(ctx, batch, false)
			batch = batch[:0]
			return err
		}
		return nil
	})
	if err == nil {
		err = v.add(ctx, batch, false)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ledger: replica %s: %w", path, err)
	}
	r.end = end
	return r, nil
}

// Origin returns the origin of the replicated log.
func (r *Replica) Origin() Origin { return r.origin }

// Size returns the number of entries held.
func (r *Replica) Size() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.v.Size()
}

// Entry returns the canonical bytes of held entry seq.
func (r *Replica) Entry(seq uint64) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.entryLocked(seq)
}

func (r *Replica) entryLocked(seq uint64) ([]byte, error) {
	held := uint64(len(r.offsets))
	if seq >= held {
		return nil, fmt.Errorf("%w: entry %d of the replica of %s (holds %d)", ErrNotFound, seq, r.origin, held)
	}
	end := r.end
	if seq+1 < held {
		end = r.offsets[seq+1]
	}
	datas, err := readFrames(r.f, r.path, seq, r.offsets[seq:seq+1], end)
	if err != nil {
		return nil, err
	}
	return datas[0], nil
}

// Scan calls fn with each held entry from seq from on, in order, until fn
// returns false, and returns the seq after the last entry passed. The
// entries were verified when stored, so Scan does not check their
// signatures again.
func (r *Replica) Scan(from uint64, fn func(e *Entry) bool) (uint64, error) {
	const chunk = 256 // entries read at once
	for seq := from; ; {
		r.mu.Lock()
		held := uint64(len(r.offsets))
		if seq >= held {
			r.mu.Unlock()
			return seq, nil
		}
		to := min(held, seq+chunk)
		end := r.end
		if to < held {
			end = r.offsets[to]
		}
		datas, err := readFrames(r.f, r.path, seq, r.offsets[seq:to], end)
		r.mu.Unlock()
		if err != nil {
			return seq, err
		}
		for _, data := range datas {
			e, err := decodeEntryKnown(data, nil)
			if err != nil {
				return seq, fmt.Errorf("ledger: replica %s entry %d: %w", r.path, seq, err)
			}
			seq++
			if !fn(e) {
				return seq, nil
			}
		}
	}
}

// Sync fetches the entries of src beyond those held, up to cp.Size, verifies
// them chained to the held ones, checks the tree against cp (a checkpoint
// of src's origin, its signature already verified) and stores them
// durably. The checkpoint's signature vouches for the entries, so their
// own signatures are not checked one by one: one signature check per
// sync instead of one per entry.
func (r *Replica) Sync(ctx context.Context, src Source, cp *Checkpoint) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cp.Origin != r.origin || src.Origin() != r.origin {
		return fmt.Errorf("ledger: replica of %s offered %s", r.origin, cp.Origin)
	}
	// A failed sync leaves the replica as it was.
	v := r.v
	m := v.mark()
	ok := false
	defer func() {
		if !ok {
			v.rollback(m)
		}
	}()
	var fetched [][]byte
	for v.Size() < cp.Size {
		es, err := src.Entries(ctx, v.Size(), int(min(cp.Size-v.Size(), MaxEntriesPerResponse)))
		if err != nil {
			return fmt.Errorf("ledger: replicate %s from %d: %w", r.origin, v.Size(), err)
		}
		if uint64(len(es)) > cp.Size-v.Size() {
			es = es[:cp.Size-v.Size()]
		}
		// Each entry's own signature is not checked here: cp, signed by
		// the same key, commits to every entry up to cp.Size through its
		// root, which Finish checks below. Auditors (Fetch, Audit) still
		// check every signature.
		if err := v.add(ctx, es, false); err != nil {
			return fmt.Errorf("ledger: replicate %s: %w", r.origin, err)
		}
		fetched = append(fetched, es...)
	}
	if _, err := v.Finish(cp); err != nil {
		return fmt.Errorf("ledger: replicate %s: %w", r.origin, err)
	}
	if len(fetched) == 0 {
		ok = true
		return nil
	}
	size := 0
	for _, e := range fetched {
		size += frameHeaderSize + len(e)
	}
	buf := make([]byte, 0, size)
	offs := make([]int64, 0, len(fetched))
	off := r.end
	for _, e := range fetched {
		offs = append(offs, off)
		before := len(buf)
		buf = appendFrame(buf, e)
		off += int64(len(buf) - before)
	}
	if _, err := r.f.WriteAt(buf, r.end); err != nil {
		return fmt.Errorf("ledger: write replica %s: %w", r.path, err)
	}
	if err := unix.Fdatasync(int(r.f.Fd())); err != nil {
		return fmt.Errorf("ledger: sync replica %s: %w", r.path, err)
	}
	ok = true
	r.offsets = append(r.offsets, offs...)
	r.end = off
	return nil
}

// FirstConflict compares entries (the verified canonical bytes of entries
// from, from+1, ... of the same origin) with the held ones and returns the
// first pair that differs at one seq, as entry-fork evidence, or nil.
func (r *Replica) FirstConflict(from uint64, entries [][]byte) (*Evidence, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, e := range entries {
		seq := from + uint64(i)
		if seq >= uint64(len(r.offsets)) {
			return nil, nil
		}
		held, err := r.entryLocked(seq)
		if err != nil {
			return nil, err
		}
		if string(held) != string(e) {
			return NewEntryFork(held, e)
		}
	}
	return nil, nil
}

// Close closes the replica's file.
func (r *Replica) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Close()
}
