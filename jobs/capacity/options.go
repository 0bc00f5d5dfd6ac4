package capacity

import (
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of New. A busy worker's free slots change with every job that
// starts or ends, and each advert is flooded to every peer and checked
// there; but submitters choose workers by the free slots they last heard
// of, so a longer DefaultMinInterval sends more offers to full workers (at
// 400 ms, three times as many were declined as busy in a 5-node testnet
// under load; docs/performance.md).
const (
	DefaultExpiry      = 30 * time.Second
	DefaultHeartbeat   = 10 * time.Second
	DefaultMinInterval = 100 * time.Millisecond
)

// MaxTTL is the longest lifetime an advert may claim; with MaxClockSkew it
// bounds how far in the future a received advert's expiry may lie.
const (
	MaxTTL       = 5 * time.Minute
	MaxClockSkew = 10 * time.Second
)

// An Option configures New. Each option checks its own argument.
type Option func(*config) error

type config struct {
	slots       int
	labels      map[string]string
	version     string
	runtimes    []string
	cores       int
	memory      int64
	expiry      time.Duration
	heartbeat   time.Duration
	minInterval time.Duration
	logger      *slog.Logger
	registerer  prometheus.Registerer
	now         func() time.Time
}

func defaultConfig() config {
	return config{
		slots:       runtime.NumCPU(),
		runtimes:    []string{RuntimeWasm},
		cores:       runtime.NumCPU(),
		memory:      totalMemory(),
		expiry:      DefaultExpiry,
		heartbeat:   DefaultHeartbeat,
		minInterval: DefaultMinInterval,
		logger:      slog.New(slog.DiscardHandler),
		now:         time.Now,
	}
}

// WithSlots sets the number of job slots offered (all free at start).
func WithSlots(n int) Option {
	return func(c *config) error {
		if n < 0 || n > MaxSlots {
			return fmt.Errorf("capacity: slots = %d: want 0..%d", n, MaxSlots)
		}
		c.slots = n
		return nil
	}
}

// WithLabels sets the advert's labels (see ValidLabel and ParseLabels).
func WithLabels(labels map[string]string) Option {
	return func(c *config) error {
		if len(labels) > MaxLabels {
			return fmt.Errorf("capacity: %d labels, want at most %d", len(labels), MaxLabels)
		}
		m := make(map[string]string, len(labels))
		for k, v := range labels {
			if err := ValidLabel(k, v); err != nil {
				return fmt.Errorf("capacity: %w", err)
			}
			m[k] = v
		}
		c.labels = m
		return nil
	}
}

// WithVersion sets the software version the advert reports.
func WithVersion(v string) Option {
	return func(c *config) error {
		if len(v) > MaxVersionLen || !printable(v) {
			return fmt.Errorf("capacity: version %q: want at most %d printable ASCII bytes", v, MaxVersionLen)
		}
		c.version = v
		return nil
	}
}

// WithRuntimes sets the runtimes offered, replacing the default [RuntimeWasm].
func WithRuntimes(names ...string) Option {
	return func(c *config) error {
		if len(names) > MaxRuntimes {
			return fmt.Errorf("capacity: %d runtimes, want at most %d", len(names), MaxRuntimes)
		}
		for _, n := range names {
			if err := ValidRuntime(n); err != nil {
				return fmt.Errorf("capacity: %w", err)
			}
		}
		c.runtimes = append([]string(nil), names...)
		return nil
	}
}

// WithResources overrides the detected cores and memory bytes.
func WithResources(cores int, memoryBytes int64) Option {
	return func(c *config) error {
		if cores < 0 || cores > MaxCores || memoryBytes < 0 {
			return fmt.Errorf("capacity: resources cores=%d memory=%d: want 0..%d cores and memory ≥ 0", cores, memoryBytes, MaxCores)
		}
		c.cores, c.memory = cores, memoryBytes
		return nil
	}
}

// WithTiming sets the lifetime of the node's adverts and the heartbeat
// that republishes them. The heartbeat must be at most half the expiry so
// that one lost advert does not void the node's offer, and the expiry at most MaxTTL.
func WithTiming(expiry, heartbeat time.Duration) Option {
	return func(c *config) error {
		if expiry <= 0 || expiry > MaxTTL {
			return fmt.Errorf("capacity: expiry %v: want more than 0 and at most %v", expiry, MaxTTL)
		}
		if heartbeat <= 0 || heartbeat > expiry/2 {
			return fmt.Errorf("capacity: heartbeat %v: want more than 0 and at most half the expiry (%v)", heartbeat, expiry/2)
		}
		c.expiry, c.heartbeat = expiry, heartbeat
		return nil
	}
}

// WithMinInterval sets the shortest time between two adverts of this node:
// changes that come faster are coalesced into the next advert.
func WithMinInterval(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("capacity: min interval %v: want ≥ 0", d)
		}
		c.minInterval = d
		return nil
	}
}

// WithLogger sets the logger; rejected adverts are logged at Debug.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("capacity: nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithRegisterer registers the service's metrics on r.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(c *config) error {
		c.registerer = r
		return nil
	}
}
