package blocks

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
)

const (
	// storeBatchBytes is the size at which a fetch writes the blocks it
	// has verified in one batch. Above half the memtable size pebble
	// queues a batch for flushing as it is instead of copying it into
	// the memtable.
	storeBatchBytes = 8 << 20
	// requestTimeout bounds how long a provider waits for a request.
	requestTimeout = 10 * time.Second
	// maxConnectedTries bounds how many connected peers a fetch asks over
	// the DAG stream before it turns to the content router.
	maxConnectedTries = 16
	// maxRoutedProviders bounds the providers asked of the content router.
	maxRoutedProviders = 8
)

// handleDAGStream serves one DAG stream request: it sends every block of
// the requested DAG in depth-first order, each distinct CID once, then an
// end frame; or an error frame.
func (s *Service) handleDAGStream(st network.Stream) {
	defer st.Close()
	bw := bufio.NewWriterSize(st, 64<<10)
	fail := func(code ErrorCode, msg string) {
		_ = st.SetWriteDeadline(time.Now().Add(requestTimeout))
		_, _ = bw.Write(appendError(nil, code, msg))
		_ = bw.Flush()
	}
	select {
	case s.streamSem <- struct{}{}:
		defer func() { <-s.streamSem }()
	default:
		fail(CodeBusy, "provider serves too many DAG streams; retry later or use another provider")
		return
	}
	_ = st.SetReadDeadline(time.Now().Add(requestTimeout))
	root, err := readRequest(bufio.NewReaderSize(st, 256))
	if err != nil {
		s.log.Debug("bad DAG stream request", "peer", st.Conn().RemotePeer(), "err", err)
		fail(CodeBadRequest, err.Error())
		return
	}
	_ = st.SetReadDeadline(time.Time{})
	ctx := s.ctx
	stack := []cid.Cid{root}
	seen := make(map[cid.Cid]struct{})
	hdr := make([]byte, 0, 2*maxCIDLen)
	var buf []byte // blocks in packs are read into it, one after another
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, ok := seen[c]; ok || isIdentity(c) {
			continue
		}
		seen[c] = struct{}{}
		data, err := s.blockData(ctx, c, &buf)
		if ipld.IsNotFound(err) {
			fail(CodeNotFound, fmt.Sprintf("provider does not have block %s of DAG %s", c, root))
			return
		}
		if err != nil {
			s.log.Warn("DAG stream: reading block failed", "cid", c, "err", err)
			fail(CodeInternal, fmt.Sprintf("provider failed to read block %s", c))
			return
		}
		links, err := linksOf(c, data)
		if err != nil {
			fail(CodeInternal, fmt.Sprintf("provider holds a malformed block %s", c))
			return
		}
		_ = st.SetWriteDeadline(time.Now().Add(s.cfg.fetchTimeout))
		hdr = appendBlockHeader(hdr[:0], c, len(data))
		if _, err := bw.Write(hdr); err != nil {
			st.Reset()
			return
		}
		if _, err := bw.Write(data); err != nil {
			st.Reset()
			return
		}
		for i := len(links) - 1; i >= 0; i-- {
			stack = append(stack, links[i])
		}
	}
	_ = st.SetWriteDeadline(time.Now().Add(s.cfg.fetchTimeout))
	_, _ = bw.Write(appendEnd(nil))
	if err := bw.Flush(); err != nil {
		st.Reset()
	}
}

// blockData returns the bytes of block c, reading a block in a pack into buf
// (see packStore.readInto); other blocks come from the blockstore.
func (s *Service) blockData(ctx context.Context, c cid.Cid, buf *[]byte) ([]byte, error) {
	if s.packs != nil {
		return s.packs.readInto(ctx, c, buf)
	}
	blk, err := s.bs.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	return blk.RawData(), nil
}

