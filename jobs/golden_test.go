package jobs

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/shoalnet/shoal/crypto"
)

// The golden vectors in testdata/golden were written by the go-ipld-prime
// implementation of the codec (before the move to fxamacker/cbor) and
// must never change: every value below must encode to exactly its
// checked-in bytes, and those bytes must decode back to an equal value.
// JOBS_WRITE_GOLDEN=1 rewrites them; do that only for new vectors, and
// check with git diff that no existing line changed.

// goldenDir holds one file per record type: "name hex" lines.
const goldenDir = "testdata/golden"

// A goldenSet is the golden values of one record type.
type goldenSet interface {
	file() string
	// vectors returns each value's name and encoding, and check, which
	// decodes data and compares it with the i-th value.
	vectors(t testing.TB) (names []string, encs [][]byte, check func(t *testing.T, i int, data []byte))
}

type named[T any] struct {
	name  string
	value T
}

type golden[T any] struct {
	name   string
	values func(testing.TB) []named[T]
	encode func(T) ([]byte, error)
	decode func([]byte) (T, error)
	// same reports whether a decoded value equals the original.
	same func(got, want T) bool
}

func (g golden[T]) file() string { return g.name + ".txt" }

func (g golden[T]) vectors(t testing.TB) ([]string, [][]byte, func(*testing.T, int, []byte)) {
	vs := g.values(t)
	var names []string
	var encs [][]byte
	for _, v := range vs {
		b, err := g.encode(v.value)
		if err != nil {
			t.Fatalf("%s %s: encode: %v", g.name, v.name, err)
		}
		names = append(names, v.name)
		encs = append(encs, b)
	}
	check := func(t *testing.T, i int, data []byte) {
		got, err := g.decode(data)
		if err != nil {
			t.Errorf("%s %s: decode: %v", g.name, vs[i].name, err)
			return
		}
		if !g.same(got, vs[i].value) {
			t.Errorf("%s %s: decoded\n%#v\nwant\n%#v", g.name, vs[i].name, got, vs[i].value)
		}
	}
	return names, encs, check
}

// goldenSets lists every record type with golden vectors.
func goldenSets() []goldenSet {
	return []goldenSet{
		golden[*Computation]{"computation", goldenComputations,
			(*Computation).Encode, DecodeComputation,
			func(got, want *Computation) bool {
				return reflect.DeepEqual(normComputation(*got), normComputation(*want))
			}},
		golden[*Envelope]{"envelope", goldenEnvelopes,
			(*Envelope).Encode, DecodeEnvelope,
			func(got, want *Envelope) bool { return reflect.DeepEqual(normEnvelope(got), normEnvelope(want)) }},
		golden[*SignedSpec]{"signed_spec", goldenSignedSpecs,
			(*SignedSpec).Encode, DecodeSignedSpec, sameSignedSpec},
		golden[*Result]{"result", goldenResults,
			(*Result).Encode, DecodeResult,
			func(got, want *Result) bool { return *got == *want }},
		golden[*SignedResult]{"signed_result", goldenSignedResults,
			(*SignedResult).Encode, DecodeSignedResult, sameSignedResult},
		golden[*SubmittedEntry]{"submitted_entry", goldenSubmittedEntries,
			(*SubmittedEntry).Encode, DecodeSubmittedEntry,
			func(got, want *SubmittedEntry) bool {
				return got.Job == want.Job && (got.Spec == nil) == (want.Spec == nil) &&
					(got.Spec == nil || sameSignedSpec(got.Spec, want.Spec))
			}},
		golden[*ExecutedEntry]{"executed_entry", goldenExecutedEntries,
			(*ExecutedEntry).Encode, DecodeExecutedEntry,
			func(got, want *ExecutedEntry) bool {
				return got.Job == want.Job && got.Submitter == want.Submitter && sameSignedResult(got.Result, want.Result)
			}},
		golden[*VerdictEntry]{"verdict_entry", goldenVerdictEntries,
			(*VerdictEntry).Encode, DecodeVerdictEntry, sameVerdictEntry},
	}
}

