package capacity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoalnet/shoal/crypto"
)

// An Entry is one peer's newest valid advert in a capacity view.
type Entry struct {
	Advert
	Received time.Time     // local time the advert arrived (for the node's own advert: was published)
	Age      time.Duration // time since Received when the view was taken
	Self     bool          // the advert is this node's own

	msgID string // gossipsub message ID that delivered the advert ("" for own adverts)
}

// A Service publishes this node's capacity adverts and keeps the capacity
// view of its network: the newest valid advert of every peer, including its
// own, until that advert expires. Its methods are safe for concurrent use.
type Service struct {
	cfg     config
	key     crypto.PrivKey
	self    peer.ID
	network string
	ps      *pubsub.PubSub
	topic   *pubsub.Topic
	sub     *pubsub.Subscription
	events  *pubsub.TopicEventHandler
	log     *slog.Logger
	m       *metrics

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	kick     chan struct{} // capacity 1: asks the publisher to publish now
	joinKick chan struct{} // capacity 1: a neighbour joined the topic

	setMu   sync.Mutex // guards total, free, lastSeq
	total   int
	free    int
	lastSeq uint64

	mu      sync.Mutex // guards entries, changed
	entries map[peer.ID]*Entry
	changed chan struct{} // closed and replaced on every change of entries
}

// New joins the capacity topic of network on ps, registers the topic
// validator, publishes the node's first advert and returns the running
// Service. key must be h's identity key: it signs the node's adverts.
// ps should use MessagePolicy (the options in PubSubOptions). ctx bounds
// only the first publication; the Service runs
// until Close.
//
// Defaults: slots = number of CPUs (all free), runtimes = [wasm], cores and
// memory detected, no labels, empty version, expiry DefaultExpiry (30 s),
// heartbeat DefaultHeartbeat (10 s, with ±10% jitter), min interval
// DefaultMinInterval (100 ms), logs discarded, metrics not registered.
//
// Peer scoring for the topic needs PubSubOptions at pubsub.NewGossipSub
// time; without it New still works, and logs a warning.
func New(ctx context.Context, ps *pubsub.PubSub, h host.Host, key crypto.PrivKey, network string, opts ...Option) (*Service, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if network == "" || len(network) > MaxNetworkLen || !printable(network) {
		return nil, fmt.Errorf("capacity: network name %q: want 1..%d printable ASCII bytes", network, MaxNetworkLen)
	}
	self, err := crypto.PeerID(key)
	if err != nil {
		return nil, err
	}
	if self != h.ID() {
		return nil, fmt.Errorf("capacity: key is peer %s but the host is %s: pass the host's identity key", self, h.ID())
	}
	s := &Service{
		cfg:      cfg,
		key:      key,
		self:     self,
		network:  network,
		ps:       ps,
		log:      cfg.logger,
		kick:     make(chan struct{}, 1),
		joinKick: make(chan struct{}, 1),
		total:    cfg.slots,
		free:     cfg.slots,
		entries:  make(map[peer.ID]*Entry),
		changed:  make(chan struct{}),
	}
	m, err := newMetrics(cfg.registerer, s.viewSize)
	if err != nil {
		return nil, err
	}
	s.m = m
	s.ctx, s.cancel = context.WithCancel(context.Background())

	name := Topic(network)
	if err := ps.RegisterTopicValidator(name, s.validate, pubsub.WithValidatorInline(true)); err != nil {
		m.unregister()
		return nil, fmt.Errorf("capacity: register validator for topic %s: %w", name, err)
	}
	fail := func(err error) (*Service, error) {
		if s.events != nil {
			s.events.Cancel()
		}
		if s.sub != nil {
			s.sub.Cancel()
		}
		if s.topic != nil {
			s.topic.Close()
		}
		ps.UnregisterTopicValidator(name)
		m.unregister()
		s.cancel()
		return nil, err
	}
	if s.topic, err = ps.Join(name); err != nil {
		return fail(fmt.Errorf("capacity: join topic %s: %w", name, err))
	}
	if err := s.topic.SetScoreParams(TopicScoreParams()); err != nil {
		s.log.Warn("capacity adverts are not scored; pass capacity.PubSubOptions to pubsub.NewGossipSub", "topic", name, "err", err)
	}
	if s.sub, err = s.topic.Subscribe(); err != nil {
		return fail(fmt.Errorf("capacity: subscribe to topic %s: %w", name, err))
	}
	if s.events, err = s.topic.EventHandler(); err != nil {
		return fail(fmt.Errorf("capacity: watch peers of topic %s: %w", name, err))
	}
	if err := s.publish(ctx); err != nil {
		return fail(err)
	}
	s.wg.Add(4)
	go s.readLoop()
	go s.joinLoop()
	go s.publishLoop()
	go s.pruneLoop()
	return s, nil
}

