package node

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// ConfigFileName is the name of the config file inside a repo.
const ConfigFileName = "config.toml"

// maxConfigSize bounds the config file a node agrees to read.
const maxConfigSize = 1 << 20

// A Config is the content of REPO/config.toml: one table per area. Every
// field carries a `comment` tag that [WriteConfig] writes above it, so the
// file documents itself. An area adds its settings as fields of its own
// table type (with toml and comment tags) and, when it has rules, a
// `Validate() error` method on a pointer to that type, which
// [Config.Validate] calls.
type Config struct {
	Network NetworkConfig `toml:"network" comment:"Which network this node joins and how it finds it."`
	P2P     P2PConfig     `toml:"p2p" comment:"The libp2p host: where it listens and how many connections it keeps."`
	API     APIConfig     `toml:"api" comment:"The HTTP+JSON API the shoal CLI talks to (guarded by the token in the api-token file)."`
	Log     LogConfig     `toml:"log" comment:"Logging of the daemon (to stderr)."`
	Jobs    JobsConfig    `toml:"jobs" comment:"Running jobs for others."`
	Blocks  BlocksConfig  `toml:"blocks" comment:"The block store that holds payloads (modules, inputs, outputs)."`
	Ledger  LedgerConfig  `toml:"ledger" comment:"The node's signed, append-only ledger."`
}

// NetworkConfig is the [network] table.
type NetworkConfig struct {
	// Name separates networks: nodes meet under the rendezvous key shoal:<name>.
	Name string `toml:"name" comment:"Network name; only nodes with the same name find each other. Default \"shoal\"."`
	// Bootstrap lists the multiaddrs (with /p2p/<peer ID>) of nodes to join through.
	Bootstrap []string `toml:"bootstrap" comment:"Multiaddrs of nodes to join through, each ending in /p2p/<peer ID>. Example: [\"/ip4/192.0.2.7/tcp/4001/p2p/12D3KooW...\"]. Default: none (this node starts a network)."`
	// DiscoveryMin and DiscoveryMax bound the interval between two rendezvous lookups.
	DiscoveryMin Duration `toml:"discovery_min" comment:"Shortest wait between two lookups of the network's peers in the DHT; the wait doubles up to discovery_max while no new peer shows up. Default \"250ms\"."`
	DiscoveryMax Duration `toml:"discovery_max" comment:"Longest wait between two lookups of the network's peers. Default \"1m\"."`
}

// P2PConfig is the [p2p] table.
type P2PConfig struct {
	Listen        []string `toml:"listen" comment:"Multiaddrs the libp2p host listens on (TCP and QUIC). Port 0 picks a free port. Default [\"/ip4/0.0.0.0/tcp/4001\", \"/ip4/0.0.0.0/udp/4001/quic-v1\"]."`
	ConnLowWater  int      `toml:"conn_low_water" comment:"The connection manager trims connections down to this many once conn_high_water is passed. Default 100."`
	ConnHighWater int      `toml:"conn_high_water" comment:"Connection count above which the connection manager starts trimming. Default 400."`
}

// APIConfig is the [api] table.
type APIConfig struct {
	Address          string `toml:"address" comment:"host:port the HTTP API listens on; port 0 picks a free port (the bound address is written to REPO/api). Default \"127.0.0.1:5080\"."`
	AllowNonLoopback bool   `toml:"allow_non_loopback" comment:"Set to true to allow an address other than 127.0.0.1 or [::1]; anyone who can reach it and holds the token controls the node. Default false."`
}

// LogConfig is the [log] table.
type LogConfig struct {
	Level string `toml:"level" comment:"Least severe level logged: \"debug\", \"info\", \"warn\" or \"error\". Default \"info\"."`
}