// TestGolden checks every golden vector both ways: the value encodes to
// the checked-in bytes, and the bytes decode to the value.
func TestGolden(t *testing.T) {
	write := os.Getenv("JOBS_WRITE_GOLDEN") == "1"
	for _, g := range goldenSets() {
		path := filepath.Join(goldenDir, g.file())
		names, encs, check := g.vectors(t)
		if write {
			writeGolden(t, path, names, encs)
			continue
		}
		want := readGolden(t, path)
		if len(want) != len(names) {
			t.Errorf("%s has %d vectors, the test builds %d", path, len(want), len(names))
		}
		for i, name := range names {
			w, ok := want[name]
			if !ok {
				t.Errorf("%s: no vector %q", path, name)
				continue
			}
			if !bytes.Equal(encs[i], w) {
				t.Errorf("%s %s: encodes to\n%x\nwant\n%x", path, name, encs[i], w)
			}
			check(t, i, w)
		}
	}
}

// TestGoldenDescribe checks DescribeLedgerEntry and ExecutedRef on the
// golden ledger bodies.
func TestGoldenDescribe(t *testing.T) {
	path := filepath.Join(goldenDir, "describe.json")
	kinds := map[string]string{
		"submitted_entry.txt": LedgerKindSubmitted,
		"executed_entry.txt":  LedgerKindExecuted,
		"verdict_entry.txt":   LedgerKindVerdict,
	}
	type summary struct {
		Kind, Name, Summary string
	}
	var got []summary
	for _, file := range []string{"submitted_entry.txt", "executed_entry.txt", "verdict_entry.txt"} {
		bodies := readGolden(t, filepath.Join(goldenDir, file))
		names := make([]string, 0, len(bodies))
		for name := range bodies {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			s, ok := DescribeLedgerEntry(kinds[file], bodies[name])
			if !ok || strings.HasPrefix(s, "undecodable") {
				t.Errorf("DescribeLedgerEntry(%s %s) = %q, %v", kinds[file], name, s, ok)
			}
			got = append(got, summary{kinds[file], name, s})
		}
	}
	if os.Getenv("JOBS_WRITE_GOLDEN") == "1" {
		b, err := json.MarshalIndent(got, "", "\t")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	} else {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var want []summary
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("DescribeLedgerEntry summaries differ from %s:\n got %q\nwant %q", path, got, want)
		}
	}

	for _, v := range goldenExecutedEntries(t) {
		body, err := v.value.Encode()
		if err != nil {
			t.Fatal(err)
		}
		job, res, sub, err := ExecutedRef(body)
		if err != nil || job != v.value.Job || res != v.value.Result.CID || sub != v.value.Submitter {
			t.Errorf("ExecutedRef(%s) = %s, %s, %s, %v", v.name, job, res, sub, err)
		}
	}
	// Bodies of other kinds are not described; a bad body is.
	if _, ok := DescribeLedgerEntry("note", []byte{0xa0}); ok {
		t.Error("DescribeLedgerEntry(note) claims the kind")
	}
	for _, kind := range []string{LedgerKindSubmitted, LedgerKindExecuted, LedgerKindVerdict} {
		if s, ok := DescribeLedgerEntry(kind, []byte{0xa0}); !ok || !strings.HasPrefix(s, "undecodable: jobs: ") {
			t.Errorf("DescribeLedgerEntry(%s, {}) = %q, %v", kind, s, ok)
		}
	}
}

