package blocks

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/boxo/exchange"
	"github.com/ipfs/boxo/ipld/merkledag"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multicodec"
	"github.com/multiformats/go-multihash"
)

// linksOf returns the CIDs a block links to, in order. Raw blocks have no
// links; dag-cbor blocks are treated as leaves (their links are not
// followed); dag-pb blocks are decoded strictly.
func linksOf(c cid.Cid, data []byte) ([]cid.Cid, error) {
	switch multicodec.Code(c.Prefix().Codec) {
	case multicodec.DagPb:
		n, err := merkledag.DecodeProtobuf(data)
		if err != nil {
			return nil, fmt.Errorf("blocks: decoding dag-pb block %s: %w", c, err)
		}
		ls := n.Links()
		out := make([]cid.Cid, len(ls))
		for i, l := range ls {
			if err := ValidateCID(l.Cid); err != nil {
				return nil, fmt.Errorf("blocks: dag-pb block %s links to an unsupported CID: %w", c, err)
			}
			out[i] = l.Cid
		}
		return out, nil
	default:
		return nil, nil
	}
}

// identityBlock returns the block an identity CID carries inline.
func identityBlock(c cid.Cid) (blockformat.Block, error) {
	dm, err := multihash.Decode(c.Hash())
	if err != nil {
		return nil, fmt.Errorf("blocks: decoding identity CID %s: %w", c, err)
	}
	return blockformat.NewBlockWithCid(dm.Digest, c)
}

func isIdentity(c cid.Cid) bool { return c.Prefix().MhType == multihash.IDENTITY }

// A session makes one DAG local: it streams it from Shoal providers or, if
// that fails, walks it with bitswap, and tells waiting readers as each block
// arrives. It fails when no block arrives for the fetch timeout.
type session struct {
	s      *Service
	root   cid.Cid
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer

	mu      sync.Mutex
	arrived map[cid.Cid]struct{} // guarded by mu
	changed chan struct{}        // closed and replaced on each arrival; guarded by mu
	count   int                  // blocks arrived; guarded by mu
	// recent holds the bytes of the latest blocks that arrived with
	// data, up to recentMax bytes, so that a reader right behind the
	// fetch takes them from memory instead of reading them back from
	// the store; recentOrder is their arrival order. Guarded by mu.
	recent      map[cid.Cid][]byte
	recentOrder []cid.Cid
	recentBytes int

	done chan struct{} // closed when run returns
	err  error         // set before done is closed
}

func (s *Service) startSession(ctx context.Context, root cid.Cid) *session {
	sctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(s.ctx, func() { cancel(errors.New("blocks: service closed")) })
	ss := &session{
		s:       s,
		root:    root,
		ctx:     sctx,
		cancel:  cancel,
		arrived: make(map[cid.Cid]struct{}),
		changed: make(chan struct{}),
		done:    make(chan struct{}),
	}
	ss.timer = time.AfterFunc(s.cfg.fetchTimeout, func() { cancel(ss.timeoutError()) })
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer stop()
		ss.run()
	}()
	return ss
}

// timeoutError describes a fetch that made no progress.
func (ss *session) timeoutError() error {
	ss.mu.Lock()
	n := ss.count
	ss.mu.Unlock()
	if n == 0 {
		return fmt.Errorf("%w for CID %s within %v: check that a node holding it is online and reachable", ErrNoProvider, ss.root, ss.s.cfg.fetchTimeout)
	}
	return fmt.Errorf("%w: fetching %s stalled: no block arrived within %v after %d blocks", ErrNoProvider, ss.root, ss.s.cfg.fetchTimeout, n)
}

func (ss *session) run() {
	defer close(ss.done)
	defer ss.timer.Stop()
	err := ss.s.fetchViaDAGStreams(ss.ctx, ss)
	if err == nil {
		return
	}
	ss.s.log.Debug("DAG stream fetch failed; falling back to bitswap", "cid", ss.root, "err", err)
	err = ss.s.fetchViaBitswap(ss.ctx, ss)
	if err != nil {
		if cause := context.Cause(ss.ctx); cause != nil {
			err = cause
		}
		ss.err = fmt.Errorf("blocks: fetching %s: %w", ss.root, err)
	}
}

// stop cancels the session; it is safe to call more than once.
func (ss *session) stop() { ss.cancel(context.Canceled) }

// arrive records that c is now in the blockstore.
func (ss *session) arrive(c cid.Cid) {
	ss.timer.Reset(ss.s.cfg.fetchTimeout)
	ss.mu.Lock()
	if _, ok := ss.arrived[c]; !ok {
		ss.arrived[c] = struct{}{}
		ss.count++
		close(ss.changed)
		ss.changed = make(chan struct{})
	}
	ss.mu.Unlock()
}

