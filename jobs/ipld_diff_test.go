package jobs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multicodec"

	"github.com/shoalnet/shoal/crypto"
)

// Differential tests of the codec against the go-ipld-prime oracle in
// ipld_oracle_test.go: on any input the package's decoders must accept
// exactly what the oracle accepts, decode it to the same value, and
// re-encode it to the input bytes; on any valid value the encoders must
// give the oracle's bytes.

// A diffDecoder pairs one of the package's decoders with its oracle.
type diffDecoder struct {
	name string // the golden set its seeds come from
	// decode decodes with the package and returns the value and its
	// re-encoding.
	decode func([]byte) (v any, again []byte, err error)
	oracle func([]byte) (any, error)
	same   func(got, want any) bool
}

func diffDecoders() []diffDecoder {
	return []diffDecoder{
		{"computation",
			func(b []byte) (any, []byte, error) {
				c, err := DecodeComputation(b)
				if err != nil {
					return nil, nil, err
				}
				again, err := c.Encode()
				return c, again, err
			},
			func(b []byte) (any, error) { return ipldDecodeComputation(b) },
			func(got, want any) bool {
				return reflect.DeepEqual(normComputation(*got.(*Computation)), normComputation(*want.(*Computation)))
			}},
		{"envelope",
			func(b []byte) (any, []byte, error) {
				e, err := DecodeEnvelope(b)
				if err != nil {
					return nil, nil, err
				}
				again, err := e.Encode()
				return e, again, err
			},
			func(b []byte) (any, error) { return ipldDecodeEnvelope(b) },
			func(got, want any) bool {
				return reflect.DeepEqual(normEnvelope(got.(*Envelope)), normEnvelope(want.(*Envelope)))
			}},
		{"signed_spec",
			func(b []byte) (any, []byte, error) {
				s, err := DecodeSignedSpecUnverified(b)
				if err != nil {
					return nil, nil, err
				}
				again, err := s.Encode()
				return s, again, err
			},
			func(b []byte) (any, error) { return ipldDecodeSignedSpec(b, false) },
			func(got, want any) bool { return sameSignedSpec(got.(*SignedSpec), want.(*SignedSpec)) }},
		{"result",
			func(b []byte) (any, []byte, error) {
				r, err := DecodeResult(b)
				if err != nil {
					return nil, nil, err
				}
				again, err := r.Encode()
				return r, again, err
			},
			func(b []byte) (any, error) { return ipldDecodeResult(b) },
			func(got, want any) bool { return *got.(*Result) == *want.(*Result) }},
		{"signed_result",
			func(b []byte) (any, []byte, error) {
				s, err := DecodeSignedResultUnverified(b)
				if err != nil {
					return nil, nil, err
				}
				again, err := s.Encode()
				return s, again, err
			},
			func(b []byte) (any, error) { return ipldDecodeSignedResult(b, false) },
			func(got, want any) bool { return sameSignedResult(got.(*SignedResult), want.(*SignedResult)) }},
		{"submitted_entry",
			func(b []byte) (any, []byte, error) {
				e, err := DecodeSubmittedEntry(b)
				if err != nil {
					return nil, nil, err
				}
				again, err := e.Encode()
				return e, again, err
			},
			func(b []byte) (any, error) { return ipldDecodeSubmittedEntry(b) },
			func(got, want any) bool {
				g, w := got.(*SubmittedEntry), want.(*SubmittedEntry)
				return g.Job == w.Job && (g.Spec == nil) == (w.Spec == nil) && (g.Spec == nil || sameSignedSpec(g.Spec, w.Spec))
			}},
		{"executed_entry",
			func(b []byte) (any, []byte, error) {
				e, err := DecodeExecutedEntry(b)
				if err != nil {
					return nil, nil, err
				}
				again, err := e.Encode()
				return e, again, err
			},
			func(b []byte) (any, error) { return ipldDecodeExecutedEntry(b) },
			func(got, want any) bool {
				g, w := got.(*ExecutedEntry), want.(*ExecutedEntry)
				return g.Job == w.Job && g.Submitter == w.Submitter && sameSignedResult(g.Result, w.Result)
			}},
		// ExecutedRef reads the same bodies without checking the signed
		// result; it re-encodes nothing, so again is its input when the
		// body decodes (checked against the full decoder by the oracle).
		{"executed_entry",
			func(b []byte) (any, []byte, error) {
				job, res, sub, err := ExecutedRef(b)
				if err != nil {
					return nil, nil, err
				}
				return [3]string{job.KeyString(), res.KeyString(), string(sub)}, b, nil
			},
			func(b []byte) (any, error) {
				job, res, sub, err := ipldExecutedRef(b)
				if err != nil {
					return nil, err
				}
				// The one deliberate difference: the old ExecutedRef never
				// read "signed", so it took bodies without it, or with
				// something other than bytes there, which no encoder
				// writes and DecodeExecutedEntry rejects. The new one
				// requires every field, as every other decoder does.
				n, err := ipldDecodeCanonical("", b, MaxLedgerBodySize)
				if err != nil {
					return nil, err
				}
				if f := ipldReadFields(LedgerKindExecuted, n, "version", "job", "submitter", "result", "signed"); f.bytes("signed") == nil && f.err != nil {
					return nil, f.err
				}
				return [3]string{job.KeyString(), res.KeyString(), string(sub)}, nil
			},
			func(got, want any) bool { return got == want }},
		{"verdict_entry",
			func(b []byte) (any, []byte, error) {
				e, err := DecodeVerdictEntry(b)
				if err != nil {
					return nil, nil, err
				}
				again, err := e.Encode()
				return e, again, err
			},
			func(b []byte) (any, error) { return ipldDecodeVerdictEntry(b) },
			func(got, want any) bool { return sameVerdictEntry(got.(*VerdictEntry), want.(*VerdictEntry)) }},
	}
}

