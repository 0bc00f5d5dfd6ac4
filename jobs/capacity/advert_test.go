package capacity

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shoalnet/shoal/crypto"
)

var update = flag.Bool("update", false, "rewrite testdata golden files and fuzz seed corpora")

// testKey returns a reproducible ed25519 key for seed.
func testKey(t testing.TB, seed uint64) crypto.PrivKey {
	t.Helper()
	key, err := crypto.GenerateKey(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 's', 'h', 'o', 'a', 'l'}))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// testAdvert returns a valid advert of key's peer.
func testAdvert(t testing.TB, key crypto.PrivKey) Advert {
	t.Helper()
	id, err := crypto.PeerID(key)
	if err != nil {
		t.Fatal(err)
	}
	return Advert{
		Peer:        id,
		Network:     "testnet",
		Seq:         1732550400000000000,
		Expiry:      time.UnixMilli(1732550430000),
		SlotsTotal:  4,
		SlotsFree:   3,
		Cores:       8,
		MemoryBytes: 16 << 30,
		Runtimes:    []string{RuntimeWasm},
		Version:     "shoal/0.1.0",
		Labels:      map[string]string{"region": "eu", "gpu": "none"},
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	key := testKey(t, 1)
	a := testAdvert(t, key)
	data, err := a.Seal(key)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if len(data) > MaxAdvertSize {
		t.Fatalf("len(Seal) = %d, want ≤ %d", len(data), MaxAdvertSize)
	}
	got, err := OpenAdvert(data)
	if err != nil {
		t.Fatalf("OpenAdvert: %v", err)
	}
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("OpenAdvert(Seal(a)) = %+v, want %+v", got, a)
	}
}