// Close stops publishing, leaves the topic and unregisters the validator
// and the metrics. It returns the first error and may be called more than once.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.events.Cancel()
		s.sub.Cancel()
		s.wg.Wait()
		// When the PubSub has stopped first, its topics and validators are
		// gone with it and these calls report its canceled context.
		var errs []error
		if err := s.topic.Close(); err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("capacity: close topic: %w", err))
		}
		if err := s.ps.UnregisterTopicValidator(s.topic.String()); err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("capacity: unregister validator: %w", err))
		}
		s.m.unregister()
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Self returns this node's peer ID.
func (s *Service) Self() peer.ID { return s.self }

// Network returns the network name the Service advertises in.
func (s *Service) Network() string { return s.network }

// Slots returns this node's total and free job slots as last set.
func (s *Service) Slots() (total, free int) {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	return s.total, s.free
}

// SetSlots sets this node's total and free job slots and publishes a new
// advert at once (or, if the last one went out less than the min interval
// ago, as soon as that interval is over; changes within it are coalesced).
func (s *Service) SetSlots(total, free int) error {
	if total < 0 || total > MaxSlots || free < 0 || free > total {
		return fmt.Errorf("capacity: slots total=%d free=%d: want 0 ≤ free ≤ total ≤ %d", total, free, MaxSlots)
	}
	s.setMu.Lock()
	s.total, s.free = total, free
	s.setMu.Unlock()
	s.poke()
	return nil
}

// SetFree sets this node's free job slots and publishes like SetSlots.
func (s *Service) SetFree(free int) error {
	s.setMu.Lock()
	if free < 0 || free > s.total {
		total := s.total
		s.setMu.Unlock()
		return fmt.Errorf("capacity: free slots %d: want 0..%d (the total)", free, total)
	}
	s.free = free
	s.setMu.Unlock()
	s.poke()
	return nil
}

// SetTotal changes the total number of job slots and keeps the number of
// busy ones (total − free): free becomes max(0, total − busy). It
// publishes like SetSlots and returns the new free count.
func (s *Service) SetTotal(total int) (free int, err error) {
	if total < 0 || total > MaxSlots {
		return 0, fmt.Errorf("capacity: slots %d: want 0..%d", total, MaxSlots)
	}
	s.setMu.Lock()
	busy := s.total - s.free
	s.total, s.free = total, max(0, total-busy)
	free = s.free
	s.setMu.Unlock()
	s.poke()
	return free, nil
}

// slots returns the total and free slots now.
func (s *Service) slots() [2]int {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	return [2]int{s.total, s.free}
}

func (s *Service) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// View returns the capacity view: the newest unexpired valid advert of
// every peer, this node's own included, sorted by peer ID. The entries are
// copies the caller may keep and change.
func (s *Service) View() []Entry {
	now := s.cfg.now()
	s.mu.Lock()
	out := make([]Entry, 0, len(s.entries))
	for _, e := range s.entries {
		if !e.Expiry.After(now) {
			continue
		}
		c := *e
		c.Runtimes = slices.Clone(e.Runtimes)
		c.Labels = maps.Clone(e.Labels)
		c.Age = max(0, now.Sub(e.Received))
		out = append(out, c)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Entry) int {
		switch {
		case a.Peer < b.Peer:
			return -1
		case a.Peer > b.Peer:
			return 1
		}
		return 0
	})
	return out
}

// Lookup returns the view's entry of peer p and whether there is one.
func (s *Service) Lookup(p peer.ID) (Entry, bool) {
	now := s.cfg.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[p]
	if !ok || !e.Expiry.After(now) {
		return Entry{}, false
	}
	c := *e
	c.Runtimes = slices.Clone(e.Runtimes)
	c.Labels = maps.Clone(e.Labels)
	c.Age = max(0, now.Sub(e.Received))
	return c, true
}