// short abbreviates long inputs in messages.
func short(b []byte) string {
	if len(b) > 48 {
		return fmt.Sprintf("%x...(%d bytes)", b[:48], len(b))
	}
	return fmt.Sprintf("%x", b)
}

// diffCheck runs d and its oracle on data. It returns the two errors
// and reports to t any disagreement other than the error texts.
func diffCheck(t testing.TB, d diffDecoder, data []byte) (errNew, errOld error) {
	t.Helper()
	v, again, errNew := d.decode(data)
	w, errOld := d.oracle(data)
	switch {
	case errNew == nil && errOld != nil:
		t.Errorf("%s: %s: accepted, but the oracle rejects it: %v", d.name, short(data), errOld)
	case errNew != nil && errOld == nil:
		t.Errorf("%s: %s: rejected (%v), but the oracle accepts it", d.name, short(data), errNew)
	case errNew == nil:
		if !bytes.Equal(again, data) {
			t.Errorf("%s: %x: accepted, but re-encodes to %x", d.name, data, again) // in full: the difference matters
		}
		if !d.same(v, w) {
			t.Errorf("%s: %s: decodes to\n%#v\nthe oracle to\n%#v", d.name, short(data), v, w)
		}
	}
	return errNew, errOld
}

// TestDiffGolden runs every decoder and its oracle on the golden vectors,
// and checks that the oracle encodes the golden values to the same bytes.
func TestDiffGolden(t *testing.T) {
	vectors := goldenVectors(t)
	for _, d := range diffDecoders() {
		for _, b := range vectors[d.name] {
			if errNew, _ := diffCheck(t, d, b); errNew != nil {
				t.Errorf("%s: golden vector rejected: %v", d.name, errNew)
			}
		}
	}
}

// fieldPath matches the field an error names: "envelope.limits.memory"
// in "jobs: envelope.limits.memory: missing field".
var fieldPath = regexp.MustCompile(`^jobs: ([a-z_.]+(?:\[[^\]]*\])*(?:\.[a-z_]+(?:\[[^\]]*\])*)*)`)