// JobsConfig is the [jobs] table.
type JobsConfig struct {
	Slots int `toml:"slots" comment:"How many jobs this node runs at once for the network (0 offers none). Default: the number of CPU cores when the repo was made."`
	// Labels are key=value strings published in the node's capacity advert.
	Labels []string `toml:"labels" comment:"Labels published in this node's capacity advert, each \"key=value\" (at most 16; keys of letters, digits, '.', '_', '-', '/'; values without spaces). Example: [\"region=eu\"]. Default: none."`
	// Queue is how many offers the worker accepts beyond its free slots;
	// they wait for a slot. A file without the key gets 2 × Slots.
	Queue int `toml:"queue" comment:"How many offers from peers this node accepts beyond its free slots; they wait for a slot to free up (0: offers beyond the free slots are declined). 0 to 4096. Default: twice slots."`
	// AllowSelf lets the scheduler pick this node for the jobs it submits.
	AllowSelf bool `toml:"allow_self" comment:"Set to true to let the scheduler pick this node like any other for the jobs it submits; when false, it runs a replica of its own job only when no other peer can. Default false."`
	// Retries is how many offers a submitted job may make beyond one per replica.
	Retries int `toml:"retries" comment:"How many more offers a job this node submits may make beyond one per replica, when workers fail or do not answer (declines for lack of a free slot do not count). 0 (a failed replica is not offered again) to 100. Default 3."`
	// CommitWait is how long the manager waits, after the first replica's commitment, for the others.
	CommitWait Duration `toml:"commit_wait" comment:"How long after the first replica commits to its result this node waits for the other replicas before asking for the reveals; replicas that commit later are revealed as they come. \"100ms\" to \"10m\". Default \"5s\"."`
	// OfferTimeout bounds one offer to a worker.
	OfferTimeout Duration `toml:"offer_timeout" comment:"How long an offer to a worker may take, from opening the stream to reading its answer, before the worker is passed over. \"100ms\" to \"5m\". Default \"5s\"."`
	// FetchAllowance is added to a job's wall time limit to give the worker's run timeout.
	FetchAllowance Duration `toml:"fetch_allowance" comment:"Time added to a job's wall time limit to give the worker's run timeout, for fetching the module and inputs and storing the results; a worker that has not answered by then fails its replica. A job's deadline is 3 × (wall time + fetch_allowance), at least 1m. \"1s\" to \"1h\". Default \"30s\"."`
	// ResultsRetention is how long the results announcements of other nodes' jobs are kept.
	ResultsRetention Duration `toml:"results_retention" comment:"How long this node keeps the results it hears announced for other nodes' jobs (so that shoal job status answers for them here); older ones are deleted. The node's own jobs are kept. \"1m\" to \"8760h\". Default \"168h\" (a week)."`
}

// Defaults of the [jobs] table beyond slots and labels.
const (
	defaultJobsRetries        = 3
	defaultJobsCommitWait     = 5 * time.Second
	defaultJobsOfferTimeout   = 5 * time.Second
	defaultJobsFetchAllowance = 30 * time.Second
	defaultResultsRetention   = 7 * 24 * time.Hour
	maxJobsSlots              = 1024
	maxJobsQueue              = 4096
	maxJobsRetries            = 100
)

// DefaultJobsConfig returns the defaults of the [jobs] table: one slot per
// CPU core, a queue of twice that, no labels, not picking itself, 3
// retries, commit_wait and offer_timeout 5s, fetch_allowance 30s,
// results_retention a week.
func DefaultJobsConfig() JobsConfig {
	return JobsConfig{
		Slots:          runtime.NumCPU(),
		Labels:         []string{},
		Queue:          2 * runtime.NumCPU(),
		Retries:        defaultJobsRetries,
		CommitWait:     Duration(defaultJobsCommitWait),
		OfferTimeout:   Duration(defaultJobsOfferTimeout),
		FetchAllowance: Duration(defaultJobsFetchAllowance),

		ResultsRetention: Duration(defaultResultsRetention),
	}
}

// Validate checks the [jobs] table.
func (c *JobsConfig) Validate() error {
	if c.Slots < 0 || c.Slots > maxJobsSlots {
		return fmt.Errorf("config: jobs.slots = %d; want 0 to %d", c.Slots, maxJobsSlots)
	}
	if err := validateLabels(c.Labels); err != nil {
		return err
	}
	if c.Queue < 0 || c.Queue > maxJobsQueue {
		return fmt.Errorf("config: jobs.queue = %d; want 0 to %d, e.g. twice jobs.slots", c.Queue, maxJobsQueue)
	}
	if c.Retries < 0 || c.Retries > maxJobsRetries {
		return fmt.Errorf("config: jobs.retries = %d; want 0 to %d, e.g. %d", c.Retries, maxJobsRetries, defaultJobsRetries)
	}
	for _, d := range []struct {
		key      string
		v        Duration
		min, max time.Duration
		def      time.Duration
	}{
		{"commit_wait", c.CommitWait, 100 * time.Millisecond, 10 * time.Minute, defaultJobsCommitWait},
		{"offer_timeout", c.OfferTimeout, 100 * time.Millisecond, 5 * time.Minute, defaultJobsOfferTimeout},
		{"fetch_allowance", c.FetchAllowance, time.Second, time.Hour, defaultJobsFetchAllowance},
		{"results_retention", c.ResultsRetention, time.Minute, 365 * 24 * time.Hour, defaultResultsRetention},
	} {
		if v := d.v.Std(); v < d.min || v > d.max {
			return fmt.Errorf("config: jobs.%s = %s; want %s to %s, e.g. %q", d.key, v, d.min, d.max, d.def.String())
		}
	}
	return nil
}