// TestPayloadGolden pins the payload bytes that doc.go specifies.
func TestPayloadGolden(t *testing.T) {
	key := testKey(t, 1)
	a := testAdvert(t, key)
	payload, err := a.MarshalPayload()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "advert-payload.hex")
	if *update {
		if err := os.WriteFile(golden, []byte(hex.EncodeToString(payload)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden file (run go test -run TestPayloadGolden -update to create it): %v", err)
	}
	if got := hex.EncodeToString(payload); got != strings.TrimSpace(string(want)) {
		t.Fatalf("MarshalPayload = %s, want %s", got, want)
	}
}

func TestSealRefusesOtherKey(t *testing.T) {
	a := testAdvert(t, testKey(t, 1))
	if _, err := a.Seal(testKey(t, 2)); err == nil {
		t.Fatal("Seal with another peer's key succeeded, want an error")
	}
}

func TestValidate(t *testing.T) {
	key := testKey(t, 1)
	long := strings.Repeat("x", 200)
	tests := []struct {
		name   string
		mangle func(a *Advert)
	}{
		{"no peer", func(a *Advert) { a.Peer = "" }},
		{"no network", func(a *Advert) { a.Network = "" }},
		{"long network", func(a *Advert) { a.Network = long }},
		{"network control char", func(a *Advert) { a.Network = "a\nb" }},
		{"zero seq", func(a *Advert) { a.Seq = 0 }},
		{"huge seq", func(a *Advert) { a.Seq = 1 << 63 }},
		{"zero expiry", func(a *Advert) { a.Expiry = time.Time{} }},
		{"negative slots", func(a *Advert) { a.SlotsTotal = -1 }},
		{"too many slots", func(a *Advert) { a.SlotsTotal, a.SlotsFree = MaxSlots+1, 0 }},
		{"free over total", func(a *Advert) { a.SlotsFree = a.SlotsTotal + 1 }},
		{"negative free", func(a *Advert) { a.SlotsFree = -1 }},
		{"negative cores", func(a *Advert) { a.Cores = -1 }},
		{"negative memory", func(a *Advert) { a.MemoryBytes = -1 }},
		{"bad runtime", func(a *Advert) { a.Runtimes = []string{"Wasm"} }},
		{"empty runtime", func(a *Advert) { a.Runtimes = []string{""} }},
		{"repeated runtime", func(a *Advert) { a.Runtimes = []string{"wasm", "wasm"} }},
		{"too many runtimes", func(a *Advert) { a.Runtimes = strings.Split("a b c d e f g h i", " ") }},
		{"long version", func(a *Advert) { a.Version = long }},
		{"bad label key", func(a *Advert) { a.Labels = map[string]string{"-x": "1"} }},
		{"label value space", func(a *Advert) { a.Labels = map[string]string{"x": "a b"} }},
		{"long label value", func(a *Advert) { a.Labels = map[string]string{"x": long} }},
		{"too many labels", func(a *Advert) {
			a.Labels = map[string]string{}
			for i := range MaxLabels + 1 {
				a.Labels[fmt.Sprintf("k%d", i)] = "v"
			}
		}},
	}
	for _, tt := range tests {
		a := testAdvert(t, key)
		tt.mangle(&a)
		err := a.Validate()
		if ReasonOf(err) != ReasonField {
			t.Errorf("%s: Validate() = %v, want a %s rejection", tt.name, err, ReasonField)
		}
		if _, err := a.Seal(key); err == nil {
			t.Errorf("%s: Seal succeeded, want an error", tt.name)
		}
	}
}

func TestParseLabels(t *testing.T) {
	good, err := ParseLabels([]string{"region=eu", "tier=", "k8s.io/zone=a-1"})
	if err != nil {
		t.Fatalf("ParseLabels(good) = %v", err)
	}
	if want := map[string]string{"region": "eu", "tier": "", "k8s.io/zone": "a-1"}; !reflect.DeepEqual(good, want) {
		t.Fatalf("ParseLabels(good) = %v, want %v", good, want)
	}
	if got, want := FormatLabels(good), []string{"k8s.io/zone=a-1", "region=eu", "tier="}; !reflect.DeepEqual(got, want) {
		t.Fatalf("FormatLabels = %v, want %v", got, want)
	}
	for _, bad := range [][]string{{"region"}, {"=eu"}, {"a=1", "a=2"}, {"a=b c"}, {"é=1"}} {
		if _, err := ParseLabels(bad); err == nil {
			t.Errorf("ParseLabels(%q) = nil error, want one", bad)
		}
	}
}

// TestMangledAdverts checks that every single-byte change, every
// truncation and every extension of a sealed advert is rejected.
func TestMangledAdverts(t *testing.T) {
	key := testKey(t, 1)
	a := testAdvert(t, key)
	data, err := a.Seal(key)
	if err != nil {
		t.Fatal(err)
	}
	for i := range data {
		for _, delta := range []byte{1, 0x80, 0xff} {
			m := bytes.Clone(data)
			m[i] += delta
			if got, err := OpenAdvert(m); err == nil {
				t.Fatalf("OpenAdvert(data with byte %d + %#x) = %+v, want an error", i, delta, got)
			} else if ReasonOf(err) == "" {
				t.Fatalf("OpenAdvert(data with byte %d + %#x) error %v is not a RejectError", i, delta, err)
			}
		}
	}
	for n := range len(data) {
		if _, err := OpenAdvert(data[:n]); err == nil {
			t.Fatalf("OpenAdvert(data[:%d]) succeeded, want an error", n)
		}
	}
	for _, extra := range [][]byte{{0}, {0x0a, 0}, []byte("junk")} {
		if _, err := OpenAdvert(append(bytes.Clone(data), extra...)); err == nil {
			t.Fatalf("OpenAdvert(data + %x) succeeded, want an error", extra)
		}
	}
}

// TestMangledPayloads checks the payload decoder on its own: every
// single-byte change of a canonical payload is either rejected or decodes
// to a valid advert that re-encodes to exactly the mangled bytes.
func TestMangledPayloads(t *testing.T) {
	a := testAdvert(t, testKey(t, 1))
	payload, err := a.MarshalPayload()
	if err != nil {
		t.Fatal(err)
	}
	for i := range payload {
		for _, delta := range []byte{1, 0x20, 0x80, 0xff} {
			m := bytes.Clone(payload)
			m[i] += delta
			got, err := unmarshalPayload(m)
			if err != nil {
				continue
			}
			again, err := got.MarshalPayload()
			if err != nil || !bytes.Equal(again, m) {
				t.Fatalf("unmarshalPayload(payload with byte %d + %#x) accepted bytes that do not re-encode to themselves", i, delta)
			}
		}
	}
}

func TestOpenRejects(t *testing.T) {
	keyA, keyB := testKey(t, 1), testKey(t, 2)
	advB := testAdvert(t, keyB)
	payloadB, err := advB.MarshalPayload()
	if err != nil {
		t.Fatal(err)
	}
	forged, err := crypto.Seal(keyA, crypto.DomainCapacityAdvert, PayloadType, payloadB)
	if err != nil {
		t.Fatal(err)
	}
	otherDomain, err := crypto.Seal(keyB, crypto.DomainJobResult, PayloadType, payloadB)
	if err != nil {
		t.Fatal(err)
	}
	otherType, err := crypto.Seal(keyB, crypto.DomainCapacityAdvert, "shoal/other", payloadB)
	if err != nil {
		t.Fatal(err)
	}
	big, err := crypto.Seal(keyB, crypto.DomainCapacityAdvert, PayloadType, bytes.Repeat([]byte{0}, MaxAdvertSize))
	if err != nil {
		t.Fatal(err)
	}
	notMap, err := crypto.Seal(keyB, crypto.DomainCapacityAdvert, PayloadType, []byte{0x01})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		want Reason
	}{
		{"forged signer", forged, ReasonSigner},
		{"other domain", otherDomain, ReasonSignature},
		{"other payload type", otherType, ReasonEnvelope},
		{"oversize", big, ReasonSize},
		{"garbage", []byte("\x00\x01garbage bytes that are no envelope"), ReasonEnvelope},
		{"empty", nil, ReasonEnvelope},
		{"not a map", notMap, ReasonDecode},
	}
	for _, tt := range tests {
		_, err := OpenAdvert(tt.data)
		if got := ReasonOf(err); got != tt.want {
			t.Errorf("OpenAdvert(%s) reason = %q (%v), want %q", tt.name, got, err, tt.want)
		}
	}
}