// TestDiffMutations mutates the golden vectors structurally, one node of
// the CBOR tree at a time (non-minimal heads, indefinite lengths, other
// types, tags, floats, reordered, duplicate, missing and unknown keys,
// bad links, integer bounds, trailing bytes, inside embedded records
// too), and requires the decoders and the oracle to agree on every
// mutant. Where both reject, the errors must name the same field; the
// texts may differ (JOBS_DIFF_ERRORS=1 lists the pairs).
func TestDiffMutations(t *testing.T) {
	vectors := goldenVectors(t)
	listErrors := os.Getenv("JOBS_DIFF_ERRORS") == "1"
	rng := rand.New(rand.NewSource(1))
	total, accepted, sameText := 0, 0, 0
	for _, d := range diffDecoders() {
		for vi, b := range vectors[d.name] {
			root, rest, err := parseItem(b, true)
			if err != nil || len(rest) != 0 {
				t.Fatalf("%s vector %d: parse: %v", d.name, vi, err)
			}
			nodes := root.walk(nil)
			// Mutate a sample of the nodes, a small one in big vectors
			// (decoding them is slow, with the oracle).
			sample := 30
			if len(b) > 8<<10 {
				sample = 4
			}
			if len(nodes) > sample {
				rng.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
				nodes = nodes[:sample]
			}
			mutants := [][]byte{append(bytes.Clone(b), 0), append([]byte{0xd9, 0xd9, 0xf7}, b...), b[:len(b)-1]}
			for _, n := range nodes {
				for _, m := range n.mutations() {
					saved := *n
					*n = *m
					mutants = append(mutants, root.encode(nil))
					*n = saved
				}
			}
			for _, m := range mutants {
				total++
				errNew, errOld := diffCheck(t, d, m)
				if errNew == nil || errOld == nil {
					accepted++
					continue
				}
				if errNew.Error() == errOld.Error() {
					sameText++
					continue
				}
				if listErrors {
					t.Logf("%s %s\n  new: %v\n  old: %v", d.name, short(m), errNew, errOld)
				}
				if po := fieldPath.FindStringSubmatch(errOld.Error()); po != nil && strings.Contains(po[1], ".") {
					if !strings.Contains(errNew.Error(), po[1]) {
						t.Errorf("%s %s: the oracle's error names %s, this one does not:\n  new: %v\n  old: %v",
							d.name, short(m), po[1], errNew, errOld)
					}
				}
			}
		}
	}
	t.Logf("%d mutants, %d accepted by both, %d rejected with the same error text", total, accepted, sameText)
}

// A cborItem is one node of a parsed CBOR data item, kept with its exact
// head so that it re-encodes to the same bytes, or to deliberately
// different ones once mutated.
type cborItem struct {
	major    byte   // 0-7
	ai       byte   // additional information as encoded: <24, 24-27 or 31
	arg      uint64 // the head's argument
	data     []byte // text or byte string contents
	kids     []*cborItem
	embedded *cborItem // a byte string holding one CBOR map: parsed
}

func parseItem(b []byte, embed bool) (*cborItem, []byte, error) {
	if len(b) == 0 {
		return nil, nil, fmt.Errorf("truncated")
	}
	it := &cborItem{major: b[0] >> 5, ai: b[0] & 31}
	b = b[1:]
	switch {
	case it.ai < 24:
		it.arg = uint64(it.ai)
	case it.ai <= 27:
		n := 1 << (it.ai - 24)
		if len(b) < n {
			return nil, nil, fmt.Errorf("truncated head")
		}
		var buf [8]byte
		copy(buf[8-n:], b[:n])
		it.arg, b = binary.BigEndian.Uint64(buf[:]), b[n:]
	default:
		return nil, nil, fmt.Errorf("unsupported head %#x", it.ai)
	}
	var err error
	switch it.major {
	case 2, 3:
		if uint64(len(b)) < it.arg {
			return nil, nil, fmt.Errorf("truncated string")
		}
		it.data, b = b[:it.arg], b[it.arg:]
		if embed && it.major == 2 && len(it.data) > 0 && it.data[0]>>5 == 5 {
			if e, rest, err := parseItem(it.data, true); err == nil && len(rest) == 0 {
				it.embedded = e
			}
		}
	case 4, 5:
		n := it.arg
		if it.major == 5 {
			n *= 2
		}
		for i := uint64(0); i < n; i++ {
			var k *cborItem
			if k, b, err = parseItem(b, embed); err != nil {
				return nil, nil, err
			}
			it.kids = append(it.kids, k)
		}
	case 6:
		var k *cborItem
		if k, b, err = parseItem(b, embed); err != nil {
			return nil, nil, err
		}
		it.kids = []*cborItem{k}
	}
	return it, b, nil
}