// Changed returns a channel that is closed at the next change of the view
// (an advert added, replaced or expired). Call Changed before View to wait
// for changes without missing one:
//
//	for {
//		ch := svc.Changed()
//		pick(svc.View())
//		select {
//		case <-ch:
//		case <-ctx.Done():
//			return
//		}
//	}
func (s *Service) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *Service) viewSize() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// notifyLocked wakes the waiters of Changed. s.mu must be held.
func (s *Service) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// insert puts a, delivered in gossipsub message msgID, into the view
// unless the view holds the same or a newer advert of its peer.
func (s *Service) insert(a *Advert, msgID string, received time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, known := s.entries[a.Peer]
	if known && e.Seq >= a.Seq {
		return
	}
	s.entries[a.Peer] = &Entry{Advert: *a, Received: received, Self: a.Peer == s.self, msgID: msgID}
	s.notifyLocked()
	if !known && a.Peer != s.self {
		s.pokeJoin() // a newcomer, perhaps not a neighbour: tell it about us
	}
}

// prune drops the adverts that expired by now.
func (s *Service) prune(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	removed := false
	for p, e := range s.entries {
		if !e.Expiry.After(now) {
			delete(s.entries, p)
			removed = true
		}
	}
	if removed {
		s.notifyLocked()
	}
}

// check applies every receiver rule to a sealed advert delivered in
// gossipsub message msgID (a hash of the data; see MessagePolicy), at time
// now, and returns the advert or a *RejectError.
func (s *Service) check(msgID string, data []byte, now time.Time) (Advert, error) {
	a, err := OpenAdvert(data)
	if err != nil {
		return Advert{}, err
	}
	if a.Network != s.network {
		return Advert{}, reject(ReasonNetwork, "advert is for network %q, this is %q", a.Network, s.network)
	}
	if !a.Expiry.After(now) {
		return Advert{}, reject(ReasonExpired, "advert expired at %s, now is %s", a.Expiry.UTC().Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339Nano))
	}
	if limit := now.Add(MaxTTL + MaxClockSkew); a.Expiry.After(limit) {
		return Advert{}, reject(ReasonFarExpiry, "advert expires at %s, after the limit %s (now + %v)", a.Expiry.UTC().Format(time.RFC3339), limit.UTC().Format(time.RFC3339), MaxTTL+MaxClockSkew)
	}
	s.mu.Lock()
	e, ok := s.entries[a.Peer]
	s.mu.Unlock()
	switch {
	case !ok || a.Seq > e.Seq:
	case a.Seq < e.Seq:
		return Advert{}, reject(ReasonStale, "advert of peer %s has seq %d, older than %d", a.Peer, a.Seq, e.Seq)
	case msgID != "" && msgID == e.msgID:
		return Advert{}, reject(ReasonDuplicate, "advert of peer %s, seq %d, is already in the view", a.Peer, a.Seq)
	default:
		return Advert{}, reject(ReasonReplay, "advert of peer %s with seq %d was published again in another message", a.Peer, a.Seq)
	}
	return a, nil
}

// validate is the topic validator.
func (s *Service) validate(_ context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	a, err := s.check(msg.ID, msg.Data, s.cfg.now())
	if err != nil {
		reason := ReasonOf(err)
		if reason.Ignored() {
			s.m.ignored.WithLabelValues(string(reason)).Inc()
			return pubsub.ValidationIgnore
		}
		s.m.rejected.WithLabelValues(string(reason)).Inc()
		s.log.Debug("rejected capacity advert", "from", from, "reason", string(reason), "err", err)
		return pubsub.ValidationReject
	}
	msg.ValidatorData = &a
	return pubsub.ValidationAccept
}

func (s *Service) readLoop() {
	defer s.wg.Done()
	for {
		msg, err := s.sub.Next(s.ctx)
		if err != nil {
			return
		}
		a, ok := msg.ValidatorData.(*Advert)
		if !ok {
			continue // every delivered message went through validate
		}
		s.m.accepted.Inc()
		s.insert(a, msg.ID, s.cfg.now())
	}
}