// fetchViaDAGStreams asks connected peers, then providers named by the
// content router, to stream the DAG of ss, until one delivers it whole.
func (s *Service) fetchViaDAGStreams(ctx context.Context, ss *session) error {
	tried := make(map[peer.ID]struct{})
	var lastErr error
	try := func(p peer.ID) bool {
		if p == s.h.ID() || s.isPenalised(p) {
			return false
		}
		if _, ok := tried[p]; ok {
			return false
		}
		tried[p] = struct{}{}
		err := s.streamDAG(ctx, p, ss)
		if err == nil {
			return true
		}
		lastErr = err
		s.log.Debug("DAG stream attempt failed", "peer", p, "cid", ss.root, "err", err)
		return false
	}
	// Connected peers known to speak the protocol first, then the others
	// whose protocols identify has not told us yet.
	var known, unknown []peer.ID
	for _, p := range s.h.Network().Peers() {
		protos, err := s.h.Peerstore().GetProtocols(p)
		switch {
		case err != nil || len(protos) == 0:
			unknown = append(unknown, p)
		default:
			if ok, _ := s.h.Peerstore().SupportsProtocols(p, ProtocolDAG); len(ok) > 0 {
				known = append(known, p)
			}
		}
	}
	n := 0
	for _, p := range append(known, unknown...) {
		if n >= maxConnectedTries || ctx.Err() != nil {
			break
		}
		n++
		if try(p) {
			return nil
		}
	}
	if s.router == nil {
		if lastErr == nil {
			lastErr = errors.New("no connected peer and no content router")
		}
		return lastErr
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for ai := range s.router.FindProvidersAsync(fctx, ss.root, maxRoutedProviders) {
		if ai.ID == s.h.ID() {
			continue
		}
		if len(ai.Addrs) > 0 {
			s.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
		}
		if try(ai.ID) {
			return nil
		}
	}
	if lastErr == nil {
		if err := context.Cause(ctx); err != nil {
			return err
		}
		lastErr = fmt.Errorf("content router found no Shoal provider of %s", ss.root)
	}
	return lastErr
}

// streamDAG fetches the DAG of ss from p over one DAG stream. Each block
// must be the next one the fetcher expects in depth-first order (skipping
// CIDs already received on this stream), hash to its CID and be within
// limits; anything else drops the stream and penalises p.
func (s *Service) streamDAG(ctx context.Context, p peer.ID, ss *session) error {
	st, err := s.h.NewStream(ctx, p, ProtocolDAG)
	if err != nil {
		return fmt.Errorf("opening DAG stream to %s: %w", p, err)
	}
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	ok := false
	defer func() {
		if ok {
			st.Close()
		} else {
			st.Reset()
		}
	}()
	_ = st.SetWriteDeadline(time.Now().Add(s.cfg.fetchTimeout))
	if _, err := st.Write(appendRequest(nil, ss.root)); err != nil {
		return fmt.Errorf("sending DAG request to %s: %w", p, err)
	}
	_ = st.CloseWrite()

	// A small buffer: io.ReadFull of a block's data reads what the
	// buffer lacks straight from the stream into the block, without a
	// second copy.
	br := bufio.NewReaderSize(st, 32<<10)
	err = s.readDAG(ctx, br, ss, func() { _ = st.SetReadDeadline(time.Now().Add(s.cfg.fetchTimeout)) })
	if err == nil {
		ok = true
		return nil
	}
	if errors.Is(err, ErrBadBlock) || errors.Is(err, errMalformedFrame) {
		s.penalise(p, err)
	} else if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	return fmt.Errorf("DAG stream from %s: %w", p, err)
}

// readDAG reads the response frames of a DAG stream for ss.root from br
// until the end frame, storing each block after checking it: it must be the
// next one expected in depth-first order (skipping CIDs already received),
// hash to its CID and be within limits. Checked blocks are stored in
// batches and reported to ss as each batch is stored; when readDAG returns
// nil every block is stored. beforeFrame is called before each frame is
// read (to set a deadline). An error wrapping ErrBadBlock or
// errMalformedFrame means the provider misbehaved.
func (s *Service) readDAG(ctx context.Context, br *bufio.Reader, ss *session, beforeFrame func()) error {
	stack := []cid.Cid{ss.root}
	seen := make(map[cid.Cid]struct{})
	next := func() (cid.Cid, bool) {
		for len(stack) > 0 {
			c := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if _, ok := seen[c]; ok || isIdentity(c) {
				continue
			}
			return c, true
		}
		return cid.Undef, false
	}
	// Frames are read by a second goroutine, one buffer each, so that
	// reading the network overlaps hashing and storing.
	type result struct {
		f   frame
		err error
	}
	frames := make(chan result, 4)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(frames)
		for {
			beforeFrame()
			f, _, err := readFrame(br, nil)
			select {
			case frames <- result{f, err}:
			case <-stop:
				return
			}
			if err != nil || f.kind != frameBlock {
				return
			}
		}
	}()
	// Verified blocks are gathered in batches that a third goroutine
	// stores, so that storing (and syncing) overlaps reading and
	// hashing; a block is reported as present only once its batch is
	// stored.
	var pending []blockformat.Block
	pendingBytes := 0
	batches := make(chan []blockformat.Block, 1)
	storeErr := make(chan error, 1)
	storeDone := make(chan struct{})
	go func() {
		defer close(storeDone)
		for batch := range batches {
			if err := s.bs.PutMany(ctx, batch); err != nil {
				storeErr <- fmt.Errorf("blocks: storing %d fetched blocks of %s: %w", len(batch), ss.root, err)
				for range batches {
				}
				return
			}
			for _, blk := range batch {
				ss.arriveWithData(blk.Cid(), blk.RawData())
			}
		}
	}()
	stopStorer := sync.OnceFunc(func() { close(batches) })
	defer func() {
		stopStorer()
		<-storeDone
	}()
	// handOver passes the pending batch to the storer: always when wait
	// is set, else only if the storer's queue (one batch) has room.
	handOver := func(wait bool) error {
		select {
		case err := <-storeErr:
			return err
		default:
		}
		if len(pending) == 0 {
			return nil
		}
		if wait {
			select {
			case batches <- pending:
			case err := <-storeErr:
				return err
			}
		} else {
			select {
			case batches <- pending:
			default:
				return nil
			}
		}
		pending = nil
		pendingBytes = 0
		return nil
	}
	// finish stores what is pending and waits for the storer.
	finish := func() error {
		if err := handOver(true); err != nil {
			return err
		}
		stopStorer()
		<-storeDone
		select {
		case err := <-storeErr:
			return err
		default:
			return nil
		}
	}
	for r := range frames {
		if r.err != nil {
			return r.err
		}
		f := r.f
		switch f.kind {
		case frameError:
			return &RemoteError{Code: f.code, Message: f.msg}
		case frameEnd:
			if c, more := next(); more {
				return fmt.Errorf("%w: stream ended before block %s", ErrBadBlock, c)
			}
			return finish()
		case frameBlock:
			want, more := next()
			if !more {
				return fmt.Errorf("%w: unrequested block %s after the DAG was complete", ErrBadBlock, f.cid)
			}
			if !f.cid.Equals(want) {
				return fmt.Errorf("%w: got block %s, expected %s", ErrBadBlock, f.cid, want)
			}
			if err := verifyBlock(want, f.data); err != nil {
				return err
			}
			links, err := linksOf(want, f.data)
			if err != nil {
				return err
			}
			seen[want] = struct{}{}
			for i := len(links) - 1; i >= 0; i-- {
				stack = append(stack, links[i])
			}
			blk, err := blockformat.NewBlockWithCid(f.data, want)
			if err != nil {
				return fmt.Errorf("blocks: block %s: %w", want, err)
			}
			pending = append(pending, blk)
			pendingBytes += len(f.data)
			// Group commit: the batch goes to the storer whenever its
			// queue has room, and the reader waits for it once the
			// batch is large. A reader right behind the fetch is thus
			// never held back by batching, and a busy store gets
			// larger batches.
			if err := handOver(pendingBytes >= storeBatchBytes); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("DAG stream reader stopped: %w", io.ErrUnexpectedEOF)
}
