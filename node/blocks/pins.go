package blocks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multicodec"
)

// A Pin keeps a whole DAG (recursively) out of garbage collection.
type Pin struct {
	CID     cid.Cid   `json:"cid"`
	Created time.Time `json:"created"`
}

// pinRecord is the stored form of a pin (the CID is the key).
type pinRecord struct {
	Created time.Time `json:"created"`
}

func pinKey(c cid.Cid) datastore.Key { return datastore.NewKey(c.String()) }

// A pinCache remembers roots lately seen pinned, so that the usual check
// of a job result that is pinned already (the same stdout, the empty
// outputs) needs no datastore lookup. Unpin removes its root; gen makes a
// lookup that raced with an Unpin leave no stale entry. Its zero value is
// empty and ready.
type pinCache struct {
	mu    sync.Mutex
	roots map[cid.Cid]struct{}
	gen   uint64 // bumped by every Unpin
}

// maxPinCache bounds a pinCache; a full one starts over.
const maxPinCache = 1024

func (p *pinCache) has(c cid.Cid) (bool, uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.roots[c]
	return ok, p.gen
}

// add remembers c unless an Unpin happened since gen was read.
func (p *pinCache) add(c cid.Cid, gen uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if gen != p.gen {
		return
	}
	if p.roots == nil || len(p.roots) >= maxPinCache {
		p.roots = make(map[cid.Cid]struct{})
	}
	p.roots[c] = struct{}{}
}

func (p *pinCache) remove(c cid.Cid) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.roots, c)
	p.gen++
}

// putPin records a pin on c; the caller holds gcMu and c's DAG is local.
func (s *Service) putPin(ctx context.Context, c cid.Cid) error {
	if has, err := s.pinDS.Has(ctx, pinKey(c)); err == nil && has {
		return nil
	}
	b, err := json.Marshal(pinRecord{Created: time.Now().UTC()})
	if err != nil {
		return err
	}
	if err := s.pinDS.Put(ctx, pinKey(c), b); err != nil {
		return fmt.Errorf("blocks: recording pin %s: %w", c, err)
	}
	if err := s.pinDS.Sync(ctx, pinKey(c)); err != nil {
		return fmt.Errorf("blocks: syncing pin %s: %w", c, err)
	}
	return nil
}

// Pin fetches the whole DAG at c if it is not local, then pins it
// recursively so that garbage collection keeps every block of it, and
// announces it. Pinning a pinned CID does nothing.
func (s *Service) Pin(ctx context.Context, c cid.Cid) error {
	if err := ValidateCID(c); err != nil {
		return err
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	if err := s.fetchLocked(ctx, c); err != nil {
		return err
	}
	if err := s.putPin(ctx, c); err != nil {
		return err
	}
	s.provide(c)
	return nil
}

// Unpin removes the pin on c; its blocks become collectable unless another
// pin reaches them. Unpinning a CID that is not pinned is an error.
func (s *Service) Unpin(ctx context.Context, c cid.Cid) error {
	if err := ValidateCID(c); err != nil {
		return err
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	has, err := s.pinDS.Has(ctx, pinKey(c))
	if err != nil {
		return fmt.Errorf("blocks: reading pin %s: %w", c, err)
	}
	if !has {
		return fmt.Errorf("blocks: unpinning %s: %w", c, ErrNotPinned)
	}
	err = s.pinDS.Delete(ctx, pinKey(c))
	// After the Delete: a lookup that read the pin before it then adds
	// nothing (the generation moved) or is removed here.
	s.pinned.remove(c)
	if err != nil {
		return fmt.Errorf("blocks: removing pin %s: %w", c, err)
	}
	return nil
}

// IsPinned reports whether c is pinned (as a root).
func (s *Service) IsPinned(ctx context.Context, c cid.Cid) (bool, error) {
	ok, gen := s.pinned.has(c)
	if ok {
		return true, nil
	}
	ok, err := s.pinDS.Has(ctx, pinKey(c))
	if err != nil {
		return false, fmt.Errorf("blocks: looking up pin %s: %w", c, err)
	}
	if ok {
		s.pinned.add(c, gen)
	}
	return ok, nil
}

// Pins lists the pinned roots.
func (s *Service) Pins(ctx context.Context) ([]Pin, error) {
	res, err := s.pinDS.Query(ctx, query.Query{})
	if err != nil {
		return nil, fmt.Errorf("blocks: listing pins: %w", err)
	}
	defer res.Close()
	var out []Pin
	for e := range res.Next() {
		if e.Error != nil {
			return nil, fmt.Errorf("blocks: listing pins: %w", e.Error)
		}
		k := datastore.RawKey(e.Key)
		c, err := cid.Decode(k.BaseNamespace())
		if err != nil {
			return nil, fmt.Errorf("blocks: pin key %q is not a CID: %w", e.Key, err)
		}
		var rec pinRecord
		if err := json.Unmarshal(e.Value, &rec); err != nil {
			return nil, fmt.Errorf("blocks: pin %s: malformed record: %w", c, err)
		}
		out = append(out, Pin{CID: c, Created: rec.Created})
	}
	return out, nil
}

// GC removes every block not reachable from a pin and returns how many
// blocks and bytes it removed. It waits for running adds and fetches to
// finish and holds new ones off while it runs. A pinned block is never
// removed; a pinned DAG with blocks missing locally keeps what it has.
func (s *Service) GC(ctx context.Context) (removed int, freed uint64, err error) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	pins, err := s.Pins(ctx)
	if err != nil {
		return 0, 0, err
	}
	keep := make(map[string]struct{})
	for _, p := range pins {
		if err := s.mark(ctx, p.CID, keep); err != nil {
			return 0, 0, fmt.Errorf("blocks: GC marking pin %s: %w", p.CID, err)
		}
	}
	keys, err := s.bs.AllKeysChan(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("blocks: GC listing blocks: %w", err)
	}
	for k := range keys {
		if _, ok := keep[string(k.Hash())]; ok {
			continue
		}
		size, err := s.bs.GetSize(ctx, k)
		if err != nil && !ipld.IsNotFound(err) {
			return removed, freed, fmt.Errorf("blocks: GC sizing %s: %w", k, err)
		}
		if err := s.bs.DeleteBlock(ctx, k); err != nil {
			return removed, freed, fmt.Errorf("blocks: GC removing %s: %w", k, err)
		}
		removed++
		freed += uint64(max(size, 0))
	}
	if err := ctx.Err(); err != nil {
		return removed, freed, fmt.Errorf("blocks: GC interrupted: %w", err)
	}
	if s.packs != nil {
		// The removed blocks' bytes are dead space in their packs until
		// the packs are compacted.
		reclaimed, err := s.packs.Compact(ctx)
		if err != nil {
			return removed, freed, fmt.Errorf("blocks: GC compacting packs: %w", err)
		}
		s.log.Debug("packs compacted", "reclaimed", reclaimed)
	}
	s.log.Info("garbage collection done", "removed", removed, "freed", freed)
	return removed, freed, nil
}

// mark adds every local block reachable from root to keep (by multihash,
// as the blockstore keys blocks).
func (s *Service) mark(ctx context.Context, root cid.Cid, keep map[string]struct{}) error {
	stack := []cid.Cid{root}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, ok := keep[string(c.Hash())]; ok || isIdentity(c) {
			continue
		}
		keep[string(c.Hash())] = struct{}{}
		if multicodec.Code(c.Prefix().Codec) != multicodec.DagPb {
			continue
		}
		blk, err := s.bs.Get(ctx, c)
		if ipld.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		links, err := linksOf(c, blk.RawData())
		if err != nil {
			return err
		}
		stack = append(stack, links...)
	}
	return nil
}

