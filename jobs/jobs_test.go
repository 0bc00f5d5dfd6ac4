package jobs

import (
	"bytes"
	"errors"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multicodec"

	"github.com/shoalnet/shoal/crypto"
)

// testKey returns a deterministic key for seed.
func testKey(t testing.TB, seed int64) crypto.PrivKey {
	t.Helper()
	key, err := crypto.GenerateKey(rand.New(rand.NewSource(seed)))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func rawCID(s string) cid.Cid { return crypto.CIDOf(multicodec.Raw, []byte(s)) }

func testEnvelope(t testing.TB, key crypto.PrivKey) *Envelope {
	t.Helper()
	id, err := crypto.PeerID(key)
	if err != nil {
		t.Fatal(err)
	}
	comp := Computation{
		Module: rawCID("module"),
		Inputs: map[string]cid.Cid{"data": rawCID("data"), "b.txt": rawCID("b")},
		Args:   []string{"-n", "3", "héllo"},
		Env:    map[string]string{"B": "2", "A": "1"},
	}
	env, err := NewEnvelope(id, comp, rand.New(rand.NewSource(7)), time.UnixMilli(1764000000123))
	if err != nil {
		t.Fatal(err)
	}
	env.Constraints["region"] = "eu"
	return env
}

func TestEnvelopeRoundTrip(t *testing.T) {
	env := testEnvelope(t, testKey(t, 1))
	b, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeEnvelope(b)
	if err != nil {
		t.Fatalf("DecodeEnvelope(Encode()) = %v", err)
	}
	b2, err := got.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, b2) {
		t.Fatalf("re-encoding differs:\n%x\n%x", b, b2)
	}
	if got.Limits != env.Limits || got.Submitter != env.Submitter || !got.Created.Equal(env.Created) ||
		got.Computation.Args[2] != "héllo" || got.Computation.Inputs["data"] != rawCID("data") {
		t.Fatalf("decoded envelope = %+v, want %+v", got, env)
	}
}

// TestSameSpecTwoWays builds one spec with maps filled in different orders
// and nil versus empty collections, and requires the same CIDs.
func TestSameSpecTwoWays(t *testing.T) {
	a := Computation{Runtime: RuntimeWASIP1, Module: rawCID("m"),
		Inputs: map[string]cid.Cid{"x": rawCID("x"), "y": rawCID("y")},
		Env:    map[string]string{"K": "v", "A": "b"}}
	b := Computation{Runtime: RuntimeWASIP1, Module: rawCID("m"), Args: []string{},
		Inputs: map[string]cid.Cid{}, Env: map[string]string{}}
	b.Env["A"] = "b"
	b.Inputs["y"] = rawCID("y")
	b.Env["K"] = "v"
	b.Inputs["x"] = rawCID("x")
	ca, err := a.CID()
	if err != nil {
		t.Fatal(err)
	}
	cb, err := b.CID()
	if err != nil {
		t.Fatal(err)
	}
	if ca != cb {
		t.Fatalf("CID(a) = %s, CID(b) = %s, want equal", ca, cb)
	}
	if ca.Prefix().Codec != uint64(multicodec.DagCbor) {
		t.Fatalf("CID codec = %#x, want dag-cbor", ca.Prefix().Codec)
	}
	// Envelopes that differ only in nonce have different IDs but the same computation CID.
	key := testKey(t, 1)
	e1, e2 := testEnvelope(t, key), testEnvelope(t, key)
	e2.Nonce = bytes.Repeat([]byte{9}, 16)
	s1, err := SignSpec(key, e1)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := SignSpec(key, e2)
	if err != nil {
		t.Fatal(err)
	}
	if s1.ID == s2.ID || s1.CompCID != s2.CompCID {
		t.Fatalf("IDs %s, %s (want different); computation CIDs %s, %s (want equal)", s1.ID, s2.ID, s1.CompCID, s2.CompCID)
	}
}

// signedSpec signs the test envelope of key and returns it with its bytes.
func signedSpec(t testing.TB, key crypto.PrivKey) (*SignedSpec, []byte) {
	t.Helper()
	s, err := SignSpec(key, testEnvelope(t, key))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return s, b
}