// writeSeed writes one seed file of a []byte fuzz target.
func writeSeed(t *testing.T, target, name string, data []byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWriteSeedCorpus rewrites the fuzz seed corpora under -update.
func TestWriteSeedCorpus(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite the seed corpora")
	}
	key := testKey(t, 1)
	a := testAdvert(t, key)
	sealed, err := a.Seal(key)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := a.MarshalPayload()
	if err != nil {
		t.Fatal(err)
	}
	b := a
	b.Labels, b.Runtimes, b.Version = map[string]string{}, []string{}, ""
	bare, err := b.MarshalPayload()
	if err != nil {
		t.Fatal(err)
	}
	sealedBare, err := b.Seal(key)
	if err != nil {
		t.Fatal(err)
	}
	writeSeed(t, "FuzzOpenAdvert", "valid", sealed)
	writeSeed(t, "FuzzOpenAdvert", "valid-bare", sealedBare)
	writeSeed(t, "FuzzOpenAdvert", "garbage", []byte("not an envelope"))
	writeSeed(t, "FuzzUnmarshalPayload", "valid", payload)
	writeSeed(t, "FuzzUnmarshalPayload", "valid-bare", bare)
	writeSeed(t, "FuzzUnmarshalPayload", "empty-map", []byte{0xa0})
}

func FuzzOpenAdvert(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := OpenAdvert(data)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("OpenAdvert error %v is not a RejectError", err)
			}
			return
		}
		if err := a.Validate(); err != nil {
			t.Fatalf("OpenAdvert accepted an advert that does not validate: %v", err)
		}
	})
}

func FuzzUnmarshalPayload(f *testing.F) {
	f.Fuzz(func(t *testing.T, payload []byte) {
		a, err := unmarshalPayload(payload)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("unmarshalPayload error %v is not a RejectError", err)
			}
			return
		}
		again, err := a.MarshalPayload()
		if err != nil {
			t.Fatalf("MarshalPayload of a decoded advert: %v", err)
		}
		b, err := unmarshalPayload(again)
		if err != nil {
			t.Fatalf("unmarshalPayload(MarshalPayload(a)): %v", err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("round trip changed the advert: %+v != %+v", a, b)
		}
	})
}
