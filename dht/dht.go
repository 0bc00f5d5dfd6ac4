// Package dht implements how a Shoal node finds its network: a Kademlia DHT
// in server mode on the protocol prefix /shoal (protocol /shoal/kad/1.0.0),
// joined through bootstrap peers, and rendezvous discovery in which every
// node of network N advertises itself as a provider of the key shoal:N and
// connects to the other providers it finds, again and again.
//
// The DHT keeps loopback and private addresses: Shoal networks are often
// one machine (a testnet) or one LAN, and kad-dht's public-network address
// filters would drop exactly those peers. See docs/protocol.md, "Discovery".
package dht

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
	"github.com/multiformats/go-multihash"
)

// ProtocolPrefix is the prefix of Shoal's DHT protocols: /shoal/kad/1.0.0.
const ProtocolPrefix = "/shoal"

// MemberTag is the connection manager tag that protects connections to
// members of the node's network found by rendezvous.
const MemberTag = "shoal-network"

// Rendezvous returns the rendezvous key of network: "shoal:<network>".
func Rendezvous(network string) string { return "shoal:" + network }

// RendezvousCID returns the CID whose providers are the members of
// network: CIDv1, codec raw, sha2-256 of the bytes of Rendezvous(network)
// (the rule of libp2p's p2p/discovery/routing).
func RendezvousCID(network string) cid.Cid {
	mh, err := multihash.Sum([]byte(Rendezvous(network)), multihash.SHA2_256, -1)
	if err != nil {
		panic("dht: sha2-256 cannot fail: " + err.Error())
	}
	return cid.NewCidV1(cid.Raw, mh)
}

// A Config configures [New].
type Config struct {
	// Network is the network name; required.
	Network string
	// Bootstrap are the peers to join through; empty for the first node.
	Bootstrap []peer.AddrInfo
	// Datastore holds DHT records (provider and value records); nil keeps
	// them in memory.
	Datastore datastore.Batching
	// MinInterval and MaxInterval bound the wait between two rendezvous
	// lookups: it starts at MinInterval, doubles after each lookup that
	// finds no new peer, and falls back to MinInterval when one appears.
	// Defaults 250ms and 1m.
	MinInterval, MaxInterval time.Duration
	// BootstrapTimeout bounds the first connection to the bootstrap peers.
	// Default 15s.
	BootstrapTimeout time.Duration
	// Logger receives discovery events; nil discards them.
	Logger *slog.Logger
}

// A Discovery is a node's DHT and its rendezvous loops. Its methods are
// safe for concurrent use.
type Discovery struct {
	h    host.Host
	kad  *kaddht.IpfsDHT
	rd   *drouting.RoutingDiscovery
	cfg  Config
	log  *slog.Logger
	ns   string
	wake chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu      sync.Mutex
	members map[peer.ID]time.Time // guarded by mu: network members and when last found
}

// New creates the DHT on h in server mode. It does not dial anyone: call
// [Discovery.Start] to join the network.
func New(h host.Host, cfg Config) (*Discovery, error) {
	if cfg.Network == "" {
		return nil, errors.New("dht: Config.Network is empty")
	}
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = 250 * time.Millisecond
	}
	if cfg.MaxInterval < cfg.MinInterval {
		cfg.MaxInterval = max(time.Minute, cfg.MinInterval)
	}
	if cfg.BootstrapTimeout <= 0 {
		cfg.BootstrapTimeout = 15 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := []kaddht.Option{
		kaddht.Mode(kaddht.ModeServer),
		kaddht.ProtocolPrefix(ProtocolPrefix),
		kaddht.BootstrapPeers(cfg.Bootstrap...),
		// Keep every address and peer: loopback and LAN networks are first-class.
		kaddht.AddressFilter(nil),
		kaddht.QueryFilter(func(_ any, ai peer.AddrInfo) bool { return true }),
		kaddht.RoutingTableFilter(func(_ any, _ peer.ID) bool { return true }),
	}
	if cfg.Datastore != nil {
		opts = append(opts, kaddht.Datastore(cfg.Datastore))
	}
	kad, err := kaddht.New(h, opts...)
	if err != nil {
		return nil, fmt.Errorf("dht: start kademlia on %s: %w", ProtocolPrefix, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Discovery{
		h:       h,
		kad:     kad,
		rd:      drouting.NewRoutingDiscovery(kad),
		cfg:     cfg,
		log:     log,
		ns:      Rendezvous(cfg.Network),
		wake:    make(chan struct{}, 1),
		ctx:     ctx,
		cancel:  cancel,
		members: make(map[peer.ID]time.Time),
	}, nil
}

// DHT returns the underlying kad-dht, for content routing (Provide,
// FindProvidersAsync) by other subsystems.
func (d *Discovery) DHT() *kaddht.IpfsDHT { return d.kad }

// Start connects to the bootstrap peers and starts the advertise and
// lookup loops, which run until Close. It fails when bootstrap peers are
// configured and none of them can be reached before the bootstrap timeout
// or ctx ends.
func (d *Discovery) Start(ctx context.Context) error {
	if len(d.cfg.Bootstrap) > 0 {
		if err := d.connectBootstrap(ctx); err != nil {
			return err
		}
	}
	if err := d.kad.Bootstrap(ctx); err != nil {
		return fmt.Errorf("dht: bootstrap: %w", err)
	}
	d.wg.Add(2)
	go d.advertiseLoop()
	go d.findLoop()
	return nil
}

func (d *Discovery) connectBootstrap(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.BootstrapTimeout)
	defer cancel()
	var (
		mu   sync.Mutex
		ok   int
		errs []error
		wg   sync.WaitGroup
	)
	for _, ai := range d.cfg.Bootstrap {
		if ai.ID == d.h.ID() {
			mu.Lock()
			ok++
			mu.Unlock()
			continue
		}
		wg.Go(func() {
			err := d.h.Connect(ctx, ai)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				// One line: libp2p lists each failed address on a line of its own.
				errs = append(errs, fmt.Errorf("%s: %s", ai.ID, strings.Join(strings.Fields(err.Error()), " ")))
				return
			}
			ok++
			d.h.ConnManager().Protect(ai.ID, "shoal-bootstrap")
		})
	}
	wg.Wait()
	if ok == 0 {
		return fmt.Errorf("dht: none of the %d bootstrap peers answered (%w); check that they run and that network.bootstrap in config.toml is right",
			len(d.cfg.Bootstrap), errors.Join(errs...))
	}
	for _, err := range errs {
		d.log.Warn("bootstrap peer unreachable", "err", err)
	}
	return nil
}