// BlocksConfig, the [blocks] table, is defined in blocks.go.

// LedgerConfig is the [ledger] table.
type LedgerConfig struct{}

// Duration is a time.Duration written in TOML as a string such as "250ms" or "1m".
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration such as \"500ms\" or \"2m\"", b)
	}
	*d = Duration(v)
	return nil
}

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// DefaultListen are the listen addresses of a node for real use.
var DefaultListen = []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}

// LoopbackListen are the listen addresses of testnet and test nodes.
var LoopbackListen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}

// DefaultConfig returns the config of a new node for real use:
// network "shoal", no bootstrap peers, listen on TCP and QUIC port 4001 of
// every interface, API on 127.0.0.1:5080, log level info, and the [jobs]
// table of [DefaultJobsConfig].
func DefaultConfig() Config {
	return Config{
		Network: NetworkConfig{
			Name:         "shoal",
			Bootstrap:    []string{},
			DiscoveryMin: Duration(250 * time.Millisecond),
			DiscoveryMax: Duration(time.Minute),
		},
		P2P: P2PConfig{
			Listen:        append([]string(nil), DefaultListen...),
			ConnLowWater:  100,
			ConnHighWater: 400,
		},
		API:    APIConfig{Address: "127.0.0.1:5080"},
		Log:    LogConfig{Level: "info"},
		Jobs:   DefaultJobsConfig(),
		Blocks: DefaultBlocksConfig(),
	}
}

var networkNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// Validate checks every table and returns an error naming the first field
// that is wrong and what it should be.
func (c *Config) Validate() error {
	if err := c.Network.Validate(); err != nil {
		return err
	}
	if err := c.P2P.Validate(); err != nil {
		return err
	}
	if err := c.API.Validate(); err != nil {
		return err
	}
	if err := c.Log.Validate(); err != nil {
		return err
	}
	// Tables of other areas validate themselves when they know how.
	for _, t := range []any{&c.Jobs, &c.Blocks, &c.Ledger} {
		if v, ok := t.(interface{ Validate() error }); ok {
			if err := v.Validate(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Validate checks the [network] table.
func (c *NetworkConfig) Validate() error {
	if !networkNameRE.MatchString(c.Name) {
		return fmt.Errorf("config: network.name = %q; want 1-63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit", c.Name)
	}
	if _, err := ParseBootstrap(c.Bootstrap); err != nil {
		return err
	}
	if c.DiscoveryMin <= 0 || c.DiscoveryMax < c.DiscoveryMin {
		return fmt.Errorf("config: network.discovery_min = %s, discovery_max = %s; want 0 < discovery_min <= discovery_max",
			c.DiscoveryMin.Std(), c.DiscoveryMax.Std())
	}
	return nil
}

// ParseBootstrap parses bootstrap multiaddrs, each of which must end in
// /p2p/<peer ID>. Addresses of one peer are merged.
func ParseBootstrap(addrs []string) ([]peer.AddrInfo, error) {
	var mas []ma.Multiaddr
	for i, s := range addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("config: network.bootstrap[%d] = %q is not a multiaddr (%v); want e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...", i, s, err)
		}
		if _, err := peer.AddrInfoFromP2pAddr(m); err != nil {
			return nil, fmt.Errorf("config: network.bootstrap[%d] = %q has no /p2p/<peer ID> part; append the bootstrap node's peer ID (shown by: shoal id)", i, s)
		}
		mas = append(mas, m)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil {
		return nil, fmt.Errorf("config: network.bootstrap: %w", err)
	}
	return infos, nil
}

// Validate checks the [p2p] table.
func (c *P2PConfig) Validate() error {
	if len(c.Listen) == 0 {
		return fmt.Errorf("config: p2p.listen is empty; want at least one multiaddr such as %q", DefaultListen[0])
	}
	for i, s := range c.Listen {
		if _, err := ma.NewMultiaddr(s); err != nil {
			return fmt.Errorf("config: p2p.listen[%d] = %q is not a multiaddr (%v); want e.g. %q", i, s, err, DefaultListen[0])
		}
	}
	if c.ConnLowWater < 1 || c.ConnHighWater < c.ConnLowWater {
		return fmt.Errorf("config: p2p.conn_low_water = %d, conn_high_water = %d; want 1 <= conn_low_water <= conn_high_water",
			c.ConnLowWater, c.ConnHighWater)
	}
	return nil
}

// Validate checks the [api] table; an address that is not loopback needs
// allow_non_loopback = true.
func (c *APIConfig) Validate() error {
	host, port, err := net.SplitHostPort(c.Address)
	if err != nil {
		return fmt.Errorf("config: api.address = %q is not host:port; want e.g. \"127.0.0.1:5080\"", c.Address)
	}
	if _, err := netip.ParseAddrPort(net.JoinHostPort(host, port)); err != nil {
		return fmt.Errorf("config: api.address = %q needs an IP address and a port number; want e.g. \"127.0.0.1:5080\"", c.Address)
	}
	ip := netip.MustParseAddr(host)
	if !ip.IsLoopback() && !c.AllowNonLoopback {
		return fmt.Errorf("config: api.address = %q is not a loopback address; use 127.0.0.1 or [::1], or set api.allow_non_loopback = true to expose the API", c.Address)
	}
	return nil
}

// Validate checks the [log] table.
func (c *LogConfig) Validate() error {
	switch c.Level {
	case "debug", "info", "warn", "error":
		return nil
	}
	return fmt.Errorf("config: log.level = %q; want \"debug\", \"info\", \"warn\" or \"error\"", c.Level)
}

// LoadConfig reads and validates the config file at path. Fields missing
// from the file keep their defaults; unknown fields are an error.
func LoadConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("open config %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return Config{}, fmt.Errorf("read config %s: %w", path, err)
	}
	if len(data) > maxConfigSize {
		return Config{}, fmt.Errorf("config %s is larger than %d bytes; is it the right file?", path, maxConfigSize)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig decodes config file contents over DefaultConfig and
// validates the result. A file without jobs.queue gets twice its
// jobs.slots.
func ParseConfig(data []byte) (Config, error) {
	cfg := DefaultConfig()
	md, err := toml.Decode(string(data), &cfg)
	if err != nil {
		return Config{}, fmt.Errorf("config is not valid TOML: %w", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return Config{}, fmt.Errorf("config: unknown field %s; remove it or check its spelling", strings.Join(keys, ", "))
	}
	// Files written before jobs.queue existed keep the queue a worker had
	// then: twice its slots.
	if !md.IsDefined("jobs", "queue") {
		cfg.Jobs.Queue = 2 * cfg.Jobs.Slots
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// WriteConfig writes cfg as TOML with each field's comment above it.
func WriteConfig(w io.Writer, cfg Config) error {
	var b bytes.Buffer
	b.WriteString("# Shoal node configuration. Every field is optional; a missing field takes its default.\n")
	b.WriteString("# Edit while the daemon is stopped; it reads this file when it starts.\n")
	v := reflect.ValueOf(cfg)
	t := v.Type()
	for i := range t.NumField() {
		tf := t.Field(i)
		name := tomlName(tf)
		b.WriteString("\n")
		writeComment(&b, tf.Tag.Get("comment"))
		fmt.Fprintf(&b, "[%s]\n", name)
		tv := v.Field(i)
		if tv.Kind() != reflect.Struct {
			return fmt.Errorf("config: field %s is not a table", tf.Name)
		}
		for j := range tv.NumField() {
			ff := tv.Type().Field(j)
			if !ff.IsExported() {
				continue
			}
			writeComment(&b, ff.Tag.Get("comment"))
			var kv bytes.Buffer
			if err := toml.NewEncoder(&kv).Encode(map[string]any{tomlName(ff): tv.Field(j).Interface()}); err != nil {
				return fmt.Errorf("config: encode %s.%s: %w", name, tomlName(ff), err)
			}
			b.Write(kv.Bytes())
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

func tomlName(f reflect.StructField) string {
	if n, _, _ := strings.Cut(f.Tag.Get("toml"), ","); n != "" {
		return n
	}
	return f.Name
}

func writeComment(b *bytes.Buffer, c string) {
	if c == "" {
		return
	}
	for line := range strings.SplitSeq(c, "\n") {
		b.WriteString("# ")
		b.WriteString(line)
		b.WriteString("\n")
	}
}

// errNoRepo is wrapped by errors about a repo that does not exist.
var errNoRepo = errors.New("not a shoal repo")
