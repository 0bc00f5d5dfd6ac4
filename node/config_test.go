package node

import (
	"bytes"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigValid(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	if cfg.API.Address != "127.0.0.1:5080" || cfg.Network.Name != "shoal" || cfg.Jobs.Slots != runtime.NumCPU() {
		t.Errorf("DefaultConfig() = %+v; want api 127.0.0.1:5080, network shoal, 2 slots", cfg)
	}
	if !reflect.DeepEqual(cfg.P2P.Listen, DefaultListen) {
		t.Errorf("DefaultConfig().P2P.Listen = %v, want %v", cfg.P2P.Listen, DefaultListen)
	}
}

func TestConfigRoundTrip(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Network.Name = "lab-1"
	cfg.Network.Bootstrap = []string{"/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWEF8eZtoNko9D4js4z8f71J1RqhEQNXuoY64jq7BRHs2x"}
	cfg.P2P.Listen = LoopbackListen
	cfg.Jobs.Slots = 7
	var b bytes.Buffer
	if err := WriteConfig(&b, cfg); err != nil {
		t.Fatal(err)
	}
	got, err := ParseConfig(b.Bytes())
	if err != nil {
		t.Fatalf("ParseConfig(WriteConfig(cfg)) = %v\n%s", err, b.String())
	}
	if !reflect.DeepEqual(got, cfg) {
		t.Errorf("round trip = %+v, want %+v", got, cfg)
	}
	// Every field has a comment line above it.
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if i == 0 || !strings.HasPrefix(lines[i-1], "#") {
			t.Errorf("line %d %q has no comment above it", i+1, l)
		}
	}
}

