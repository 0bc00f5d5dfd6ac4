// Package node implements one Shoal node: it opens a repo (config, identity
// key, lock, pebble datastore), starts the libp2p host, the DHT and its
// rendezvous discovery, gossipsub, and every subsystem (blocks, capacity,
// jobs, ledger), and serves the HTTP+JSON API and metrics that the CLI
// talks to.
//
// # Repo
//
// A repo is a directory:
//
//	config.toml   the config, one table per area, a comment on every field
//	identity.key  the node's ed25519 key (mode 0600), see package crypto
//	api-token     the API bearer token (mode 0600)
//	api           host:port the running daemon's API bound (removed on exit)
//	repo.lock     flock'ed by the running daemon; holds its pid
//	datastore/    the pebble datastore
//
// # Plugging a subsystem in
//
// A subsystem adds one file node/<area>.go holding a start method
// (func (n *Node) start<Area>(ctx context.Context) error) that registers its
// own shutdown with [Node.onClose], and a register<Area>Routes(mux) method.
// New calls the start method (one line in the list in New) and the API
// calls the register method (one line in registerRoutes).
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	pebbleds "github.com/ipfs/go-ds-pebble"
	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/shoalnet/shoal/crypto"
	sdht "github.com/shoalnet/shoal/dht"
	"github.com/shoalnet/shoal/jobs/capacity"
	"github.com/shoalnet/shoal/node/blocks"
)

// Version is the software version reported by the node.
const Version = "0.1.0-dev"

// An Option configures New.
type Option func(*options) error

type options struct {
	cfg    *Config
	logger *slog.Logger
}

// WithConfig makes New use cfg instead of reading REPO/config.toml. cfg is
// validated.
func WithConfig(cfg Config) Option {
	return func(o *options) error {
		if err := cfg.Validate(); err != nil {
			return err
		}
		o.cfg = &cfg
		return nil
	}
}

// WithLogger sets the logger; the default discards logs.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("node: WithLogger(nil)")
		}
		o.logger = l
		return nil
	}
}

// A Node is a running Shoal node. Its accessors are safe for concurrent use.
type Node struct {
	repo    string
	cfg     Config
	log     *slog.Logger
	key     crypto.PrivKey
	id      peer.ID
	started time.Time
	metrics *prometheus.Registry

	lock *repoLock
	ds   *pebbleds.Datastore
	host host.Host
	disc *sdht.Discovery
	ps   *pubsub.PubSub
	api  *apiServer

	capacity capacityState // node/capacity.go

	blocks *blocks.Service // node/blocks.go

	ledger *ledgerArea // see ledger.go

	jobs *jobService // node/jobs.go

	jobsNet jobsNetArea // node/jobs_net.go

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc

	mu      sync.Mutex
	closers []namedCloser // guarded by mu; run in reverse order by Close

	closeOnce sync.Once
	closeErr  error
}

type namedCloser struct {
	name string
	fn   func() error
}

// New opens the repo in repoDir and starts the node. Defaults: the config
// is read from REPO/config.toml (see [DefaultConfig] for its defaults),
// logs are discarded. ctx bounds the start only (bootstrap included); the
// node runs until Close. On error, everything started is stopped.
func New(ctx context.Context, repoDir string, opts ...Option) (_ *Node, err error) {
	var o options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if err := CheckRepo(repoDir); err != nil {
		return nil, err
	}
	if o.cfg == nil {
		cfg, err := LoadConfig(filepath.Join(repoDir, ConfigFileName))
		if err != nil {
			return nil, err
		}
		o.cfg = &cfg
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{
		repo:    repoDir,
		cfg:     *o.cfg,
		log:     o.logger,
		started: time.Now(),
		metrics: prometheus.NewRegistry(),
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			n.Close()
		}
	}()

	n.lock, err = lockRepo(repoDir)
	if err != nil {
		return nil, err
	}
	n.onClose("lock", n.lock.unlock)

	n.key, err = crypto.ReadKeyFile(filepath.Join(repoDir, KeyFileName))
	if err != nil {
		return nil, err
	}
	if n.id, err = crypto.PeerID(n.key); err != nil {
		return nil, err
	}
	n.log = n.log.With("peer", n.id.String())

	n.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	steps := []struct {
		name  string
		start func(context.Context) error
	}{
		{"datastore", n.startDatastore},
		{"libp2p host", n.startHost},
		{"dht", n.startDHT},
		{"pubsub", n.startPubSub},
		{"capacity", n.startCapacity},
		{"ledger", n.startLedger},
		{"jobs", n.startJobs},
		{"jobs-net", n.startJobsNet},
		{"blocks", n.startBlocks},
		// Subsystems plug in above, one line each: {"<area>", n.start<Area>}.
		{"discovery", n.startDiscovery},
		{"api", n.startAPI},
	}
	for _, s := range steps {
		if err := s.start(ctx); err != nil {
			return nil, fmt.Errorf("start %s: %w", s.name, err)
		}
	}
	n.log.Info("node started", "network", n.cfg.Network.Name, "api", n.api.addr, "addrs", n.host.Addrs(), "in", time.Since(n.started).Round(time.Millisecond))
	return n, nil
}

// onClose registers fn to run on Close, before everything registered
// earlier.
func (n *Node) onClose(name string, fn func() error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closers = append(n.closers, namedCloser{name, fn})
}

// Close stops the node: the API first, then every subsystem in reverse
// order of start, and releases the repo lock last. It is safe to call more
// than once; later calls return the first call's result.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.cancel()
		n.mu.Lock()
		cs := n.closers
		n.closers = nil
		n.mu.Unlock()
		var errs []error
		for i := len(cs) - 1; i >= 0; i-- {
			if err := cs[i].fn(); err != nil {
				errs = append(errs, fmt.Errorf("close %s: %w", cs[i].name, err))
			}
		}
		n.closeErr = errors.Join(errs...)
		if n.api != nil {
			n.log.Info("node stopped")
		}
	})
	return n.closeErr
}