// encode appends it with its heads exactly as recorded (ai 31 is an
// indefinite length: a string goes out as one chunk).
func (it *cborItem) encode(dst []byte) []byte {
	data := it.data
	if it.embedded != nil {
		data = it.embedded.encode(nil)
	}
	arg := it.arg
	if it.major == 2 || it.major == 3 {
		arg = uint64(len(data))
	}
	if it.ai == 31 {
		dst = append(dst, it.major<<5|31)
		if it.major == 2 || it.major == 3 {
			dst = appendTestHead(dst, it.major, 0, arg)
			dst = append(dst, data...)
		}
		for _, k := range it.kids {
			dst = k.encode(dst)
		}
		return append(dst, 0xff)
	}
	ai := it.ai
	if it.major == 2 || it.major == 3 {
		// Keep the width of the recorded head if the length still fits.
		if ai < 24 && arg >= 24 || ai == 24 && arg > 0xff || ai == 25 && arg > 0xffff {
			ai = 0
		}
	}
	dst = appendTestHead(dst, it.major, ai, arg)
	dst = append(dst, data...)
	for _, k := range it.kids {
		dst = k.encode(dst)
	}
	return dst
}

// appendHead appends a head of the given width (ai 24-27), or the
// shortest one when ai is below 24.
func appendTestHead(dst []byte, major, ai byte, arg uint64) []byte {
	if ai < 24 {
		switch {
		case arg < 24:
			return append(dst, major<<5|byte(arg))
		case arg <= 0xff:
			ai = 24
		case arg <= 0xffff:
			ai = 25
		case arg <= 0xffffffff:
			ai = 26
		default:
			ai = 27
		}
	}
	dst = append(dst, major<<5|ai)
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], arg)
	return append(dst, buf[8-(1<<(ai-24)):]...)
}

// walk lists it and every node under it, embedded records included.
func (it *cborItem) walk(out []*cborItem) []*cborItem {
	out = append(out, it)
	if it.embedded != nil {
		out = it.embedded.walk(out)
	}
	for _, k := range it.kids {
		out = k.walk(out)
	}
	return out
}

func rawItem(b ...byte) *cborItem {
	it, _, err := parseItem(b, false)
	if err != nil {
		panic(err)
	}
	return it
}

func textItem(s string) *cborItem { return &cborItem{major: 3, arg: uint64(len(s)), data: []byte(s)} }

func uintItem(v uint64) *cborItem { return &cborItem{major: 0, arg: v} }

func nintItem(v uint64) *cborItem { return &cborItem{major: 1, arg: v} }

func (it *cborItem) clone() *cborItem {
	c := *it
	c.kids = append([]*cborItem(nil), it.kids...)
	return &c
}