func TestParseConfigMissingFieldsDefault(t *testing.T) {
	cfg, err := ParseConfig([]byte("[network]\nname = \"x\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Network.Name = "x"
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("ParseConfig = %+v, want %+v", cfg, want)
	}
}

// TestJobsConfigDefaults checks the [jobs] table that a new repo gets,
// written to a file and read back.
func TestJobsConfigDefaults(t *testing.T) {
	want := JobsConfig{
		Slots: runtime.NumCPU(), Labels: []string{}, Queue: 2 * runtime.NumCPU(),
		AllowSelf: false, Retries: 3,
		CommitWait: Duration(5 * time.Second), OfferTimeout: Duration(5 * time.Second), FetchAllowance: Duration(30 * time.Second),
		ResultsRetention: Duration(7 * 24 * time.Hour),
	}
	if got := DefaultConfig().Jobs; !reflect.DeepEqual(got, want) {
		t.Errorf("DefaultConfig().Jobs = %+v, want %+v", got, want)
	}
	var b bytes.Buffer
	if err := WriteConfig(&b, DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"queue = ", "allow_self = false", "retries = 3", `commit_wait = "5s"`, `offer_timeout = "5s"`, `fetch_allowance = "30s"`, `results_retention = "168h0m0s"`} {
		if !strings.Contains(b.String(), "\n"+line) {
			t.Errorf("WriteConfig(DefaultConfig()) has no line %q:\n%s", line, b.String())
		}
	}
	got, err := ParseConfig(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Jobs, want) {
		t.Errorf("ParseConfig(WriteConfig(DefaultConfig())).Jobs = %+v, want %+v", got.Jobs, want)
	}

	// Every key set to a value other than its default reads back as written.
	set := JobsConfig{
		Slots: 2, Labels: []string{"region=eu"}, Queue: 0, AllowSelf: true, Retries: 100,
		CommitWait: Duration(100 * time.Millisecond), OfferTimeout: Duration(5 * time.Minute), FetchAllowance: Duration(time.Hour),
		ResultsRetention: Duration(time.Minute),
	}
	cfg := DefaultConfig()
	cfg.Jobs = set
	b.Reset()
	if err := WriteConfig(&b, cfg); err != nil {
		t.Fatal(err)
	}
	got, err = ParseConfig(b.Bytes())
	if err != nil {
		t.Fatalf("ParseConfig = %v\n%s", err, b.String())
	}
	if !reflect.DeepEqual(got.Jobs, set) {
		t.Errorf("round trip of jobs = %+v, want %+v", got.Jobs, set)
	}
}

// TestJobsConfigOldFile checks that a config file written before the
// [jobs] scheduling keys existed loads with their defaults, and its queue
// is twice its slots, as it was then.
func TestJobsConfigOldFile(t *testing.T) {
	old := `[network]
name = "lab"
bootstrap = []
discovery_min = "250ms"
discovery_max = "1m0s"

[jobs]
slots = 5
labels = ["region=eu"]
`
	cfg, err := ParseConfig([]byte(old))
	if err != nil {
		t.Fatalf("ParseConfig(old file) = %v", err)
	}
	want := DefaultJobsConfig()
	want.Slots, want.Queue, want.Labels = 5, 10, []string{"region=eu"}
	if !reflect.DeepEqual(cfg.Jobs, want) {
		t.Errorf("ParseConfig(old file).Jobs = %+v, want %+v", cfg.Jobs, want)
	}
	// An explicit queue wins, 0 included.
	cfg, err = ParseConfig([]byte("[jobs]\nslots = 5\nqueue = 0\n"))
	if err != nil || cfg.Jobs.Queue != 0 {
		t.Errorf("ParseConfig(queue = 0) = queue %d, %v; want 0, nil", cfg.Jobs.Queue, err)
	}
}

func TestConfigValidateNamesField(t *testing.T) {
	tests := []struct {
		name  string
		toml  string
		field string // the error must name it
	}{
		{"network name empty", "[network]\nname = \"\"", "network.name"},
		{"network name upper", "[network]\nname = \"Lab\"", "network.name"},
		{"bootstrap not multiaddr", "[network]\nbootstrap = [\"nope\"]", "network.bootstrap[0]"},
		{"bootstrap no peer id", "[network]\nbootstrap = [\"/ip4/127.0.0.1/tcp/1\"]", "network.bootstrap[0]"},
		{"discovery order", "[network]\ndiscovery_min = \"2m\"\ndiscovery_max = \"1m\"", "network.discovery_min"},
		{"discovery bad", "[network]\ndiscovery_min = \"soon\"", "discovery_min"},
		{"listen empty", "[p2p]\nlisten = []", "p2p.listen"},
		{"listen bad", "[p2p]\nlisten = [\"tcp://0:1\"]", "p2p.listen[0]"},
		{"conn water", "[p2p]\nconn_low_water = 10\nconn_high_water = 5", "p2p.conn_low_water"},
		{"api not hostport", "[api]\naddress = \"localhost\"", "api.address"},
		{"api hostname", "[api]\naddress = \"localhost:5080\"", "api.address"},
		{"api public", "[api]\naddress = \"0.0.0.0:5080\"", "api.allow_non_loopback"},
		{"log level", "[log]\nlevel = \"loud\"", "log.level"},
		{"slots negative", "[jobs]\nslots = -1", "jobs.slots"},
		{"slots too many", "[jobs]\nslots = 1025", "jobs.slots"},
		{"queue negative", "[jobs]\nqueue = -1", "jobs.queue"},
		{"queue too long", "[jobs]\nqueue = 4097", "jobs.queue"},
		{"retries negative", "[jobs]\nretries = -1", "jobs.retries"},
		{"retries too many", "[jobs]\nretries = 101", "jobs.retries"},
		{"commit_wait short", "[jobs]\ncommit_wait = \"99ms\"", "jobs.commit_wait"},
		{"commit_wait long", "[jobs]\ncommit_wait = \"11m\"", "jobs.commit_wait"},
		{"commit_wait bad", "[jobs]\ncommit_wait = \"soon\"", "commit_wait"},
		{"offer_timeout zero", "[jobs]\noffer_timeout = \"0s\"", "jobs.offer_timeout"},
		{"offer_timeout long", "[jobs]\noffer_timeout = \"5m1s\"", "jobs.offer_timeout"},
		{"fetch_allowance short", "[jobs]\nfetch_allowance = \"999ms\"", "jobs.fetch_allowance"},
		{"fetch_allowance long", "[jobs]\nfetch_allowance = \"61m\"", "jobs.fetch_allowance"},
		{"results_retention short", "[jobs]\nresults_retention = \"30s\"", "jobs.results_retention"},
		{"results_retention long", "[jobs]\nresults_retention = \"9000h\"", "jobs.results_retention"},
		{"allow_self not bool", "[jobs]\nallow_self = \"yes\"", "allow_self"},
		{"unknown field", "[network]\nnmae = \"x\"", "network.nmae"},
		{"unknown table", "[netwrok]\nname = \"x\"", "netwrok"},
		{"not toml", "[network\n", "TOML"},
		{"wrong type", "[jobs]\nslots = \"two\"", "slots"},
	}
	for _, tt := range tests {
		_, err := ParseConfig([]byte(tt.toml))
		if err == nil {
			t.Errorf("%s: ParseConfig(%q) = nil error", tt.name, tt.toml)
			continue
		}
		if !strings.Contains(err.Error(), tt.field) {
			t.Errorf("%s: ParseConfig(%q) = %q, want it to name %s", tt.name, tt.toml, err, tt.field)
		}
	}
}

func TestAPINonLoopbackOptIn(t *testing.T) {
	c := APIConfig{Address: "0.0.0.0:5080", AllowNonLoopback: true}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v, want nil", c, err)
	}
	for _, a := range []string{"127.0.0.1:0", "[::1]:5080", "127.0.0.2:9"} {
		c := APIConfig{Address: a}
		if err := c.Validate(); err != nil {
			t.Errorf("Validate(%q) = %v, want nil", a, err)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	var b bytes.Buffer
	WriteConfig(&b, DefaultConfig())
	f.Add(b.Bytes())
	f.Add([]byte("[network]\nname = \"x\"\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			return
		}
		// Whatever parses validates, and writes back to an equal config.
		if err := cfg.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted an invalid config: %v", err)
		}
		var out bytes.Buffer
		if err := WriteConfig(&out, cfg); err != nil {
			t.Fatal(err)
		}
		again, err := ParseConfig(out.Bytes())
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, out.String())
		}
		if !reflect.DeepEqual(again, cfg) {
			t.Fatalf("re-parse = %+v, want %+v", again, cfg)
		}
	})
}