func writeGolden(t testing.TB, path string, names []string, encs [][]byte) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Golden %s vectors (name, canonical DAG-CBOR in hex); see golden_test.go.\n",
		strings.TrimSuffix(filepath.Base(path), ".txt"))
	for i, name := range names {
		fmt.Fprintf(&buf, "%s %x\n", name, encs[i])
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readGolden returns the vectors of a golden file by name.
func readGolden(t testing.TB, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("%v (JOBS_WRITE_GOLDEN=1 writes it)", err)
	}
	defer f.Close()
	out := map[string][]byte{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, h, ok := strings.Cut(line, " ")
		b, err := hex.DecodeString(h)
		if !ok || err != nil {
			t.Fatalf("%s: bad line %.40q", path, line)
		}
		if _, dup := out[name]; dup {
			t.Fatalf("%s: vector %q twice", path, name)
		}
		out[name] = b
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// goldenVectors returns the encodings of every golden value of every
// type, keyed by type: seeds for the differential fuzz targets.
func goldenVectors(t testing.TB) map[string][][]byte {
	out := map[string][][]byte{}
	for _, g := range goldenSets() {
		_, encs, _ := g.vectors(t)
		out[strings.TrimSuffix(g.file(), ".txt")] = encs
	}
	return out
}

// Comparisons. Decoders return empty (not nil) collections and times in
// the local zone; the values below may have nil ones.

func normComputation(c Computation) Computation {
	if c.Inputs == nil {
		c.Inputs = map[string]cid.Cid{}
	}
	if c.Args == nil {
		c.Args = []string{}
	}
	if c.Env == nil {
		c.Env = map[string]string{}
	}
	return c
}

func normEnvelope(e *Envelope) Envelope {
	n := *e
	n.Computation = normComputation(n.Computation)
	if n.Constraints == nil {
		n.Constraints = map[string]string{}
	}
	n.Created = time.UnixMilli(n.Created.UnixMilli())
	return n
}

func sameSignedSpec(got, want *SignedSpec) bool {
	return reflect.DeepEqual(normEnvelope(got.Envelope), normEnvelope(want.Envelope)) &&
		bytes.Equal(got.Bytes, want.Bytes) && bytes.Equal(got.Sig, want.Sig) &&
		got.ID == want.ID && got.CompCID == want.CompCID
}

func sameSignedResult(got, want *SignedResult) bool {
	return *got.Result == *want.Result && bytes.Equal(got.Bytes, want.Bytes) &&
		bytes.Equal(got.Sig, want.Sig) && got.CID == want.CID
}

func sameVerdictEntry(got, want *VerdictEntry) bool {
	if got.Job != want.Job || got.State != want.State || got.Verdict != want.Verdict || got.Reason != want.Reason ||
		got.Replicas != want.Replicas || got.Quorum != want.Quorum ||
		len(got.Results) != len(want.Results) || len(got.Disagreeing) != len(want.Disagreeing) {
		return false
	}
	for i, r := range got.Results {
		w := want.Results[i]
		if r.Worker != w.Worker || r.CID != w.CID || (r.Signed == nil) != (w.Signed == nil) ||
			(r.Signed != nil && !sameSignedResult(r.Signed, w.Signed)) {
			return false
		}
	}
	for i, p := range got.Disagreeing {
		if p != want.Disagreeing[i] {
			return false
		}
	}
	return true
}

// The golden values.

// cidKinds returns CIDs of several shapes: v0, v1 with several codecs,
// identity hashes (empty and long), sha2-512, a large codec number.
func cidKinds(t testing.TB) []cid.Cid {
	sum := func(data []byte, code uint64) mh.Multihash {
		h, err := mh.Sum(data, code, -1)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	return []cid.Cid{
		cid.NewCidV0(sum([]byte("v0"), mh.SHA2_256)),
		cid.NewCidV1(cid.Raw, sum([]byte("raw"), mh.SHA2_256)),
		cid.NewCidV1(cid.DagProtobuf, sum([]byte("pb"), mh.SHA2_256)),
		cid.NewCidV1(cid.DagCBOR, sum([]byte("cbor"), mh.SHA2_256)),
		cid.NewCidV1(cid.Raw, sum(nil, mh.IDENTITY)),
		cid.NewCidV1(cid.Raw, sum(bytes.Repeat([]byte{7}, 40), mh.IDENTITY)),
		cid.NewCidV1(cid.DagCBOR, sum([]byte("x"), mh.SHA2_512)),
		cid.NewCidV1(0x300001, sum([]byte("big codec"), mh.SHA2_256)),
	}
}

func peerOf(t testing.TB, seed int64) peer.ID {
	id, err := crypto.PeerID(testKey(t, seed))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func goldenComputations(t testing.TB) []named[*Computation] {
	m := rawCID("module")
	kinds := cidKinds(t)
	full := &Computation{Runtime: RuntimeWASIP1, Module: m,
		Inputs: map[string]cid.Cid{"a": rawCID("a"), "B": rawCID("B"), "zz": rawCID("zz"), "a.b": rawCID("a.b"),
			"in-1": rawCID("in-1"), "x_y": rawCID("x_y"), "0": rawCID("0"), strings.Repeat("n", 64): rawCID("long")},
		Args: []string{"", "-n", "3", "héllo", "tab\there", "ünï\n", strings.Repeat("a", 23), strings.Repeat("b", 24),
			strings.Repeat("c", 255), strings.Repeat("d", 256), strings.Repeat("€", 300)},
		Env: map[string]string{"A": "1", "B": "", "é": "x", "z": "é", "PATH": "/bin:/usr/bin", "LONG": strings.Repeat("v", 256),
			"AB": "2", "Ab": "3", "aB": "4", strings.Repeat("K", 24): "24"}}
	maxInputs := &Computation{Runtime: RuntimeWASIP1, Module: m, Inputs: map[string]cid.Cid{}}
	for i := 0; i < MaxInputs; i++ {
		maxInputs.Inputs[fmt.Sprintf("in%02d", i)] = rawCID(fmt.Sprint(i))
	}
	maxEnv := &Computation{Runtime: RuntimeWASIP1, Module: m, Env: map[string]string{}}
	for i := 0; i < MaxEnv; i++ {
		maxEnv.Env[fmt.Sprintf("V%d", i)] = fmt.Sprint(i * i)
	}
	maxArgs := &Computation{Runtime: RuntimeWASIP1, Module: m}
	for i := 0; i < MaxArgs; i++ {
		maxArgs.Args = append(maxArgs.Args, fmt.Sprint(i))
	}
	cids := &Computation{Runtime: RuntimeWASIP1, Module: kinds[0], Inputs: map[string]cid.Cid{}}
	for i, c := range kinds {
		cids.Inputs[fmt.Sprintf("k%d", i)] = c
	}
	return []named[*Computation]{
		{"minimal", &Computation{Runtime: RuntimeWASIP1, Module: m}},
		{"empty-collections", &Computation{Runtime: RuntimeWASIP1, Module: m,
			Inputs: map[string]cid.Cid{}, Args: []string{}, Env: map[string]string{}}},
		{"one-of-each", &Computation{Runtime: RuntimeWASIP1, Module: m,
			Inputs: map[string]cid.Cid{"data": rawCID("data")}, Args: []string{"x"}, Env: map[string]string{"K": "v"}}},
		{"full", full},
		{"max-inputs", maxInputs},
		{"max-env", maxEnv},
		{"max-args", maxArgs},
		{"cid-kinds", cids},
	}
}

// envelopeOf returns an envelope of comp by the key of seed.
func envelopeOf(t testing.TB, seed int64, comp Computation) *Envelope {
	env, err := NewEnvelope(peerOf(t, seed), comp, rand.New(rand.NewSource(seed)), time.UnixMilli(1764000000123))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func goldenEnvelopes(t testing.TB) []named[*Envelope] {
	comps := goldenComputations(t)
	minimal, full := *comps[0].value, *comps[3].value
	var out []named[*Envelope]
	add := func(name string, seed int64, comp Computation, mutate func(e *Envelope)) {
		e := envelopeOf(t, seed, comp)
		if mutate != nil {
			mutate(e)
		}
		out = append(out, named[*Envelope]{name, e})
	}
	add("default", 1, minimal, nil)
	add("test", 1, Computation{}, func(e *Envelope) { *e = *testEnvelope(t, testKey(t, 1)) })
	add("full", 2, full, func(e *Envelope) {
		e.Replicas, e.Quorum = 3, 2
		e.Constraints = map[string]string{"region": "eu", "gpu": "", "arch": "amd64"}
	})
	add("limits-min", 1, minimal, func(e *Envelope) {
		e.Limits = Limits{WallTime: MinWallTime, Memory: MinMemory}
	})
	add("limits-max", 1, minimal, func(e *Envelope) {
		e.Limits = Limits{WallTime: MaxWallTime, Memory: MaxMemory, Stdout: MaxStreamBytes, Stderr: MaxStreamBytes, Outputs: MaxOutputBytes}
	})
	add("limits-small-ints", 1, minimal, func(e *Envelope) {
		e.Limits = Limits{WallTime: 23 * time.Millisecond, Memory: MinMemory + 1, Stdout: 23, Stderr: 24, Outputs: 255}
	})
	add("limits-mid-ints", 1, minimal, func(e *Envelope) {
		e.Limits = Limits{WallTime: 24 * time.Millisecond, Memory: 1<<32 - 1, Stdout: 256, Stderr: 65535, Outputs: 65536}
	})
	add("limits-wide-ints", 1, minimal, func(e *Envelope) {
		e.Limits = Limits{WallTime: 65536 * time.Millisecond, Memory: 1 << 31, Stdout: 1<<16 - 1, Stderr: 1 << 24, Outputs: 1 << 32}
	})
	add("replicas-max", 1, minimal, func(e *Envelope) { e.Replicas, e.Quorum = MaxReplicas, MaxReplicas })
	add("quorum-1-of-16", 1, minimal, func(e *Envelope) { e.Replicas, e.Quorum = MaxReplicas, 1 })
	add("nonce-min", 1, minimal, func(e *Envelope) { e.Nonce = bytes.Repeat([]byte{0xff}, MinNonceSize) })
	add("nonce-max", 1, minimal, func(e *Envelope) { e.Nonce = bytes.Repeat([]byte{0}, MaxNonceSize) })
	add("nonce-24", 1, minimal, func(e *Envelope) { e.Nonce = bytes.Repeat([]byte{0x18}, 24) })
	add("created-1ms", 1, minimal, func(e *Envelope) { e.Created = time.UnixMilli(1) })
	add("created-23ms", 1, minimal, func(e *Envelope) { e.Created = time.UnixMilli(23) })
	add("created-2^32ms", 1, minimal, func(e *Envelope) { e.Created = time.UnixMilli(1 << 32) })
	add("created-year-9999", 1, minimal, func(e *Envelope) { e.Created = time.UnixMilli(253402300799999) })
	add("constraints-max", 3, minimal, func(e *Envelope) {
		for i := 0; i < MaxConstraints-2; i++ {
			e.Constraints[fmt.Sprintf("label%d", i)] = fmt.Sprint(i)
		}
		e.Constraints[strings.Repeat("k", 64)] = strings.Repeat("v", 256)
		e.Constraints["é"] = ""
	})
	add("submitter-5", 5, minimal, nil)
	add("cid-kinds", 6, *comps[7].value, nil)
	large := minimal
	for i := 0; i < MaxArgs; i++ {
		large.Args = append(large.Args, strings.Repeat(fmt.Sprint(i%10), 60))
	}
	add("large", 7, large, nil)
	return out
}

func signAll(t testing.TB, envs []named[*Envelope]) []named[*SignedSpec] {
	var out []named[*SignedSpec]
	for _, e := range envs {
		s, err := SignSpec(testKey(t, seedOf(t, e.value.Submitter)), e.value)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, named[*SignedSpec]{e.name, s})
	}
	return out
}

// seedOf returns the testKey seed of a peer, among the seeds used here.
func seedOf(t testing.TB, id peer.ID) int64 {
	for seed := int64(1); seed < 200; seed++ {
		if peerOf(t, seed) == id {
			return seed
		}
	}
	t.Fatalf("no test key for %s", id)
	return 0
}

func goldenSignedSpecs(t testing.TB) []named[*SignedSpec] {
	var envs []named[*Envelope]
	for _, e := range goldenEnvelopes(t) {
		switch e.name {
		case "default", "test", "full", "limits-max", "constraints-max", "cid-kinds", "large":
			envs = append(envs, e)
		}
	}
	return signAll(t, envs)
}

// resultOf returns a result by the worker of seed.
func resultOf(t testing.TB, seed int64, mutate func(r *Result)) *Result {
	r := testResult(t, testKey(t, seed))
	if mutate != nil {
		mutate(r)
	}
	return r
}

func goldenResults(t testing.TB) []named[*Result] {
	kinds := cidKinds(t)
	out := []named[*Result]{
		{"test", resultOf(t, 3, nil)},
		{"ok", resultOf(t, 3, func(r *Result) { r.ExitCode = 0 })},
		{"exit-23", resultOf(t, 3, func(r *Result) { r.ExitCode = 23 })},
		{"exit-24", resultOf(t, 3, func(r *Result) { r.ExitCode = 24 })},
		{"exit-255", resultOf(t, 3, func(r *Result) { r.ExitCode = 255 })},
		{"exit-256", resultOf(t, 3, func(r *Result) { r.ExitCode = 256 })},
		{"exit-max", resultOf(t, 3, func(r *Result) { r.ExitCode = 1<<32 - 1 })},
		{"reason-without-failure", resultOf(t, 3, func(r *Result) { r.Reason = "exited after a signal" })},
		{"reason-max", resultOf(t, 4, func(r *Result) {
			r.ExitCode, r.Failure, r.Reason = -1, FailureWorker, strings.Repeat("é", MaxReasonSize/2)
		})},
		{"wall-zero", resultOf(t, 3, func(r *Result) { r.WallTime, r.PeakMemory = 0, 0 })},
		{"wall-max", resultOf(t, 3, func(r *Result) { r.WallTime = 2 * MaxWallTime })},
		{"peak-max", resultOf(t, 3, func(r *Result) { r.PeakMemory = 1 << 62 })},
		{"cid-kinds", resultOf(t, 5, func(r *Result) {
			r.Job, r.Computation, r.Stdout, r.Stderr, r.Outputs = kinds[0], kinds[3], kinds[4], kinds[5], kinds[6]
		})},
	}
	for i, f := range Failures() {
		out = append(out, named[*Result]{"failure-" + string(f), resultOf(t, 3, func(r *Result) {
			r.ExitCode, r.Failure = -1, f
			if i%2 == 0 {
				r.Reason = fmt.Sprintf("the run ended: %s", f)
			}
		})})
	}
	return out
}

func signResults(t testing.TB, rs []named[*Result]) []named[*SignedResult] {
	var out []named[*SignedResult]
	for _, r := range rs {
		s, err := SignResult(testKey(t, seedOf(t, r.value.Worker)), r.value)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, named[*SignedResult]{r.name, s})
	}
	return out
}

func goldenSignedResults(t testing.TB) []named[*SignedResult] {
	var rs []named[*Result]
	for _, r := range goldenResults(t) {
		switch r.name {
		case "test", "ok", "exit-max", "reason-max", "wall-max", "cid-kinds", "failure-trap", "failure-internal":
			rs = append(rs, r)
		}
	}
	return signResults(t, rs)
}

// goldenSpec returns the golden signed spec named name.
func goldenSpec(t testing.TB, name string) *SignedSpec {
	for _, s := range goldenSignedSpecs(t) {
		if s.name == name {
			return s.value
		}
	}
	t.Fatalf("no golden spec %q", name)
	return nil
}

// specResult returns a result of spec signed by the worker of seed.
func specResult(t testing.TB, spec *SignedSpec, seed int64, mutate func(r *Result)) *SignedResult {
	r := resultOf(t, seed, func(r *Result) {
		r.Job, r.Computation = spec.ID, spec.CompCID
		if mutate != nil {
			mutate(r)
		}
	})
	s, err := SignResult(testKey(t, seed), r)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func goldenSubmittedEntries(t testing.TB) []named[*SubmittedEntry] {
	var out []named[*SubmittedEntry]
	for _, name := range []string{"default", "full", "large"} {
		out = append(out, named[*SubmittedEntry]{"spec-" + name, NewSubmittedEntry(goldenSpec(t, name))})
	}
	// A spec too large for an entry body is named by its CID only.
	huge := envelopeOf(t, 8, Computation{Runtime: RuntimeWASIP1, Module: rawCID("m")})
	for i := 0; i < MaxArgs; i++ {
		huge.Computation.Args = append(huge.Computation.Args, strings.Repeat("x", 59))
	}
	hs, err := SignSpec(testKey(t, 8), huge)
	if err != nil {
		t.Fatal(err)
	}
	e := NewSubmittedEntry(hs)
	if e.Spec != nil {
		t.Fatal("the huge spec fits in an entry body")
	}
	out = append(out, named[*SubmittedEntry]{"spec-too-large", e})
	out = append(out, named[*SubmittedEntry]{"no-spec", &SubmittedEntry{Job: cidKinds(t)[0]}})
	return out
}

func goldenExecutedEntries(t testing.TB) []named[*ExecutedEntry] {
	spec := goldenSpec(t, "default")
	full := goldenSpec(t, "full")
	sub := spec.Envelope.Submitter
	return []named[*ExecutedEntry]{
		{"ok", &ExecutedEntry{Job: spec.ID, Submitter: sub, Result: specResult(t, spec, 11, func(r *Result) { r.ExitCode = 0 })}},
		{"exit-3", &ExecutedEntry{Job: spec.ID, Submitter: sub, Result: specResult(t, spec, 12, nil)}},
		{"failure", &ExecutedEntry{Job: full.ID, Submitter: full.Envelope.Submitter, Result: specResult(t, full, 13, func(r *Result) {
			r.ExitCode, r.Failure, r.Reason = -1, FailureMemory, "needed more than 256 MiB"
		})}},
	}
}

func goldenVerdictEntries(t testing.TB) []named[*VerdictEntry] {
	spec := goldenSpec(t, "default")
	r1 := specResult(t, spec, 11, func(r *Result) { r.ExitCode = 0 })
	r2 := specResult(t, spec, 12, func(r *Result) { r.ExitCode = 0 })
	r3 := specResult(t, spec, 13, func(r *Result) { r.ExitCode = 0; r.Stdout = rawCID("other") })
	rf := specResult(t, spec, 14, func(r *Result) { r.ExitCode, r.Failure = -1, FailureWallTime })
	var out []named[*VerdictEntry]
	add := func(name string, state State, verdict, reason string, replicas, quorum int, rs []*SignedResult, dis []peer.ID) {
		e, _, err := NewVerdictEntry(spec.ID, state, verdict, reason, replicas, quorum, rs, dis)
		if err != nil {
			t.Fatalf("verdict %s: %v", name, err)
		}
		out = append(out, named[*VerdictEntry]{name, e})
	}
	add("verified-1", StateDone, "verified", "", 1, 1, []*SignedResult{r1}, nil)
	add("verified-2-of-3", StateDone, "verified", "2 of 3 agree", 3, 2, []*SignedResult{r1, r2, r3}, []peer.ID{r3.Result.Worker})
	add("mismatch", StateFailed, "mismatch", "no 2 results agree", 2, 2, []*SignedResult{r1, r3},
		[]peer.ID{r1.Result.Worker, r3.Result.Worker})
	add("failed", StateFailed, "failed", "every replica failed", 1, 1, []*SignedResult{rf}, nil)
	add("failed-no-results", StateFailed, "failed", "no worker accepted the job", 2, 1, nil, nil)
	add("cancelled", StateCancelled, "", "cancelled by the submitter", 1, 1, nil, nil)
	add("cancelled-with-result", StateCancelled, "", "", 2, 2, []*SignedResult{r1}, nil)
	add("reason-truncated", StateFailed, "failed", strings.Repeat("ü", MaxVerdictReasonSize), 1, 1, []*SignedResult{rf}, nil)
	// Enough results that the last ones are named by CID only.
	var many []*SignedResult
	for i := 0; i < MaxVerdictResults; i++ {
		many = append(many, specResult(t, spec, int64(100+i), func(r *Result) {
			r.ExitCode, r.Failure, r.Reason = -1, FailureTrap, strings.Repeat("x", MaxReasonSize)
		}))
	}
	add("many-results", StateFailed, "failed", "all trapped", MaxReplicas, 1, many, nil)
	last := out[len(out)-1].value
	if last.Results[0].Signed == nil || last.Results[MaxVerdictResults-1].Signed != nil {
		t.Fatal("many-results: want the first results in full and the last by CID only")
	}
	// Hand-built: results by CID only, no disagreeing list.
	e := &VerdictEntry{Job: spec.ID, State: StateDone, Verdict: "verified", Replicas: 2, Quorum: 2,
		Results: []VerdictResult{{Worker: r1.Result.Worker, CID: r1.CID}, {Worker: r2.Result.Worker, CID: r2.CID}}}
	out = append(out, named[*VerdictEntry]{"by-cid-only", e})
	return out
}
