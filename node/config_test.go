package node

import (
	"bytes"
	"reflect"
	"runtime"
	"strings"
	"testing"
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