// mutations returns the replacements tried for it.
func (it *cborItem) mutations() []*cborItem {
	var out []*cborItem
	add := func(m *cborItem) { out = append(out, m) }
	orig := it.clone() // what a wrapper holds: it itself is replaced by the mutant
	wrap := func(tag uint64, k *cborItem) *cborItem { return &cborItem{major: 6, arg: tag, kids: []*cborItem{k}} }
	// Other types and simple values in its place.
	for _, r := range []*cborItem{rawItem(0xf6), rawItem(0xf7), rawItem(0xf5), rawItem(0xf9, 0, 0), rawItem(0xfb, 0, 0, 0, 0, 0, 0, 0, 0),
		rawItem(0xfa, 0x3f, 0x80, 0, 0), uintItem(0), nintItem(0), textItem(""), rawItem(0x40), rawItem(0x80), rawItem(0xa0)} {
		add(r)
	}
	link := wrap(42, &cborItem{major: 2, data: append([]byte{0}, rawCID("x").Bytes()...)})
	add(link)
	// Tags around it.
	for _, tag := range []uint64{0, 1, 2, 42, 55799} {
		add(wrap(tag, orig))
	}
	// A longer head than needed, and an indefinite length.
	if it.major != 7 && it.ai < 27 && it.embedded == nil {
		m := it.clone()
		if m.ai < 24 {
			m.ai = 24
		} else {
			m.ai++
		}
		add(m)
	}
	if it.major >= 2 && it.major <= 5 {
		m := it.clone()
		m.ai = 31
		add(m)
	}
	switch it.major {
	case 0, 1:
		for _, v := range []uint64{it.arg + 1, it.arg - 1, 23, 24, 255, 256, 1<<16 - 1, 1 << 16, 1<<32 - 1, 1 << 32,
			math.MaxInt64, math.MaxInt64 + 1, math.MaxUint64} {
			add(uintItem(v))
			add(nintItem(v))
		}
		add(wrap(2, &cborItem{major: 2, data: binary.BigEndian.AppendUint64(nil, it.arg)}))
	case 2, 3:
		m := it.clone()
		m.major = 5 - it.major // text <-> bytes
		add(m)
		for _, suffix := range [][]byte{{'x'}, {0}, {0xff}, {0xc3}} {
			m := it.clone()
			m.embedded = nil
			m.data = append(bytes.Clone(it.data), suffix...)
			add(m)
		}
		if len(it.data) > 0 {
			m := it.clone()
			m.embedded = nil
			m.data = it.data[:len(it.data)-1]
			add(m)
			m = it.clone()
			m.embedded = nil
			m.data = bytes.Clone(it.data)
			m.data[0] ^= 0x20 // case of a key, a CID's 0x00 prefix, ...
			add(m)
		}
	case 4:
		for i := range it.kids {
			m := it.clone()
			m.kids = append(m.kids[:i:i], m.kids[i+1:]...)
			m.arg--
			add(m)
			m = it.clone()
			m.kids = append(m.kids[:i+1:i+1], m.kids[i:]...)
			m.arg++
			add(m)
		}
		m := it.clone()
		m.kids = append(m.kids, rawItem(0xf6))
		m.arg++
		add(m)
	case 5:
		n := len(it.kids) / 2
		for i := 0; i < n; i++ {
			k, v := it.kids[2*i], it.kids[2*i+1]
			m := it.clone() // drop the entry
			m.kids = append(m.kids[:2*i:2*i], m.kids[2*i+2:]...)
			m.arg--
			add(m)
			m = it.clone() // duplicate it
			m.kids = append(m.kids[:2*i+2:2*i+2], m.kids[2*i:]...)
			m.arg++
			add(m)
			if i+1 < n { // swap it with the next
				m = it.clone()
				m.kids[2*i], m.kids[2*i+1], m.kids[2*i+2], m.kids[2*i+3] = m.kids[2*i+2], m.kids[2*i+3], k, v
				add(m)
			}
		}
		for _, extra := range [][2]*cborItem{{textItem("zz"), uintItem(0)}, {textItem(""), uintItem(0)}, {uintItem(1), uintItem(0)},
			{&cborItem{major: 2, data: []byte("sig")}, rawItem(0x40)}, {textItem("sig"), rawItem(0x40)}, {textItem("version"), uintItem(1)}} {
			m := it.clone()
			m.kids = append(m.kids, extra[0], extra[1])
			m.arg++
			add(m)
			m = it.clone()
			m.kids = append([]*cborItem{extra[0], extra[1]}, m.kids...)
			m.arg++
			add(m)
		}
	case 6:
		m := it.clone()
		m.arg++
		add(m)
		add(it.kids[0]) // untagged
	}
	return out
}

// Random valid values, encoded both ways.

// randString returns a random string of n bytes from a mix of ASCII,
// multi-byte runes and control characters (NUL aside).
func randString(rng *rand.Rand, n int) string {
	alphabet := []string{"a", "Z", "0", "-", "_", ".", " ", "\t", "\n", "é", "€", "😀", "\x7f", "\u2028"}
	var sb strings.Builder
	for sb.Len() < n {
		sb.WriteString(alphabet[rng.Intn(len(alphabet))])
	}
	return strings.ToValidUTF8(sb.String()[:n], "")
}