// publish seals and publishes an advert of the current settings, and puts
// it into the view.
func (s *Service) publish(ctx context.Context) error {
	now := s.cfg.now()
	s.setMu.Lock()
	s.lastSeq = max(s.lastSeq+1, uint64(now.UnixNano()))
	a := Advert{
		Peer:        s.self,
		Network:     s.network,
		Seq:         s.lastSeq,
		Expiry:      time.UnixMilli(now.Add(s.cfg.expiry).UnixMilli()),
		SlotsTotal:  s.total,
		SlotsFree:   s.free,
		Cores:       s.cfg.cores,
		MemoryBytes: s.cfg.memory,
		Runtimes:    s.cfg.runtimes,
		Version:     s.cfg.version,
		Labels:      s.cfg.labels,
	}
	s.setMu.Unlock()
	data, err := a.Seal(s.key)
	if err != nil {
		return fmt.Errorf("capacity: seal own advert: %w", err)
	}
	if err := s.topic.Publish(ctx, data); err != nil {
		return fmt.Errorf("capacity: publish advert on %s: %w", s.topic, err)
	}
	s.m.published.Inc()
	s.insert(&a, "", s.cfg.now())
	return nil
}

// jitter returns d ± 10%.
func jitter(d time.Duration) time.Duration {
	return d - d/10 + rand.N(d/5+1)
}

// joinLoop asks for an advert when a neighbour joins the topic: a
// newcomer has no adverts of the others until they publish again. (insert
// does the same for a peer new to the view, who may be further away.)
func (s *Service) joinLoop() {
	defer s.wg.Done()
	for {
		ev, err := s.events.NextPeerEvent(s.ctx)
		if err != nil {
			return
		}
		if ev.Type == pubsub.PeerJoin {
			s.pokeJoin()
		}
	}
}

func (s *Service) pokeJoin() {
	select {
	case s.joinKick <- struct{}{}:
	default:
	}
}

// joinInterval is the shortest time between two adverts sent because
// neighbours joined; joins within it share one advert.
func (s *Service) joinInterval() time.Duration {
	return min(time.Second, s.cfg.heartbeat/2)
}

// publishLoop publishes on changes (kick), on neighbours' joins (joinKick,
// at most once per joinInterval) and on the heartbeat.
func (s *Service) publishLoop() {
	defer s.wg.Done()
	last := s.cfg.now()
	var lastJoin time.Time
	published := [2]int{-1, -1} // total and free slots of the last advert
	timer := time.NewTimer(jitter(s.cfg.heartbeat))
	defer timer.Stop()
	sleepUntil := func(t time.Time) bool {
		if wait := t.Sub(s.cfg.now()); wait > 0 {
			select {
			case <-s.ctx.Done():
				return false
			case <-time.After(wait):
			}
		}
		return true
	}
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.kick:
			// Let the change settle for half the minimum interval first, so
			// that a job shorter than that never shows in an advert.
			at := s.cfg.now().Add(s.cfg.minInterval / 2)
			if next := last.Add(s.cfg.minInterval); next.After(at) {
				at = next
			}
			if !sleepUntil(at) {
				return
			}
			if s.slots() == published {
				// The slots changed and changed back (a short job came and
				// went): the last advert still says the truth.
				continue
			}
		case <-s.joinKick:
			if !sleepUntil(lastJoin.Add(s.joinInterval())) || !sleepUntil(last.Add(s.cfg.minInterval)) {
				return
			}
			lastJoin = s.cfg.now()
		case <-timer.C:
		}
		for _, ch := range []chan struct{}{s.kick, s.joinKick} { // one advert answers them all
			select {
			case <-ch:
			default:
			}
		}
		if err := s.publish(s.ctx); err != nil {
			if s.ctx.Err() != nil {
				return
			}
			s.log.Warn("capacity advert not published; retrying at the next heartbeat", "err", err)
			published = [2]int{-1, -1}
		} else {
			published = s.slots()
		}
		last = s.cfg.now()
		timer.Reset(jitter(s.cfg.heartbeat))
	}
}

func (s *Service) pruneLoop() {
	defer s.wg.Done()
	every := min(max(s.cfg.expiry/10, 10*time.Millisecond), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.prune(s.cfg.now())
		}
	}
}