// Context returns a context that is canceled when the node closes; it is
// the parent of the node's long-lived work.
func (n *Node) Context() context.Context { return n.ctx }

// Host returns the libp2p host.
func (n *Node) Host() host.Host { return n.host }

// DHT returns the kad-dht of the node (content routing: Provide, FindProvidersAsync).
func (n *Node) DHT() *kaddht.IpfsDHT { return n.disc.DHT() }

// Discovery returns the node's rendezvous discovery.
func (n *Node) Discovery() *sdht.Discovery { return n.disc }

// PubSub returns the node's gossipsub router (messages carry no author and
// no gossipsub signature; see capacity.MessagePolicy).
func (n *Node) PubSub() *pubsub.PubSub { return n.ps }

// Datastore returns the node's pebble datastore at REPO/datastore. Each
// subsystem takes its own namespace of it (see [Node.Namespace]).
func (n *Node) Datastore() datastore.Batching { return n.ds }

// Namespace returns the datastore under the key prefix /name.
func (n *Node) Namespace(name string) datastore.Batching {
	return namespace.Wrap(n.ds, datastore.NewKey(name))
}

// Key returns the node's private key.
func (n *Node) Key() crypto.PrivKey { return n.key }

// PeerID returns the node's peer ID.
func (n *Node) PeerID() peer.ID { return n.id }

// Config returns the config the node started with.
func (n *Node) Config() Config { return n.cfg }

// RepoDir returns the repo dir.
func (n *Node) RepoDir() string { return n.repo }

// Logger returns the node's logger; subsystems take
// Logger().With("subsystem", name).
func (n *Node) Logger() *slog.Logger { return n.log }

// Metrics returns the node's prometheus registry, served at /metrics.
func (n *Node) Metrics() *prometheus.Registry { return n.metrics }

// Network returns the network name.
func (n *Node) Network() string { return n.cfg.Network.Name }

// APIAddr returns the host:port the API listens on.
func (n *Node) APIAddr() string { return n.api.addr }

func (n *Node) startDatastore(context.Context) error {
	dir := filepath.Join(n.repo, DatastoreDirName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	// Tuned for payload blocks: value separation, no compression.
	ds, err := pebbleds.NewDatastore(dir, pebbleds.WithCacheSize(blocks.PebbleCacheSize), pebbleds.WithPebbleOpts(blocks.PebbleOptions()))
	if err != nil {
		return fmt.Errorf("open pebble datastore %s (is the repo corrupt? restore it from a backup): %w", dir, err)
	}
	n.ds = ds
	n.onClose("datastore", ds.Close)
	return nil
}

func (n *Node) startDHT(ctx context.Context) error {
	boot, err := ParseBootstrap(n.cfg.Network.Bootstrap)
	if err != nil {
		return err
	}
	d, err := sdht.New(n.host, sdht.Config{
		Network:     n.cfg.Network.Name,
		Bootstrap:   boot,
		Datastore:   n.Namespace("dht"),
		MinInterval: n.cfg.Network.DiscoveryMin.Std(),
		MaxInterval: n.cfg.Network.DiscoveryMax.Std(),
		Logger:      n.log.With("subsystem", "dht"),
	})
	if err != nil {
		return err
	}
	n.disc = d
	n.onClose("dht", d.Close)
	return nil
}

// startDiscovery joins the network: it runs after every subsystem has
// registered its protocols, so peers that connect see all of them.
func (n *Node) startDiscovery(ctx context.Context) error {
	return n.disc.Start(ctx)
}

// idontwantThreshold is the size from which a node that receives a gossip
// message tells its other mesh peers not to send it a copy (gossipsub's
// IDONTWANT; the library's default is 1 KiB). Below it the control message
// costs about what the copy it may save does: a frame, a write and a read
// per mesh peer, and it rarely arrives before the copy is sent. Results
// announcements, adverts and checkpoints are a few KiB, so with the default
// every node sent one IDONTWANT per mesh peer for nearly every message:
// more frames than the messages themselves (docs/protocol.md, "Gossip").
const idontwantThreshold = 16 << 10

// gossipSubParams returns gossipsub's default parameters with Shoal's
// IDONTWANT threshold.
func gossipSubParams() pubsub.GossipSubParams {
	p := pubsub.DefaultGossipSubParams()
	p.IDontWantMessageThreshold = idontwantThreshold
	return p
}

// startPubSub starts gossipsub on a context of its own, canceled by its
// closer: subsystems that registered later leave their topics first.
func (n *Node) startPubSub(context.Context) error {
	gm, err := newGossipMetrics(n.metrics)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	opts := append(capacity.MessagePolicy(),
		pubsub.WithPeerExchange(true),
		// A verdict or a checkpoint published before the topic's mesh has
		// formed still reaches every subscribed peer.
		pubsub.WithFloodPublish(true),
		// The topic validators run inline on pubsub's validation workers
		// (no goroutine, and no fresh stack to grow, per message); a deeper
		// queue absorbs bursts of announcements instead of dropping them.
		pubsub.WithValidateQueueSize(1024),
		pubsub.WithPeerScore(n.pubSubScoreParams(), capacity.PeerScoreThresholds()),
		pubsub.WithGossipSubParams(gossipSubParams()),
		pubsub.WithRawTracer(gm),
	)
	ps, err := pubsub.NewGossipSub(ctx, n.host, opts...)
	if err != nil {
		cancel()
		return fmt.Errorf("gossipsub: %w", err)
	}
	n.ps = ps
	n.onClose("pubsub", func() error { cancel(); return nil })
	return nil
}