func TestSignedSpec(t *testing.T) {
	key := testKey(t, 1)
	s, b := signedSpec(t, key)
	got, err := DecodeSignedSpec(b)
	if err != nil {
		t.Fatalf("DecodeSignedSpec = %v", err)
	}
	if got.ID != s.ID || got.CompCID != s.CompCID {
		t.Fatalf("decoded ID %s comp %s, want %s %s", got.ID, got.CompCID, s.ID, s.CompCID)
	}
	// Signed by someone other than the submitter.
	other := testKey(t, 2)
	if _, err := SignSpec(other, s.Envelope); err == nil {
		t.Fatal("SignSpec with a key other than the submitter's succeeded")
	}
	forged := &SignedSpec{Bytes: s.Bytes, Sig: append([]byte(nil), s.Sig...)}
	forged.Sig[3] ^= 1
	fb, err := forged.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeSignedSpec(fb); !errors.Is(err, crypto.ErrBadSignature) {
		t.Fatalf("DecodeSignedSpec(forged) = %v, want ErrBadSignature", err)
	}
}

// TestSignedSpecMangled flips every byte and cuts every prefix of a valid
// signed spec: each must be rejected.
func TestSignedSpecMangled(t *testing.T) {
	_, b := signedSpec(t, testKey(t, 1))
	for i := range b {
		m := append([]byte(nil), b...)
		m[i]++
		if _, err := DecodeSignedSpec(m); err == nil {
			t.Errorf("DecodeSignedSpec(byte %d bumped) = nil error", i)
		}
		if _, err := DecodeSignedSpec(b[:i]); err == nil {
			t.Errorf("DecodeSignedSpec(first %d bytes) = nil error", i)
		}
	}
	if _, err := DecodeSignedSpec(append(append([]byte(nil), b...), 0)); err == nil {
		t.Error("DecodeSignedSpec(trailing byte) = nil error")
	}
}

func TestEnvelopeRejects(t *testing.T) {
	key := testKey(t, 1)
	tests := []struct {
		name   string
		mutate func(e *Envelope)
		want   string
	}{
		{"version", func(e *Envelope) { e.Version = 2 }, "envelope.version"},
		{"runtime", func(e *Envelope) { e.Computation.Runtime = "wasm64" }, "computation.runtime"},
		{"module", func(e *Envelope) { e.Computation.Module = cid.Undef }, "computation.module"},
		{"mount", func(e *Envelope) { e.Computation.Inputs["../x"] = rawCID("x") }, "mount name"},
		{"mount dotdot", func(e *Envelope) { e.Computation.Inputs[".."] = rawCID("x") }, "mount name"},
		{"arg nul", func(e *Envelope) { e.Computation.Args = []string{"a\x00b"} }, "computation.args[0]"},
		{"env key", func(e *Envelope) { e.Computation.Env["A=B"] = "x" }, "computation.env"},
		{"wall zero", func(e *Envelope) { e.Limits.WallTime = 0 }, "limits.wall_ms"},
		{"wall huge", func(e *Envelope) { e.Limits.WallTime = 25 * time.Hour }, "limits.wall_ms"},
		{"memory small", func(e *Envelope) { e.Limits.Memory = 100 }, "limits.memory"},
		{"memory huge", func(e *Envelope) { e.Limits.Memory = 1<<32 + 1 }, "limits.memory"},
		{"stdout", func(e *Envelope) { e.Limits.Stdout = MaxStreamBytes + 1 }, "limits.stdout"},
		{"stderr", func(e *Envelope) { e.Limits.Stderr = MaxStreamBytes + 1 }, "limits.stderr"},
		{"outputs", func(e *Envelope) { e.Limits.Outputs = MaxOutputBytes + 1 }, "limits.outputs"},
		{"replicas", func(e *Envelope) { e.Replicas = 0 }, "envelope.replicas"},
		{"quorum", func(e *Envelope) { e.Quorum = 2 }, "envelope.quorum"},
		{"submitter", func(e *Envelope) { e.Submitter = "" }, "envelope.submitter"},
		{"nonce", func(e *Envelope) { e.Nonce = []byte{1} }, "envelope.nonce"},
		{"created", func(e *Envelope) { e.Created = time.Unix(0, 0) }, "envelope.created_ms"},
		{"constraint", func(e *Envelope) { e.Constraints[""] = "x" }, "envelope.constraints"},
	}
	for _, tt := range tests {
		e := testEnvelope(t, key)
		tt.mutate(e)
		_, err := e.Encode()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Encode() = %v, want error naming %q", tt.name, err, tt.want)
		}
	}
}