// recentMax bounds the bytes a session keeps in memory for its reader.
const recentMax = 8 << 20

// arriveWithData records that c is now in the blockstore and keeps data
// (which the session now owns) for a reader to take.
func (ss *session) arriveWithData(c cid.Cid, data []byte) {
	ss.mu.Lock()
	if ss.recent == nil {
		ss.recent = make(map[cid.Cid][]byte)
	}
	if _, ok := ss.recent[c]; !ok && len(data) <= recentMax {
		ss.recent[c] = data
		ss.recentOrder = append(ss.recentOrder, c)
		ss.recentBytes += len(data)
		for ss.recentBytes > recentMax && len(ss.recentOrder) > 0 {
			old := ss.recentOrder[0]
			ss.recentOrder = ss.recentOrder[1:]
			if d, ok := ss.recent[old]; ok {
				ss.recentBytes -= len(d)
				delete(ss.recent, old)
			}
		}
	}
	ss.mu.Unlock()
	ss.arrive(c)
}

// take returns and forgets the kept bytes of c, if any.
func (ss *session) take(c cid.Cid) ([]byte, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	d, ok := ss.recent[c]
	if ok {
		delete(ss.recent, c)
		ss.recentBytes -= len(d)
	}
	return d, ok
}

// waitFor blocks until c has arrived, the session has ended or ctx is done.
func (ss *session) waitFor(ctx context.Context, c cid.Cid) error {
	for {
		ss.mu.Lock()
		_, ok := ss.arrived[c]
		ch := ss.changed
		ss.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ss.done:
			ss.mu.Lock()
			_, ok := ss.arrived[c]
			ss.mu.Unlock()
			if ok {
				return nil
			}
			if ss.err != nil {
				return ss.err
			}
			return fmt.Errorf("blocks: block %s is not part of DAG %s", c, ss.root)
		case <-ctx.Done():
			return fmt.Errorf("blocks: waiting for block %s: %w", c, context.Cause(ctx))
		}
	}
}

// A fetchOp reads the blocks of one DAG, starting a session on the first
// block that is not local.
type fetchOp struct {
	s    *Service
	ctx  context.Context
	root cid.Cid

	mu   sync.Mutex
	sess *session // guarded by mu
}

func (s *Service) newOp(ctx context.Context, root cid.Cid) *fetchOp {
	return &fetchOp{s: s, ctx: ctx, root: root}
}

// session returns the op's session, starting it if needed.
func (op *fetchOp) session() *session {
	op.mu.Lock()
	defer op.mu.Unlock()
	if op.sess == nil {
		op.sess = op.s.startSession(op.ctx, op.root)
	}
	return op.sess
}

// close stops the op's session, if any.
func (op *fetchOp) close() {
	op.mu.Lock()
	defer op.mu.Unlock()
	if op.sess != nil {
		op.sess.stop()
	}
}

// get returns block c of the op's DAG, from the blockstore or the network.
func (op *fetchOp) get(c cid.Cid) (blockformat.Block, error) {
	if isIdentity(c) {
		return identityBlock(c)
	}
	// A block fetched by this op's session is usually stored before the
	// reader gets to it; its bytes are still in memory, so the block
	// need not be read back from its pack.
	op.mu.Lock()
	sess := op.sess
	op.mu.Unlock()
	if sess != nil {
		if data, ok := sess.take(c); ok {
			return blockformat.NewBlockWithCid(data, c)
		}
	}
	blk, err := op.s.bs.Get(op.ctx, c)
	if err == nil {
		return blk, nil
	}
	if !ipld.IsNotFound(err) {
		return nil, fmt.Errorf("blocks: reading block %s: %w", c, err)
	}
	ss := op.session()
	if err := ss.waitFor(op.ctx, c); err != nil {
		return nil, err
	}
	if data, ok := ss.take(c); ok {
		return blockformat.NewBlockWithCid(data, c)
	}
	blk, err = op.s.bs.Get(op.ctx, c)
	if err != nil {
		return nil, fmt.Errorf("blocks: reading fetched block %s: %w", c, err)
	}
	return blk, nil
}

// missingLocally reports whether any block of the DAG at root is absent
// from the blockstore.
func (s *Service) missingLocally(ctx context.Context, root cid.Cid) (bool, error) {
	stack := []cid.Cid{root}
	seen := make(map[cid.Cid]struct{})
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, ok := seen[c]; ok || isIdentity(c) {
			continue
		}
		seen[c] = struct{}{}
		if multicodec.Code(c.Prefix().Codec) != multicodec.DagPb {
			has, err := s.bs.Has(ctx, c)
			if err != nil {
				return false, fmt.Errorf("blocks: checking block %s: %w", c, err)
			}
			if !has {
				return true, nil
			}
			continue
		}
		blk, err := s.bs.Get(ctx, c)
		if ipld.IsNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("blocks: reading block %s: %w", c, err)
		}
		links, err := linksOf(c, blk.RawData())
		if err != nil {
			return false, err
		}
		stack = append(stack, links...)
	}
	return false, nil
}