// advertiseLoop keeps this node's provider record for the rendezvous key
// alive. A failed advertisement (no DHT peers yet) is retried quickly.
func (d *Discovery) advertiseLoop() {
	defer d.wg.Done()
	retry := d.cfg.MinInterval
	for {
		ttl, err := d.rd.Advertise(d.ctx, d.ns)
		wait := ttl * 7 / 8
		if err != nil {
			if d.ctx.Err() != nil {
				return
			}
			d.log.Debug("advertise failed; retrying", "rendezvous", d.ns, "in", retry, "err", err)
			wait = retry
			retry = min(2*retry, d.cfg.MaxInterval)
		} else {
			d.log.Debug("advertised", "rendezvous", d.ns, "ttl", ttl)
			retry = d.cfg.MinInterval
			// Look right away: the lookup that follows an advertisement
			// finds every node that advertised before.
			d.Wake()
		}
		if !sleep(d.ctx, wait) {
			return
		}
	}
}

// Wake asks the lookup loop to look for peers now.
func (d *Discovery) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *Discovery) findLoop() {
	defer d.wg.Done()
	wait := d.cfg.MinInterval
	for {
		found := d.findOnce(d.ctx)
		if found > 0 {
			wait = d.cfg.MinInterval
		} else {
			wait = min(2*wait, d.cfg.MaxInterval)
		}
		t := time.NewTimer(wait)
		select {
		case <-d.ctx.Done():
			t.Stop()
			return
		case <-d.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// findOnce looks up the rendezvous key and connects to the members it is
// not connected to. It returns how many new members it connected to.
func (d *Discovery) findOnce(ctx context.Context) int {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ch, err := d.rd.FindPeers(ctx, d.ns)
	if err != nil {
		d.log.Debug("find peers failed", "rendezvous", d.ns, "err", err)
		return 0
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		added int
	)
	for ai := range ch {
		if ai.ID == d.h.ID() || ai.ID == "" {
			continue
		}
		known := d.markMember(ai.ID)
		if d.h.Network().Connectedness(ai.ID) == network.Connected {
			continue
		}
		if len(ai.Addrs) == 0 {
			continue
		}
		wg.Go(func() {
			cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
			defer ccancel()
			if err := d.h.Connect(cctx, ai); err != nil {
				d.log.Debug("connect to network member failed", "peer", ai.ID, "err", err)
				return
			}
			d.log.Debug("connected to network member", "peer", ai.ID)
			mu.Lock()
			if !known {
				added++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return added
}

func (d *Discovery) markMember(id peer.ID) (known bool) {
	d.mu.Lock()
	_, known = d.members[id]
	d.members[id] = time.Now()
	d.mu.Unlock()
	if !known {
		d.h.ConnManager().TagPeer(id, MemberTag, 10)
	}
	return known
}

// IsMember reports whether p was found under this network's rendezvous key.
func (d *Discovery) IsMember(p peer.ID) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.members[p]
	return ok
}

// Close stops the loops and the DHT. It does not close the host.
func (d *Discovery) Close() error {
	var err error
	d.once.Do(func() {
		d.cancel()
		d.wg.Wait()
		if cerr := d.kad.Close(); cerr != nil {
			err = fmt.Errorf("dht: close: %w", cerr)
		}
	})
	return err
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
