package testnet

import (
	"encoding/json"
	"strings"
	"testing"
)

const goodManifest = `{
  "network": "testnet",
  "binary": "/tmp/shoal",
  "nodes": [
    {
      "name": "node0",
      "repo": "/tmp/tn/node0",
      "peer_id": "12D3KooWEF8eZtoNko9D4js4z8f71J1RqhEQNXuoY64jq7BRHs2x",
      "pid": 31185,
      "api": "127.0.0.1:35297",
      "addrs": ["/ip4/127.0.0.1/tcp/38661/p2p/12D3KooWEF8eZtoNko9D4js4z8f71J1RqhEQNXuoY64jq7BRHs2x"]
    }
  ]
}`

func TestParseManifest(t *testing.T) {
	m, err := ParseManifest([]byte(goodManifest))
	if err != nil {
		t.Fatal(err)
	}
	if m.Network != "testnet" || len(m.Nodes) != 1 || m.Nodes[0].PID != 31185 {
		t.Errorf("ParseManifest = %+v", m)
	}
	bad := map[string]string{
		"unknown field": strings.Replace(goodManifest, `"binary"`, `"bin"`, 1),
		"bad peer id":   strings.Replace(goodManifest, "12D3KooWEF8e", "12D3KooW0F8e", 1),
		"negative pid":  strings.Replace(goodManifest, "31185", "-1", 1),
		"no network":    strings.Replace(goodManifest, `"testnet"`, `""`, 1),
		"no repo":       strings.Replace(goodManifest, `"/tmp/tn/node0"`, `""`, 1),
		"trailing data": goodManifest + "{}",
		"truncated":     goodManifest[:len(goodManifest)/2],
		"huge":          strings.Repeat(" ", maxManifestSize+1),
	}
	for name, s := range bad {
		if _, err := ParseManifest([]byte(s)); err == nil {
			t.Errorf("ParseManifest(%s) = nil error", name)
		}
	}
	// Every truncation is refused.
	for n := range len(goodManifest) - 1 {
		if _, err := ParseManifest([]byte(goodManifest[:n])); err == nil {
			t.Errorf("ParseManifest of the first %d bytes succeeded", n)
		}
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(goodManifest))
	f.Add([]byte(`{"network":"x","nodes":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			return
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseManifest(b); err != nil {
			t.Fatalf("re-parse of %s: %v", b, err)
		}
	})
}