// Stat is a readout of the blockstore.
type Stat struct {
	Blocks int    `json:"blocks"` // blocks stored
	Bytes  uint64 `json:"bytes"`  // sum of block sizes
	Pins   int    `json:"pins"`   // pinned roots
	// DiskUsage is the datastore's size on disk in bytes (all of the
	// node's data, not only blocks) plus the bytes of the pack files,
	// or 0 if the datastore cannot tell.
	DiskUsage uint64 `json:"disk_usage"`
	// SizeCap is the configured cap above which garbage collection runs
	// automatically, 0 for none.
	SizeCap uint64 `json:"size_cap"`
}

// Stat counts the stored blocks and their bytes, and the pins.
func (s *Service) Stat(ctx context.Context) (Stat, error) {
	res, err := s.ds.Query(ctx, query.Query{Prefix: "/blocks", KeysOnly: true, ReturnsSizes: true})
	if err != nil {
		return Stat{}, fmt.Errorf("blocks: stat: %w", err)
	}
	defer res.Close()
	st := Stat{SizeCap: s.cfg.sizeCap}
	for e := range res.Next() {
		if e.Error != nil {
			return Stat{}, fmt.Errorf("blocks: stat: %w", e.Error)
		}
		st.Blocks++
		st.Bytes += uint64(max(e.Size, 0))
	}
	var packBytes uint64
	if s.packs != nil {
		n, b, disk := s.packs.stat()
		st.Blocks += n
		st.Bytes += b
		packBytes = disk
	}
	pins, err := s.Pins(ctx)
	if err != nil {
		return Stat{}, err
	}
	st.Pins = len(pins)
	if pd, ok := s.ds.(datastore.PersistentDatastore); ok {
		if du, err := pd.DiskUsage(ctx); err == nil {
			st.DiskUsage = du + packBytes
		}
	}
	return st, nil
}

// maybeAutoGC starts a garbage collection in the background when a size
// cap is set and exceeded, at most once a minute.
func (s *Service) maybeAutoGC() {
	if s.cfg.sizeCap == 0 {
		return
	}
	s.mu.Lock()
	if s.autoGCRunning || time.Since(s.lastAutoGC) < autoGCMinInterval {
		s.mu.Unlock()
		return
	}
	s.autoGCRunning = true
	s.lastAutoGC = time.Now()
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			s.autoGCRunning = false
			s.mu.Unlock()
		}()
		st, err := s.Stat(s.ctx)
		if err != nil {
			s.log.Warn("automatic GC: stat failed", "err", err)
			return
		}
		if st.Bytes <= s.cfg.sizeCap {
			return
		}
		removed, freed, err := s.GC(s.ctx)
		if err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("automatic GC failed", "err", err)
			return
		}
		s.log.Info("automatic GC: blocks over the size cap", "cap", s.cfg.sizeCap, "removed", removed, "freed", freed)
	}()
}