// randLen returns a length, favouring the ones next to CBOR head widths.
func randLen(rng *rand.Rand, max int) int {
	edges := []int{0, 1, 23, 24, 255, 256}
	if rng.Intn(2) == 0 {
		if l := edges[rng.Intn(len(edges))]; l <= max {
			return l
		}
	}
	return rng.Intn(max + 1)
}

func randInt(rng *rand.Rand, lo, hi int64) int64 {
	edges := []int64{lo, hi, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32}
	if rng.Intn(2) == 0 {
		if v := edges[rng.Intn(len(edges))]; v >= lo && v <= hi {
			return v
		}
	}
	return lo + rng.Int63n(hi-lo+1)
}

func randComputation(t testing.TB, rng *rand.Rand, kinds []cid.Cid) Computation {
	c := Computation{Runtime: RuntimeWASIP1, Module: kinds[rng.Intn(len(kinds))]}
	if rng.Intn(4) > 0 {
		c.Inputs = map[string]cid.Cid{}
		for i, n := 0, randLen(rng, MaxInputs); i < n; i++ {
			name := fmt.Sprintf("%c%s", "aZ09"[rng.Intn(4)], strings.Repeat("._-x"[rng.Intn(4):][:1], rng.Intn(40)))
			c.Inputs[name] = kinds[rng.Intn(len(kinds))]
		}
	}
	if rng.Intn(4) > 0 {
		c.Args = []string{}
		for i, n := 0, randLen(rng, 40); i < n; i++ {
			c.Args = append(c.Args, randString(rng, randLen(rng, 300)))
		}
	}
	if rng.Intn(4) > 0 {
		c.Env = map[string]string{}
		for i, n := 0, randLen(rng, 40); i < n; i++ {
			k := strings.ReplaceAll(randString(rng, 1+randLen(rng, 30)), "=", "")
			if k != "" {
				c.Env[k] = randString(rng, randLen(rng, 300))
			}
		}
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("random computation: %v", err)
	}
	return c
}

func randEnvelope(t testing.TB, rng *rand.Rand, kinds []cid.Cid, seeds []int64) *Envelope {
	seed := seeds[rng.Intn(len(seeds))]
	e := envelopeOf(t, seed, randComputation(t, rng, kinds))
	e.Limits = Limits{
		WallTime: time.Duration(randInt(rng, MinWallTime.Milliseconds(), MaxWallTime.Milliseconds())) * time.Millisecond,
		Memory:   uint64(randInt(rng, MinMemory, MaxMemory)),
		Stdout:   uint64(randInt(rng, 0, MaxStreamBytes)),
		Stderr:   uint64(randInt(rng, 0, MaxStreamBytes)),
		Outputs:  uint64(randInt(rng, 0, MaxOutputBytes)),
	}
	e.Replicas = int(randInt(rng, 1, MaxReplicas))
	e.Quorum = int(randInt(rng, 1, int64(e.Replicas)))
	e.Nonce = make([]byte, randInt(rng, MinNonceSize, MaxNonceSize))
	rng.Read(e.Nonce)
	e.Created = time.UnixMilli(randInt(rng, 1, 1<<45))
	for i, n := 0, randLen(rng, MaxConstraints); i < n; i++ {
		if k := randString(rng, 1+rng.Intn(64)); k != "" {
			e.Constraints[k] = randString(rng, randLen(rng, 256))
		}
	}
	if rng.Intn(5) == 0 {
		e.Constraints = nil
	}
	return e
}

func randResult(t testing.TB, rng *rand.Rand, kinds []cid.Cid, seeds []int64) *Result {
	r := testResult(t, testKey(t, seeds[rng.Intn(len(seeds))]))
	pick := func() cid.Cid { return kinds[rng.Intn(len(kinds))] }
	r.Job, r.Computation, r.Stdout, r.Stderr, r.Outputs = pick(), pick(), pick(), pick(), pick()
	r.ExitCode = randInt(rng, 0, 1<<32-1)
	if rng.Intn(3) == 0 {
		fs := Failures()
		r.ExitCode, r.Failure = -1, fs[rng.Intn(len(fs))]
	}
	r.Reason = randString(rng, randLen(rng, MaxReasonSize))
	r.WallTime = time.Duration(randInt(rng, 0, int64(2*MaxWallTime/time.Microsecond))) * time.Microsecond
	r.PeakMemory = uint64(randInt(rng, 0, 1<<62))
	return r
}