// fetchLocked makes the whole DAG at root local. The caller holds gcMu shared.
func (s *Service) fetchLocked(ctx context.Context, root cid.Cid) error {
	missing, err := s.missingLocally(ctx, root)
	if err != nil || !missing {
		return err
	}
	ss := s.startSession(ctx, root)
	defer ss.stop()
	select {
	case <-ss.done:
	case <-ctx.Done():
		return fmt.Errorf("blocks: fetching %s: %w", root, context.Cause(ctx))
	}
	if ss.err != nil {
		return ss.err
	}
	s.provide(root)
	s.maybeAutoGC()
	return nil
}

// Fetch makes the whole DAG at c local, from peers if needed. It fails with
// ErrNoProvider when no block arrives within the fetch timeout.
func (s *Service) Fetch(ctx context.Context, c cid.Cid) error {
	if err := ValidateCID(c); err != nil {
		return err
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	return s.fetchLocked(ctx, c)
}

// GetBlock returns the bytes of block c, from the blockstore or from peers.
// The caller owns the returned slice.
func (s *Service) GetBlock(ctx context.Context, c cid.Cid) ([]byte, error) {
	if err := ValidateCID(c); err != nil {
		return nil, err
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	op := s.newOp(ctx, c)
	defer op.close()
	blk, err := op.get(c)
	if err != nil {
		return nil, err
	}
	return blk.RawData(), nil
}

// PutBlock stores data as block c after checking that data hashes to c and
// is at most MaxBlockSize, and announces it to the content router. The block
// is not pinned: Pin it to keep it across garbage collection.
func (s *Service) PutBlock(ctx context.Context, c cid.Cid, data []byte) error {
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	if err := s.receive(ctx, c, data); err != nil {
		return err
	}
	if blk, err := blockformat.NewBlockWithCid(data, c); err == nil {
		_ = s.bswap.NotifyNewBlocks(ctx, blk)
	}
	s.provide(c)
	return nil
}

// fetchViaBitswap walks the DAG of ss depth-first, fetching each node's
// missing children with one bitswap request.
func (s *Service) fetchViaBitswap(ctx context.Context, ss *session) error {
	f := s.bswap.NewSession(ctx)
	if has, err := s.bs.Has(ctx, ss.root); err != nil {
		return fmt.Errorf("checking block %s: %w", ss.root, err)
	} else if !has {
		blk, err := f.GetBlock(ctx, ss.root)
		if err != nil {
			return fmt.Errorf("bitswap: %w", err)
		}
		if err := s.receive(ctx, ss.root, blk.RawData()); err != nil {
			return err
		}
	}
	ss.arrive(ss.root)
	return s.bitswapWalk(ctx, f, ss, ss.root)
}

// bitswapWalk fetches the missing children of local block c, then walks
// into them in order.
func (s *Service) bitswapWalk(ctx context.Context, f exchange.Fetcher, ss *session, c cid.Cid) error {
	if multicodec.Code(c.Prefix().Codec) != multicodec.DagPb {
		return nil
	}
	blk, err := s.bs.Get(ctx, c)
	if err != nil {
		return fmt.Errorf("reading block %s: %w", c, err)
	}
	links, err := linksOf(c, blk.RawData())
	if err != nil {
		return err
	}
	var missing []cid.Cid
	want := make(map[cid.Cid]struct{})
	for _, l := range links {
		if isIdentity(l) {
			continue
		}
		if _, dup := want[l]; dup {
			continue
		}
		has, err := s.bs.Has(ctx, l)
		if err != nil {
			return fmt.Errorf("checking block %s: %w", l, err)
		}
		if has {
			ss.arrive(l)
			continue
		}
		want[l] = struct{}{}
		missing = append(missing, l)
	}
	if len(missing) > 0 {
		ch, err := f.GetBlocks(ctx, missing)
		if err != nil {
			return fmt.Errorf("bitswap: %w", err)
		}
		for b := range ch {
			if _, ok := want[b.Cid()]; !ok {
				continue
			}
			if err := s.receive(ctx, b.Cid(), b.RawData()); err != nil {
				return err
			}
			delete(want, b.Cid())
			ss.arrive(b.Cid())
		}
		if len(want) > 0 {
			if err := context.Cause(ctx); err != nil {
				return err
			}
			return fmt.Errorf("bitswap delivered %d of %d children of %s", len(missing)-len(want), len(missing), c)
		}
	}
	for _, l := range links {
		if err := s.bitswapWalk(ctx, f, ss, l); err != nil {
			return err
		}
	}
	return nil
}
