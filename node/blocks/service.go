package blocks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/boxo/bitswap"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	"github.com/multiformats/go-multihash"

	"github.com/shoalnet/shoal/crypto"
)

// Defaults of the options of New.
const (
	DefaultFetchTimeout      = 30 * time.Second
	DefaultReprovideInterval = 12 * time.Hour
	// DefaultMaxDAGStreams bounds the DAG streams a node serves at once.
	DefaultMaxDAGStreams = 32
	// penaltyDuration is how long a peer that sent a bad block is avoided.
	penaltyDuration = 10 * time.Minute
	// autoGCMinInterval spaces automatic garbage collections.
	autoGCMinInterval = time.Minute
)

// Sentinel errors callers may branch on with errors.Is.
var (
	// ErrNoProvider is returned when no peer delivered a wanted block
	// within the fetch timeout.
	ErrNoProvider = errors.New("no provider found")
	// ErrNotFile is returned by Open for a CID that is not a UnixFS file.
	ErrNotFile = errors.New("not a UnixFS file")
	// ErrBadBlock is returned when a block's bytes do not match its CID or
	// break a limit.
	ErrBadBlock = errors.New("bad block")
)

// An Option configures New.
type Option func(*config) error

type config struct {
	fetchTimeout      time.Duration
	reprovideInterval time.Duration
	sizeCap           uint64
	maxDAGStreams     int
	blockDir          string
	logger            *slog.Logger
}

// WithFetchTimeout sets how long a fetch may go without receiving a block
// before it fails with ErrNoProvider. It must be positive.
func WithFetchTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("blocks: fetch timeout %v must be positive", d)
		}
		c.fetchTimeout = d
		return nil
	}
}

// WithReprovideInterval sets how often the roots of pinned DAGs are
// announced to the content router again; 0 disables reproviding.
func WithReprovideInterval(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("blocks: reprovide interval %v must not be negative", d)
		}
		if d > 0 && d < time.Minute {
			return fmt.Errorf("blocks: reprovide interval %v is under a minute; DHT records last 48h, use hours", d)
		}
		c.reprovideInterval = d
		return nil
	}
}

// WithSizeCap enables automatic garbage collection: when the blocks stored
// exceed capBytes, unpinned blocks are removed. 0 disables it.
func WithSizeCap(capBytes uint64) Option {
	return func(c *config) error {
		c.sizeCap = capBytes
		return nil
	}
}

// WithMaxDAGStreams bounds how many DAG streams the node serves at once;
// further requests are answered "busy". It must be positive.
func WithMaxDAGStreams(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("blocks: max DAG streams %d must be positive", n)
		}
		c.maxDAGStreams = n
		return nil
	}
}

// WithBlockDir keeps blocks of 32 KiB and more in pack files in dir
// (created if needed) instead of in the datastore: this writes each byte
// of a payload once, appended in sequence, which makes fetches and adds
// several times cheaper than through the datastore, and cheaper than a
// file per block. Smaller blocks stay in the datastore. Without
// it every block is kept in the datastore.
func WithBlockDir(dir string) Option {
	return func(c *config) error {
		if dir == "" {
			return errors.New("blocks: empty block directory")
		}
		c.blockDir = dir
		return nil
	}
}

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("blocks: nil logger")
		}
		c.logger = l
		return nil
	}
}

// A Service stores blocks, imports and exports UnixFS files and
// directories, and exchanges blocks with peers. Its methods are safe for
// concurrent use.
type Service struct {
	h      host.Host
	router routing.ContentRouting // may be nil: no providing or provider lookups
	bs     blockstore.Blockstore
	packs  *packStore // nil without WithBlockDir
	bswap  *bitswap.Bitswap
	dag    ipld.DAGService // write path: blockstore + bitswap notifications
	pinDS  datastore.Batching
	ds     datastore.Batching
	cfg    config
	log    *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	provideCh chan cid.Cid
	streamSem chan struct{}

	// gcMu is held shared by operations that write blocks not yet pinned
	// (adds, fetches) and exclusively by GC.
	gcMu sync.RWMutex

	pinned pinCache // roots lately seen pinned

	mu            sync.Mutex
	penalised     map[peer.ID]time.Time // guarded by mu
	lastAutoGC    time.Time             // guarded by mu
	autoGCRunning bool                  // guarded by mu
}