func TestDecodeRejectsFields(t *testing.T) {
	key := testKey(t, 1)
	b, err := testEnvelope(t, key).Encode()
	if err != nil {
		t.Fatal(err)
	}
	// Replace a key name by another of the same length: an unknown field
	// in canonical position is still rejected by name.
	m := bytes.Replace(b, []byte("quorum"), []byte("quorux"), 1)
	if _, err := DecodeEnvelope(m); err == nil || !strings.Contains(err.Error(), "quorux") {
		t.Errorf("DecodeEnvelope(unknown field) = %v, want error naming quorux", err)
	}
	if _, err := DecodeEnvelope(make([]byte, MaxEnvelopeSize+1)); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("DecodeEnvelope(oversize) = %v, want size error", err)
	}
	if _, err := DecodeEnvelope(nil); err == nil {
		t.Error("DecodeEnvelope(nil) = nil error")
	}
	// A version-2 envelope is refused by version before anything else.
	m = bytes.Replace(b, []byte("versio\x6e\x01"), []byte("version\x02"), 1)
	if _, err := DecodeEnvelope(m); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("DecodeEnvelope(version 2) = %v, want unsupported version", err)
	}
}

func testResult(t testing.TB, key crypto.PrivKey) *Result {
	t.Helper()
	id, err := crypto.PeerID(key)
	if err != nil {
		t.Fatal(err)
	}
	return &Result{
		Version: FormatVersion, Job: rawCID("job"), Computation: rawCID("comp"), Worker: id,
		ExitCode: 3, Stdout: rawCID("out"), Stderr: rawCID("err"), Outputs: rawCID("dir"),
		WallTime: 1234 * time.Microsecond, PeakMemory: 2 << 20,
	}
}

// signedResult signs the test result of key and returns it with its bytes.
func signedResult(t testing.TB, key crypto.PrivKey) (*SignedResult, []byte) {
	t.Helper()
	s, err := SignResult(key, testResult(t, key))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return s, b
}

func TestSignedResult(t *testing.T) {
	key := testKey(t, 3)
	s, b := signedResult(t, key)
	got, err := DecodeSignedResult(b)
	if err != nil {
		t.Fatalf("DecodeSignedResult = %v", err)
	}
	if *got.Result != *s.Result || got.CID != s.CID {
		t.Fatalf("decoded %+v, want %+v", got.Result, s.Result)
	}
	if got.Result.OK() {
		t.Error("OK() with exit code 3 = true")
	}
	for i := range b {
		m := append([]byte(nil), b...)
		m[i]++
		if _, err := DecodeSignedResult(m); err == nil {
			t.Errorf("DecodeSignedResult(byte %d bumped) = nil error", i)
		}
		if _, err := DecodeSignedResult(b[:i]); err == nil {
			t.Errorf("DecodeSignedResult(first %d bytes) = nil error", i)
		}
	}
	if _, err := SignResult(testKey(t, 4), s.Result); err == nil {
		t.Error("SignResult with another worker's key succeeded")
	}
}

func TestResultRejects(t *testing.T) {
	key := testKey(t, 3)
	tests := []struct {
		name   string
		mutate func(r *Result)
		want   string
	}{
		{"version", func(r *Result) { r.Version = 0 }, "result.version"},
		{"job", func(r *Result) { r.Job = cid.Undef }, "result.job"},
		{"failure", func(r *Result) { r.Failure = "bogus" }, "result.failure"},
		{"failure exit", func(r *Result) { r.Failure = FailureTrap }, "result.exit_code"},
		{"reason", func(r *Result) { r.Reason = strings.Repeat("x", MaxReasonSize+1) }, "result.reason"},
		{"stdout", func(r *Result) { r.Stdout = cid.Undef }, "result.stdout"},
		{"wall", func(r *Result) { r.WallTime = -1 }, "result.wall_us"},
	}
	for _, tt := range tests {
		r := testResult(t, key)
		tt.mutate(r)
		if _, err := r.Encode(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Encode() = %v, want error naming %q", tt.name, err, tt.want)
		}
	}
}

func TestState(t *testing.T) {
	for _, s := range States() {
		got, err := ParseState(string(s))
		if err != nil || got != s {
			t.Errorf("ParseState(%q) = %q, %v", s, got, err)
		}
	}
	if _, err := ParseState("bogus"); err == nil {
		t.Error("ParseState(bogus) = nil error")
	}
	if !StateDone.Terminal() || StateRunning.Terminal() {
		t.Error("Terminal() wrong for done/running")
	}
}