// TestDiffRandomValues encodes random valid values of every record type
// with the package and with the oracle, requires the same bytes, and
// decodes them back both ways.
func TestDiffRandomValues(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	kinds := append(cidKinds(t), rawCID("a"), rawCID("b"))
	seeds := []int64{1, 2, 3, 4, 5}
	decoders := map[string]diffDecoder{}
	for _, d := range diffDecoders() {
		if _, ok := decoders[d.name]; !ok {
			decoders[d.name] = d
		}
	}
	n := 150
	if testing.Short() {
		n = 20
	}
	both := func(name string, b1 []byte, err1 error, b2 []byte, err2 error) {
		t.Helper()
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: encode: %v / oracle: %v", name, err1, err2)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("%s: encodes to\n%x\nthe oracle to\n%x", name, b1, b2)
		}
		if errNew, _ := diffCheck(t, decoders[name], b1); errNew != nil {
			t.Fatalf("%s: %v", name, errNew)
		}
	}
	for i := 0; i < n; i++ {
		e := randEnvelope(t, rng, kinds, seeds)
		b1, err1 := e.Computation.Encode()
		b2, err2 := ipldEncodeComputation(&e.Computation)
		both("computation", b1, err1, b2, err2)
		c1, err1 := e.Computation.CID()
		c2, err2 := ipldComputationCID(&e.Computation)
		if err1 != nil || err2 != nil || c1 != c2 {
			t.Fatalf("computation CID %s, %v; oracle %s, %v", c1, err1, c2, err2)
		}
		b1, err1 = e.Encode()
		b2, err2 = ipldEncodeEnvelope(e)
		both("envelope", b1, err1, b2, err2)
		if id, err := e.ID(); err != nil || id != crypto.CIDOf(multicodec.DagCbor, b2) {
			t.Fatalf("envelope ID %s, %v", id, err)
		}
		s, err := SignSpec(testKey(t, seedOf(t, e.Submitter)), e)
		if err != nil {
			t.Fatal(err)
		}
		b1, err1 = s.Encode()
		b2, err2 = ipldEncodeSignedSpec(s)
		both("signed_spec", b1, err1, b2, err2)

		r := randResult(t, rng, kinds, seeds)
		r.Job, r.Computation = s.ID, s.CompCID
		b1, err1 = r.Encode()
		b2, err2 = ipldEncodeResult(r)
		both("result", b1, err1, b2, err2)
		sr, err := SignResult(testKey(t, seedOf(t, r.Worker)), r)
		if err != nil {
			t.Fatal(err)
		}
		b1, err1 = sr.Encode()
		b2, err2 = ipldEncodeSignedResult(sr)
		both("signed_result", b1, err1, b2, err2)

		sub := NewSubmittedEntry(s)
		b1, err1 = sub.Encode()
		b2, err2 = ipldEncodeSubmittedEntry(sub)
		both("submitted_entry", b1, err1, b2, err2)
		exe := &ExecutedEntry{Job: s.ID, Submitter: e.Submitter, Result: sr}
		b1, err1 = exe.Encode()
		b2, err2 = ipldEncodeExecutedEntry(exe)
		both("executed_entry", b1, err1, b2, err2)
		ver := &VerdictEntry{Job: s.ID, State: StateDone, Verdict: "verified", Reason: randString(rng, randLen(rng, MaxVerdictReasonSize)),
			Replicas: e.Replicas, Quorum: e.Quorum}
		switch rng.Intn(3) {
		case 0:
			ver.State, ver.Verdict = StateCancelled, ""
		case 1:
			ver.State, ver.Verdict = StateFailed, []string{"mismatch", "failed"}[rng.Intn(2)]
		}
		for j, k := 0, rng.Intn(4); j < k; j++ {
			vr := VerdictResult{Worker: sr.Result.Worker, CID: sr.CID}
			if rng.Intn(2) == 0 {
				vr.Signed = sr
			}
			ver.Results = append(ver.Results, vr)
			if rng.Intn(2) == 0 {
				ver.Disagreeing = append(ver.Disagreeing, peerOf(t, seeds[rng.Intn(len(seeds))]))
			}
		}
		b1, err1 = ver.Encode()
		b2, err2 = ipldEncodeVerdictEntry(ver)
		both("verdict_entry", b1, err1, b2, err2)
	}
}