// New starts a Service on host h, storing blocks in ds (keys /blocks/... and
// /pins/...), announcing and finding providers through router (nil runs
// without content routing). It registers the bitswap and DAG stream
// protocols on h; Close removes them.
//
// Defaults: fetch timeout 30s, reprovide interval 12h, no size cap, at most
// 32 DAG streams served at once, logs discarded.
//
// ds must not be a go-datastore namespace named /blocks: boxo's blockstore
// adds its own /blocks prefix, and nested namespaces with two equal
// adjacent prefixes (/blocks/blocks) fail to list their keys, which would
// blind Stat and GC.
func New(ctx context.Context, h host.Host, ds datastore.Batching, router routing.ContentRouting, opts ...Option) (*Service, error) {
	cfg := config{
		fetchTimeout:      DefaultFetchTimeout,
		reprovideInterval: DefaultReprovideInterval,
		maxDAGStreams:     DefaultMaxDAGStreams,
		logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if h == nil || ds == nil {
		return nil, errors.New("blocks: New needs a host and a datastore")
	}
	var store blockstore.Blockstore = blockstore.NewBlockstore(ds, blockstore.WriteThrough(true))
	var packs *packStore
	if cfg.blockDir != "" {
		var err error
		if packs, err = newPackStore(ctx, cfg.blockDir, ds, store, cfg.logger); err != nil {
			return nil, err
		}
		store = packs
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		h:         h,
		router:    router,
		ds:        ds,
		bs:        &limitedBlockstore{Blockstore: store},
		packs:     packs,
		pinDS:     namespace.Wrap(ds, datastore.NewKey("/pins")),
		cfg:       cfg,
		log:       cfg.logger,
		ctx:       sctx,
		cancel:    cancel,
		provideCh: make(chan cid.Cid, 1024),
		streamSem: make(chan struct{}, cfg.maxDAGStreams),
		penalised: make(map[peer.ID]time.Time),
	}
	var finder routing.ContentDiscovery
	if router != nil {
		finder = router
	}
	s.bswap = bitswap.New(sctx, bsnet.NewFromIpfsHost(h), finder, s.bs,
		bitswap.ProviderSearchDelay(500*time.Millisecond))
	s.dag = merkledag.NewDAGService(blockservice.New(s.bs, s.bswap))
	h.SetStreamHandler(ProtocolDAG, s.handleDAGStream)

	s.wg.Add(1)
	go s.provideLoop()
	return s, nil
}

// Close stops serving and fetching, and waits for the Service's goroutines.
// It does not close the host or the datastore.
func (s *Service) Close() error {
	var err error
	s.once.Do(func() {
		s.h.RemoveStreamHandler(ProtocolDAG)
		s.cancel()
		err = s.bswap.Close()
		s.wg.Wait()
		if s.packs != nil {
			s.packs.close()
		}
	})
	return err
}

// Has reports whether block c is held here, without fetching it.
func (s *Service) Has(ctx context.Context, c cid.Cid) (bool, error) {
	ok, err := s.bs.Has(ctx, c)
	if err != nil {
		return false, fmt.Errorf("blocks: look up %s: %w", c, err)
	}
	return ok, nil
}

// Blockstore returns the underlying blockstore, for callers that need raw
// access (it is not hash-checked on write: use PutBlock for untrusted bytes).
func (s *Service) Blockstore() blockstore.Blockstore { return s.bs }

// receive stores one block from a peer or a caller after verifyBlock has
// accepted it. Blocks enter the store only through receive or, in batches,
// through readDAG, both after verifyBlock.
func (s *Service) receive(ctx context.Context, c cid.Cid, data []byte) error {
	if err := verifyBlock(c, data); err != nil {
		return err
	}
	if c.Prefix().MhType == multihash.IDENTITY {
		return nil // identity blocks are never stored
	}
	blk, err := blockformat.NewBlockWithCid(data, c)
	if err != nil {
		return fmt.Errorf("blocks: block %s: %w", c, err)
	}
	if err := s.bs.Put(ctx, blk); err != nil {
		return fmt.Errorf("blocks: storing block %s: %w", c, err)
	}
	return nil
}

// verifyBlock checks that c is a supported CID, that data is within the
// size limit and that data hashes to c. Its errors wrap ErrBadBlock.
func verifyBlock(c cid.Cid, data []byte) error {
	if err := ValidateCID(c); err != nil {
		return fmt.Errorf("%w: %w", ErrBadBlock, err)
	}
	if len(data) > MaxBlockSize {
		return fmt.Errorf("%w: block %s is %d bytes, limit %d", ErrBadBlock, c, len(data), MaxBlockSize)
	}
	if err := crypto.CheckCID(c, data); err != nil {
		return fmt.Errorf("%w: %w", ErrBadBlock, err)
	}
	return nil
}

// penalise marks p as a peer not to fetch from for a while and lowers its
// standing with the connection manager.
func (s *Service) penalise(p peer.ID, reason error) {
	s.mu.Lock()
	s.penalised[p] = time.Now().Add(penaltyDuration)
	s.mu.Unlock()
	s.h.ConnManager().TagPeer(p, "shoal-blocks-bad", -100)
	s.log.Debug("peer sent a bad block; avoiding it", "peer", p, "err", reason)
}

// isPenalised reports whether p is being avoided.
func (s *Service) isPenalised(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.penalised[p]
	if ok && time.Now().After(until) {
		delete(s.penalised, p)
		return false
	}
	return ok
}

// provide queues c to be announced to the content router.
func (s *Service) provide(c cid.Cid) {
	if s.router == nil {
		return
	}
	select {
	case s.provideCh <- c:
	default:
		s.log.Warn("provide queue full; CID will be announced at the next reprovide", "cid", c)
	}
}

// maxProvidedMemory bounds how many recently announced CIDs provideLoop
// remembers to skip announcing them again.
const maxProvidedMemory = 1 << 16

// provideLoop announces queued CIDs and periodically reannounces the roots
// of all pins. A CID announced within the reprovide interval is not
// announced again when queued anew (the same empty stderr or the same
// module is added by many jobs): its provider record still stands, and the
// periodic reprovide renews it.
func (s *Service) provideLoop() {
	defer s.wg.Done()
	var tick <-chan time.Time
	if s.cfg.reprovideInterval > 0 && s.router != nil {
		t := time.NewTicker(s.cfg.reprovideInterval)
		defer t.Stop()
		tick = t.C
	}
	provided := make(map[cid.Cid]time.Time)
	fresh := func(c cid.Cid) bool {
		at, ok := provided[c]
		return ok && (s.cfg.reprovideInterval <= 0 || time.Since(at) < s.cfg.reprovideInterval)
	}
	announce := func(c cid.Cid) {
		if !s.provideNow(c) {
			return
		}
		if len(provided) >= maxProvidedMemory {
			clear(provided) // forget them all: at worst some are announced twice
		}
		provided[c] = time.Now()
	}
	for {
		select {
		case <-s.ctx.Done():
			return
		case c := <-s.provideCh:
			if !fresh(c) {
				announce(c)
			}
		case <-tick:
			pins, err := s.Pins(s.ctx)
			if err != nil {
				s.log.Warn("reprovide: listing pins failed", "err", err)
				continue
			}
			for _, p := range pins {
				announce(p.CID)
			}
		}
	}
}

// provideNow announces c to the content router and reports whether that
// worked.
func (s *Service) provideNow(c cid.Cid) bool {
	if s.router == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	if err := s.router.Provide(ctx, c, true); err != nil {
		if s.ctx.Err() == nil {
			s.log.Debug("provide failed; will retry at the next reprovide", "cid", c, "err", err)
		}
		return false
	}
	return true
}

// limitedBlockstore refuses blocks over MaxBlockSize, whoever writes them
// (bitswap included).
type limitedBlockstore struct {
	blockstore.Blockstore
}

func (l *limitedBlockstore) Put(ctx context.Context, b blockformat.Block) error {
	if len(b.RawData()) > MaxBlockSize {
		return fmt.Errorf("%w: block %s is %d bytes, limit %d", ErrBadBlock, b.Cid(), len(b.RawData()), MaxBlockSize)
	}
	return l.Blockstore.Put(ctx, b)
}

func (l *limitedBlockstore) PutMany(ctx context.Context, bs []blockformat.Block) error {
	for _, b := range bs {
		if len(b.RawData()) > MaxBlockSize {
			return fmt.Errorf("%w: block %s is %d bytes, limit %d", ErrBadBlock, b.Cid(), len(b.RawData()), MaxBlockSize)
		}
	}
	return l.Blockstore.PutMany(ctx, bs)
}

var _ blockstore.Blockstore = (*limitedBlockstore)(nil)