// Fuzz targets: any input, both decoders. The seed corpora are the
// golden vectors (TestWriteDiffFuzzSeeds writes them to testdata/fuzz).

// maxDiffSeed bounds the seeds: the fuzzer spends long minimizing
// interesting inputs derived from big ones (TestDiffMutations covers the
// big vectors).
const maxDiffSeed = 1 << 10

func fuzzDiff(f *testing.F, name string) {
	vectors := goldenVectors(f)
	for _, b := range vectors[name] {
		if len(b) <= maxDiffSeed {
			f.Add(b)
		}
	}
	f.Add([]byte{0xa0})
	var ds []diffDecoder
	for _, d := range diffDecoders() {
		if d.name == name {
			ds = append(ds, d)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range ds {
			diffCheck(t, d, data)
		}
	})
}

func FuzzDiffComputation(f *testing.F)    { fuzzDiff(f, "computation") }
func FuzzDiffEnvelope(f *testing.F)       { fuzzDiff(f, "envelope") }
func FuzzDiffSignedSpec(f *testing.F)     { fuzzDiff(f, "signed_spec") }
func FuzzDiffResult(f *testing.F)         { fuzzDiff(f, "result") }
func FuzzDiffSignedResult(f *testing.F)   { fuzzDiff(f, "signed_result") }
func FuzzDiffSubmittedEntry(f *testing.F) { fuzzDiff(f, "submitted_entry") }
func FuzzDiffExecutedEntry(f *testing.F)  { fuzzDiff(f, "executed_entry") }
func FuzzDiffVerdictEntry(f *testing.F)   { fuzzDiff(f, "verdict_entry") }

// diffFuzzTargets maps each differential fuzz target to its golden set.
var diffFuzzTargets = map[string]string{
	"FuzzDiffComputation":    "computation",
	"FuzzDiffEnvelope":       "envelope",
	"FuzzDiffSignedSpec":     "signed_spec",
	"FuzzDiffResult":         "result",
	"FuzzDiffSignedResult":   "signed_result",
	"FuzzDiffSubmittedEntry": "submitted_entry",
	"FuzzDiffExecutedEntry":  "executed_entry",
	"FuzzDiffVerdictEntry":   "verdict_entry",
}

// TestWriteDiffFuzzSeeds writes the golden vectors and some of their
// mutants to testdata/fuzz/FuzzDiff* when JOBS_WRITE_FUZZ_SEEDS=1;
// otherwise it checks that the corpora exist.
func TestWriteDiffFuzzSeeds(t *testing.T) {
	vectors := goldenVectors(t)
	for target, set := range diffFuzzTargets {
		dir := filepath.Join("testdata", "fuzz", target)
		if os.Getenv("JOBS_WRITE_FUZZ_SEEDS") != "1" {
			if ents, err := os.ReadDir(dir); err != nil || len(ents) == 0 {
				t.Errorf("seed corpus %s missing: run JOBS_WRITE_FUZZ_SEEDS=1 go test -run TestWriteDiffFuzzSeeds ./jobs", dir)
			}
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var seeds [][]byte
		for _, b := range vectors[set] {
			if len(b) > maxDiffSeed {
				continue
			}
			seeds = append(seeds, b)
			// A few structural mutants of each: a missing, a duplicate
			// and a reordered entry of the top-level map.
			root, _, err := parseItem(b, false)
			if err != nil {
				t.Fatal(err)
			}
			ms := root.mutations()
			sort.SliceStable(ms, func(i, j int) bool { return ms[i].major == 5 && ms[j].major != 5 })
			for _, m := range ms[:3] {
				seeds = append(seeds, m.encode(nil))
			}
		}
		for i, b := range seeds {
			data := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%03d", i)), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
