package jobs

// This file keeps the go-ipld-prime implementation of the codec that
// fxamacker/cbor replaced, unchanged but for ipld-prefixed names, as an
// oracle: ipld_diff_test.go checks that the two accept the same inputs
// and agree on the values and encodings. Do not "fix" it; it is the
// reference the new code is held to. The records' Validate methods, which
// the change did not touch, are the live ones.

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multicodec"

	"github.com/shoalnet/shoal/crypto"
)

// ipldEncodeNode returns the canonical DAG-CBOR bytes of n: links allowed,
// map keys in RFC 7049 canonical order (shorter keys first, then bytewise).
// sizeHint is the expected length, if known (0 if not), so that the
// buffer is allocated once.
func ipldEncodeNode(n datamodel.Node, sizeHint int) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, sizeHint))
	opts := dagcbor.EncodeOptions{AllowLinks: true, MapSortMode: codec.MapSortMode_RFC7049}
	if err := opts.Encode(n, buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ipldBuildMap builds a map node with fn and returns its canonical bytes.
func ipldBuildMap(what string, size int64, fn func(datamodel.MapAssembler)) ([]byte, error) {
	n, err := qp.BuildMap(basicnode.Prototype.Map, size, fn)
	if err != nil {
		return nil, fmt.Errorf("jobs: build %s: %w", what, err)
	}
	b, err := ipldEncodeNode(n, 0)
	if err != nil {
		return nil, fmt.Errorf("jobs: encode %s: %w", what, err)
	}
	return b, nil
}

// ipldDecodeCanonical checks the size of data, decodes it as strict DAG-CBOR
// and requires that re-encoding gives the same bytes, so that one value has
// exactly one encoding (and so one CID).
func ipldDecodeCanonical(what string, data []byte, max int) (datamodel.Node, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("jobs: %s is empty", what)
	}
	if len(data) > max {
		return nil, fmt.Errorf("jobs: %s is %d bytes, more than the %d allowed", what, len(data), max)
	}
	nb := basicnode.Prototype.Any.NewBuilder()
	opts := dagcbor.DecodeOptions{AllowLinks: true, MaxDepth: 8, AllocationBudget: int64(max) * 8}
	if err := opts.Decode(nb, bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("jobs: %s is not valid DAG-CBOR: %w", what, err)
	}
	n := nb.Build()
	again, err := ipldEncodeNode(n, len(data))
	if err != nil {
		return nil, fmt.Errorf("jobs: re-encode %s: %w", what, err)
	}
	if !bytes.Equal(again, data) {
		return nil, fmt.Errorf("jobs: %s is not in canonical DAG-CBOR form", what)
	}
	return n, nil
}

// ipldFields reads the entries of one DAG-CBOR map strictly: every key must be
// known, every read of a missing key or a value of the wrong kind records an
// error naming the field. The first error sticks.
type ipldFields struct {
	what string // "envelope", "envelope.limits", ...
	n    datamodel.Node
	err  error
}

// ipldReadFields checks that n is a map with string keys, all of them in known.
func ipldReadFields(what string, n datamodel.Node, known ...string) *ipldFields {
	f := &ipldFields{what: what, n: n}
	if n.Kind() != datamodel.Kind_Map {
		f.err = fmt.Errorf("jobs: %s is a %s, want a map", what, n.Kind())
		return f
	}
	it := n.MapIterator()
	for !it.Done() {
		k, _, err := it.Next()
		if err != nil {
			f.err = fmt.Errorf("jobs: %s: %w", what, err)
			return f
		}
		ks, err := k.AsString()
		if err != nil {
			f.err = fmt.Errorf("jobs: %s has a non-string key", what)
			return f
		}
		ok := false
		for _, name := range known {
			if ks == name {
				ok = true
				break
			}
		}
		if !ok {
			f.err = fmt.Errorf("jobs: %s has unknown field %q", what, ks)
			return f
		}
	}
	return f
}

func (f *ipldFields) fail(key, format string, args ...any) {
	if f.err == nil {
		f.err = fmt.Errorf("jobs: %s.%s: %s", f.what, key, fmt.Sprintf(format, args...))
	}
}

// get returns the value at key, or nil (recording an error) if it is missing.
func (f *ipldFields) get(key string) datamodel.Node {
	if f.err != nil {
		return nil
	}
	v, err := f.n.LookupByString(key)
	if err != nil || v == nil {
		f.fail(key, "missing field")
		return nil
	}
	return v
}

func (f *ipldFields) str(key string) string {
	v := f.get(key)
	if v == nil {
		return ""
	}
	s, err := v.AsString()
	if err != nil {
		f.fail(key, "is a %s, want a string", v.Kind())
	}
	return s
}

func (f *ipldFields) int(key string) int64 {
	v := f.get(key)
	if v == nil {
		return 0
	}
	i, err := v.AsInt()
	if err != nil {
		f.fail(key, "is a %s, want an integer", v.Kind())
	}
	return i
}

func (f *ipldFields) bytes(key string) []byte {
	v := f.get(key)
	if v == nil {
		return nil
	}
	b, err := v.AsBytes()
	if err != nil {
		f.fail(key, "is a %s, want bytes", v.Kind())
	}
	return b
}

func (f *ipldFields) link(key string) cid.Cid {
	return f.linkOf(key, f.get(key))
}

func (f *ipldFields) linkOf(key string, v datamodel.Node) cid.Cid {
	if v == nil {
		return cid.Undef
	}
	l, err := v.AsLink()
	if err != nil {
		f.fail(key, "is a %s, want a link (CID)", v.Kind())
		return cid.Undef
	}
	cl, ok := l.(cidlink.Link)
	if !ok || !cl.Cid.Defined() {
		f.fail(key, "is not a CID link")
		return cid.Undef
	}
	return cl.Cid
}

// strings reads a list of strings.
func (f *ipldFields) strings(key string) []string {
	v := f.get(key)
	if v == nil {
		return nil
	}
	if v.Kind() != datamodel.Kind_List {
		f.fail(key, "is a %s, want a list", v.Kind())
		return nil
	}
	out := make([]string, 0, v.Length())
	it := v.ListIterator()
	for !it.Done() {
		i, e, err := it.Next()
		if err != nil {
			f.fail(key, "%v", err)
			return nil
		}
		s, err := e.AsString()
		if err != nil {
			f.fail(fmt.Sprintf("%s[%d]", key, i), "is a %s, want a string", e.Kind())
			return nil
		}
		out = append(out, s)
	}
	return out
}

// entries reads a map with string keys; each value is handed to fn.
func (f *ipldFields) entries(key string, fn func(k string, v datamodel.Node)) {
	v := f.get(key)
	if v == nil {
		return
	}
	if v.Kind() != datamodel.Kind_Map {
		f.fail(key, "is a %s, want a map", v.Kind())
		return
	}
	it := v.MapIterator()
	for !it.Done() && f.err == nil {
		k, e, err := it.Next()
		if err != nil {
			f.fail(key, "%v", err)
			return
		}
		ks, err := k.AsString()
		if err != nil {
			f.fail(key, "has a non-string key")
			return
		}
		fn(ks, e)
	}
}

// stringMap reads a map of strings to strings.
func (f *ipldFields) stringMap(key string) map[string]string {
	out := map[string]string{}
	f.entries(key, func(k string, v datamodel.Node) {
		s, err := v.AsString()
		if err != nil {
			f.fail(key+"["+k+"]", "is a %s, want a string", v.Kind())
			return
		}
		out[k] = s
	})
	return out
}

// ipldAssembleStringMap writes m with keys in sorted order (the encoder sorts
// again canonically; sorting here only makes building deterministic).
func ipldAssembleStringMap(m map[string]string) qp.Assemble {
	keys := slices.Sorted(maps.Keys(m))
	return qp.Map(int64(len(keys)), func(ma datamodel.MapAssembler) {
		for _, k := range keys {
			qp.MapEntry(ma, k, qp.String(m[k]))
		}
	})
}

func ipldAssembleStrings(s []string) qp.Assemble {
	return qp.List(int64(len(s)), func(la datamodel.ListAssembler) {
		for _, e := range s {
			qp.ListEntry(la, qp.String(e))
		}
	})
}

func ipldLink(c cid.Cid) qp.Assemble { return qp.Link(cidlink.Link{Cid: c}) }

// ipldFillComputation writes c's entries into a DAG-CBOR map.
func ipldFillComputation(c *Computation) func(datamodel.MapAssembler) {
	names := slices.Sorted(maps.Keys(c.Inputs))
	return func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "runtime", qp.String(c.Runtime))
		qp.MapEntry(ma, "module", ipldLink(c.Module))
		qp.MapEntry(ma, "inputs", qp.Map(int64(len(names)), func(ma datamodel.MapAssembler) {
			for _, n := range names {
				qp.MapEntry(ma, n, ipldLink(c.Inputs[n]))
			}
		}))
		qp.MapEntry(ma, "args", ipldAssembleStrings(c.Args))
		qp.MapEntry(ma, "env", ipldAssembleStringMap(c.Env))
	}
}

// Encode returns the canonical DAG-CBOR encoding of c. It fails if c does
// not validate.
func ipldEncodeComputation(c *Computation) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return ipldBuildMap("computation", 5, ipldFillComputation(c))
}

// CID returns the computation's CID: the DAG-CBOR CID of its encoding.
func ipldComputationCID(c *Computation) (cid.Cid, error) {
	b, err := ipldEncodeComputation(c)
	if err != nil {
		return cid.Undef, err
	}
	return crypto.CIDOf(multicodec.DagCbor, b), nil
}

// Encode returns the canonical DAG-CBOR encoding of e. It fails if e does
// not validate.
func ipldEncodeEnvelope(e *Envelope) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	l := e.Limits
	return ipldBuildMap("envelope", 9, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "version", qp.Int(int64(e.Version)))
		qp.MapEntry(ma, "computation", qp.Map(5, ipldFillComputation(&e.Computation)))
		qp.MapEntry(ma, "limits", qp.Map(5, func(ma datamodel.MapAssembler) {
			qp.MapEntry(ma, "wall_ms", qp.Int(l.WallTime.Milliseconds()))
			qp.MapEntry(ma, "memory", qp.Int(int64(l.Memory)))
			qp.MapEntry(ma, "stdout", qp.Int(int64(l.Stdout)))
			qp.MapEntry(ma, "stderr", qp.Int(int64(l.Stderr)))
			qp.MapEntry(ma, "outputs", qp.Int(int64(l.Outputs)))
		}))
		qp.MapEntry(ma, "replicas", qp.Int(int64(e.Replicas)))
		qp.MapEntry(ma, "quorum", qp.Int(int64(e.Quorum)))
		qp.MapEntry(ma, "submitter", qp.Bytes([]byte(e.Submitter)))
		qp.MapEntry(ma, "nonce", qp.Bytes(e.Nonce))
		qp.MapEntry(ma, "created_ms", qp.Int(e.Created.UnixMilli()))
		qp.MapEntry(ma, "constraints", ipldAssembleStringMap(e.Constraints))
	})
}

// ipldReadComputation reads a computation map; what names it in errors.
func ipldReadComputation(what string, n datamodel.Node) (Computation, error) {
	f := ipldReadFields(what, n, "runtime", "module", "inputs", "args", "env")
	c := Computation{
		Runtime: f.str("runtime"),
		Module:  f.link("module"),
		Inputs:  map[string]cid.Cid{},
	}
	f.entries("inputs", func(k string, v datamodel.Node) {
		c.Inputs[k] = f.linkOf("inputs["+k+"]", v)
	})
	c.Args = f.strings("args")
	c.Env = f.stringMap("env")
	if f.err != nil {
		return Computation{}, f.err
	}
	if err := c.Validate(); err != nil {
		return Computation{}, err
	}
	return c, nil
}

// ipldDecodeComputation decodes canonical computation bytes. It rejects
// oversize, non-canonical or invalid input with an error naming the field.
func ipldDecodeComputation(data []byte) (*Computation, error) {
	n, err := ipldDecodeCanonical("computation", data, MaxEnvelopeSize)
	if err != nil {
		return nil, err
	}
	c, err := ipldReadComputation("computation", n)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// ipldDecodeEnvelope decodes canonical envelope bytes. It checks the size
// first, decodes strictly, requires the canonical form, and rejects unknown
// versions, unknown or missing fields and out-of-range limits with an
// error naming the field.
func ipldDecodeEnvelope(data []byte) (*Envelope, error) {
	n, err := ipldDecodeCanonical("envelope", data, MaxEnvelopeSize)
	if err != nil {
		return nil, err
	}
	f := ipldReadFields("envelope", n, "version", "computation", "limits", "replicas", "quorum", "submitter", "nonce", "created_ms", "constraints")
	e := &Envelope{Version: int(f.int("version"))}
	if f.err == nil && e.Version != FormatVersion {
		return nil, fmt.Errorf("jobs: envelope.version %d is not supported (want %d); upgrade shoal", e.Version, FormatVersion)
	}
	if cn := f.get("computation"); cn != nil {
		c, err := ipldReadComputation("envelope.computation", cn)
		if err != nil {
			return nil, err
		}
		e.Computation = c
	}
	if ln := f.get("limits"); ln != nil {
		lf := ipldReadFields("envelope.limits", ln, "wall_ms", "memory", "stdout", "stderr", "outputs")
		wall := lf.int("wall_ms")
		if wall < 0 || wall > MaxWallTime.Milliseconds() {
			lf.fail("wall_ms", "%d is outside [%d, %d]", wall, MinWallTime.Milliseconds(), MaxWallTime.Milliseconds())
		}
		e.Limits = Limits{
			WallTime: time.Duration(wall) * time.Millisecond,
			Memory:   ipldNonNegative(lf, "memory"),
			Stdout:   ipldNonNegative(lf, "stdout"),
			Stderr:   ipldNonNegative(lf, "stderr"),
			Outputs:  ipldNonNegative(lf, "outputs"),
		}
		if lf.err != nil {
			return nil, lf.err
		}
	}
	e.Replicas = int(ipldBoundedInt(f, "replicas", MaxReplicas))
	e.Quorum = int(ipldBoundedInt(f, "quorum", MaxReplicas))
	if sub := f.bytes("submitter"); f.err == nil {
		id, err := peer.IDFromBytes(sub)
		if err != nil {
			return nil, fmt.Errorf("jobs: envelope.submitter is not a peer ID: %w", err)
		}
		e.Submitter = id
	}
	e.Nonce = f.bytes("nonce")
	ms := f.int("created_ms")
	if f.err == nil && ms <= 0 {
		return nil, fmt.Errorf("jobs: envelope.created_ms: %d must be positive", ms)
	}
	e.Created = time.UnixMilli(ms)
	e.Constraints = f.stringMap("constraints")
	if f.err != nil {
		return nil, f.err
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return e, nil
}

func ipldNonNegative(f *ipldFields, key string) uint64 {
	v := f.int(key)
	if v < 0 {
		f.fail(key, "%d is negative", v)
		return 0
	}
	return uint64(v)
}

func ipldBoundedInt(f *ipldFields, key string, max int64) int64 {
	v := f.int(key)
	if v < 0 || v > max {
		f.fail(key, "%d is outside [0, %d]", v, max)
		return 0
	}
	return v
}

func ipldNewSignedSpec(env *Envelope, b, sig []byte) (*SignedSpec, error) {
	comp, err := ipldComputationCID(&env.Computation)
	if err != nil {
		return nil, err
	}
	return &SignedSpec{Envelope: env, Bytes: b, Sig: sig, ID: crypto.CIDOf(multicodec.DagCbor, b), CompCID: comp}, nil
}

// Encode returns the canonical encoding of s.
func ipldEncodeSignedSpec(s *SignedSpec) ([]byte, error) {
	return ipldBuildMap("signed spec", 2, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "envelope", qp.Bytes(s.Bytes))
		qp.MapEntry(ma, "sig", qp.Bytes(s.Sig))
	})
}

func ipldDecodeSignedSpec(data []byte, verify bool) (*SignedSpec, error) {
	n, err := ipldDecodeCanonical("signed spec", data, MaxSignedSpecSize)
	if err != nil {
		return nil, err
	}
	f := ipldReadFields("signed spec", n, "envelope", "sig")
	b, sig := f.bytes("envelope"), f.bytes("sig")
	if f.err != nil {
		return nil, f.err
	}
	env, err := ipldDecodeEnvelope(b)
	if err != nil {
		return nil, err
	}
	pub, err := crypto.PubKeyFromID(env.Submitter)
	if err != nil {
		return nil, fmt.Errorf("jobs: signed spec: %w", err)
	}
	if verify {
		if err := crypto.Verify(pub, crypto.DomainJobSpec, b, sig); err != nil {
			return nil, fmt.Errorf("jobs: signed spec from %s: %w", env.Submitter, err)
		}
	}
	return ipldNewSignedSpec(env, b, sig)
}

// Encode returns the canonical DAG-CBOR encoding of r. It fails if r does
// not validate.
func ipldEncodeResult(r *Result) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return ipldBuildMap("result", 12, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "version", qp.Int(int64(r.Version)))
		qp.MapEntry(ma, "job", ipldLink(r.Job))
		qp.MapEntry(ma, "computation", ipldLink(r.Computation))
		qp.MapEntry(ma, "worker", qp.Bytes([]byte(r.Worker)))
		qp.MapEntry(ma, "exit_code", qp.Int(r.ExitCode))
		qp.MapEntry(ma, "failure", qp.String(string(r.Failure)))
		qp.MapEntry(ma, "reason", qp.String(r.Reason))
		qp.MapEntry(ma, "stdout", ipldLink(r.Stdout))
		qp.MapEntry(ma, "stderr", ipldLink(r.Stderr))
		qp.MapEntry(ma, "outputs", ipldLink(r.Outputs))
		qp.MapEntry(ma, "wall_us", qp.Int(r.WallTime.Microseconds()))
		qp.MapEntry(ma, "peak_memory", qp.Int(int64(r.PeakMemory)))
	})
}

// ipldDecodeResult decodes canonical result bytes, checking size first and
// rejecting unknown versions, unknown or missing fields and bad values with
// an error naming the field.
func ipldDecodeResult(data []byte) (*Result, error) {
	n, err := ipldDecodeCanonical("result", data, MaxResultSize)
	if err != nil {
		return nil, err
	}
	f := ipldReadFields("result", n, "version", "job", "computation", "worker", "exit_code", "failure", "reason",
		"stdout", "stderr", "outputs", "wall_us", "peak_memory")
	r := &Result{Version: int(f.int("version"))}
	if f.err == nil && r.Version != FormatVersion {
		return nil, fmt.Errorf("jobs: result.version %d is not supported (want %d); upgrade shoal", r.Version, FormatVersion)
	}
	r.Job = f.link("job")
	r.Computation = f.link("computation")
	if w := f.bytes("worker"); f.err == nil {
		id, err := peer.IDFromBytes(w)
		if err != nil {
			return nil, fmt.Errorf("jobs: result.worker is not a peer ID: %w", err)
		}
		r.Worker = id
	}
	r.ExitCode = f.int("exit_code")
	r.Failure = Failure(f.str("failure"))
	r.Reason = f.str("reason")
	r.Stdout = f.link("stdout")
	r.Stderr = f.link("stderr")
	r.Outputs = f.link("outputs")
	us := f.int("wall_us")
	if f.err == nil && (us < 0 || us > int64(MaxWallTime/time.Microsecond)*2) {
		f.fail("wall_us", "%d is out of range", us)
	}
	r.WallTime = time.Duration(us) * time.Microsecond
	r.PeakMemory = ipldNonNegative(f, "peak_memory")
	if f.err != nil {
		return nil, f.err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// Encode returns the canonical encoding of s.
func ipldEncodeSignedResult(s *SignedResult) ([]byte, error) {
	return ipldBuildMap("signed result", 2, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "result", qp.Bytes(s.Bytes))
		qp.MapEntry(ma, "sig", qp.Bytes(s.Sig))
	})
}

func ipldDecodeSignedResult(data []byte, verify bool) (*SignedResult, error) {
	n, err := ipldDecodeCanonical("signed result", data, MaxSignedResultSize)
	if err != nil {
		return nil, err
	}
	f := ipldReadFields("signed result", n, "result", "sig")
	b, sig := f.bytes("result"), f.bytes("sig")
	if f.err != nil {
		return nil, f.err
	}
	r, err := ipldDecodeResult(b)
	if err != nil {
		return nil, err
	}
	pub, err := crypto.PubKeyFromID(r.Worker)
	if err != nil {
		return nil, fmt.Errorf("jobs: signed result: %w", err)
	}
	if verify {
		if err := crypto.Verify(pub, crypto.DomainJobResult, b, sig); err != nil {
			return nil, fmt.Errorf("jobs: signed result from %s: %w", r.Worker, err)
		}
	}
	return &SignedResult{Result: r, Bytes: b, Sig: sig, CID: crypto.CIDOf(multicodec.DagCbor, b)}, nil
}

// Encode returns the canonical DAG-CBOR encoding of e.
func ipldEncodeSubmittedEntry(e *SubmittedEntry) ([]byte, error) {
	if !e.Job.Defined() {
		return nil, fmt.Errorf("jobs: %s.job: missing job CID", LedgerKindSubmitted)
	}
	var spec []byte
	if e.Spec != nil {
		if e.Spec.ID != e.Job {
			return nil, fmt.Errorf("jobs: %s: spec is job %s, entry names %s", LedgerKindSubmitted, e.Spec.ID, e.Job)
		}
		var err error
		if spec, err = ipldEncodeSignedSpec(e.Spec); err != nil {
			return nil, err
		}
	}
	return ipldEncodeBody(LedgerKindSubmitted, 3, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "version", qp.Int(LedgerVersion))
		qp.MapEntry(ma, "job", ipldLink(e.Job))
		qp.MapEntry(ma, "spec", qp.Bytes(spec))
	})
}

// ipldDecodeSubmittedEntry decodes and checks a job.submitted body: size,
// canonical form, fields, and the included spec's signature and job CID.
func ipldDecodeSubmittedEntry(data []byte) (*SubmittedEntry, error) {
	f, err := ipldReadBody(LedgerKindSubmitted, data, "version", "job", "spec")
	if err != nil {
		return nil, err
	}
	e := &SubmittedEntry{Job: f.link("job")}
	spec := f.bytes("spec")
	if f.err != nil {
		return nil, f.err
	}
	if len(spec) > 0 {
		s, err := ipldDecodeSignedSpec(spec, true)
		if err != nil {
			return nil, fmt.Errorf("jobs: %s.spec: %w", LedgerKindSubmitted, err)
		}
		if s.ID != e.Job {
			return nil, fmt.Errorf("jobs: %s.spec is job %s, the entry names %s", LedgerKindSubmitted, s.ID, e.Job)
		}
		e.Spec = s
	}
	return e, nil
}

// Encode returns the canonical DAG-CBOR encoding of e.
func ipldEncodeExecutedEntry(e *ExecutedEntry) ([]byte, error) {
	switch {
	case !e.Job.Defined():
		return nil, fmt.Errorf("jobs: %s.job: missing job CID", LedgerKindExecuted)
	case e.Submitter == "":
		return nil, fmt.Errorf("jobs: %s.submitter: missing peer ID", LedgerKindExecuted)
	case e.Result == nil || e.Result.Result.Job != e.Job:
		return nil, fmt.Errorf("jobs: %s.signed: missing, or not a result of job %s", LedgerKindExecuted, e.Job)
	}
	signed, err := ipldEncodeSignedResult(e.Result)
	if err != nil {
		return nil, err
	}
	return ipldEncodeBody(LedgerKindExecuted, 5, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "version", qp.Int(LedgerVersion))
		qp.MapEntry(ma, "job", ipldLink(e.Job))
		qp.MapEntry(ma, "submitter", qp.Bytes([]byte(e.Submitter)))
		qp.MapEntry(ma, "result", ipldLink(e.Result.CID))
		qp.MapEntry(ma, "signed", qp.Bytes(signed))
	})
}

// ipldDecodeExecutedEntry decodes and checks a job.executed body: size,
// canonical form, fields, the signed result's signature, and that it is a
// result of the entry's job with the entry's result CID.
func ipldDecodeExecutedEntry(data []byte) (*ExecutedEntry, error) {
	f, err := ipldReadBody(LedgerKindExecuted, data, "version", "job", "submitter", "result", "signed")
	if err != nil {
		return nil, err
	}
	e := &ExecutedEntry{Job: f.link("job")}
	e.Submitter = ipldPeerField(f, "submitter")
	rc := f.link("result")
	signed := f.bytes("signed")
	if f.err != nil {
		return nil, f.err
	}
	res, err := ipldDecodeSignedResult(signed, true)
	if err != nil {
		return nil, fmt.Errorf("jobs: %s.signed: %w", LedgerKindExecuted, err)
	}
	if res.Result.Job != e.Job || res.CID != rc {
		return nil, fmt.Errorf("jobs: %s.signed is result %s of job %s, the entry names result %s of job %s",
			LedgerKindExecuted, res.CID, res.Result.Job, rc, e.Job)
	}
	e.Result = res
	return e, nil
}

// ipldExecutedRef reads the job and result CIDs and the submitter of a
// job.executed body without checking the signed result it carries: for
// bodies of entries already verified, as a replica's are, when only the
// reference matters.
func ipldExecutedRef(data []byte) (job, result cid.Cid, submitter peer.ID, err error) {
	f, err := ipldReadBody(LedgerKindExecuted, data, "version", "job", "submitter", "result", "signed")
	if err != nil {
		return cid.Undef, cid.Undef, "", err
	}
	job, result = f.link("job"), f.link("result")
	submitter = ipldPeerField(f, "submitter")
	if f.err != nil {
		return cid.Undef, cid.Undef, "", f.err
	}
	return job, result, submitter, nil
}

// encode returns the encoding of e whatever its size.
func ipldEncodeVerdictEntry(e *VerdictEntry) ([]byte, error) {
	if err := e.validate(); err != nil {
		return nil, err
	}
	signed := make([][]byte, len(e.Results))
	for i, r := range e.Results {
		if r.Signed != nil {
			b, err := ipldEncodeSignedResult(r.Signed)
			if err != nil {
				return nil, err
			}
			signed[i] = b
		}
	}
	return ipldBuildMap(LedgerKindVerdict+" entry", 9, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "version", qp.Int(LedgerVersion))
		qp.MapEntry(ma, "job", ipldLink(e.Job))
		qp.MapEntry(ma, "state", qp.String(string(e.State)))
		qp.MapEntry(ma, "verdict", qp.String(e.Verdict))
		qp.MapEntry(ma, "reason", qp.String(e.Reason))
		qp.MapEntry(ma, "replicas", qp.Int(int64(e.Replicas)))
		qp.MapEntry(ma, "quorum", qp.Int(int64(e.Quorum)))
		qp.MapEntry(ma, "results", qp.List(int64(len(e.Results)), func(la datamodel.ListAssembler) {
			for i, r := range e.Results {
				qp.ListEntry(la, qp.Map(3, func(ma datamodel.MapAssembler) {
					qp.MapEntry(ma, "worker", qp.Bytes([]byte(r.Worker)))
					qp.MapEntry(ma, "result", ipldLink(r.CID))
					qp.MapEntry(ma, "signed", qp.Bytes(signed[i]))
				}))
			}
		}))
		qp.MapEntry(ma, "disagreeing", qp.List(int64(len(e.Disagreeing)), func(la datamodel.ListAssembler) {
			for _, p := range e.Disagreeing {
				qp.ListEntry(la, qp.Bytes([]byte(p)))
			}
		}))
	})
}

// ipldDecodeVerdictEntry decodes and checks a job.verdict body: size, canonical
// form, fields and their ranges, and every included signed result's
// signature, worker, job and CID.
func ipldDecodeVerdictEntry(data []byte) (*VerdictEntry, error) {
	f, err := ipldReadBody(LedgerKindVerdict, data, "version", "job", "state", "verdict", "reason",
		"replicas", "quorum", "results", "disagreeing")
	if err != nil {
		return nil, err
	}
	e := &VerdictEntry{Job: f.link("job"), State: State(f.str("state")), Verdict: f.str("verdict"), Reason: f.str("reason")}
	e.Replicas = int(ipldBoundedInt(f, "replicas", MaxReplicas))
	e.Quorum = int(ipldBoundedInt(f, "quorum", MaxReplicas))
	var signed [][]byte
	f.list("results", MaxVerdictResults, func(i int, v datamodel.Node) {
		rf := ipldReadFields(fmt.Sprintf("%s.results[%d]", LedgerKindVerdict, i), v, "worker", "result", "signed")
		r := VerdictResult{Worker: ipldPeerField(rf, "worker"), CID: rf.link("result")}
		s := rf.bytes("signed")
		if rf.err != nil && f.err == nil {
			f.err = rf.err
		}
		e.Results = append(e.Results, r)
		signed = append(signed, s)
	})
	f.list("disagreeing", MaxVerdictResults, func(i int, v datamodel.Node) {
		b, err := v.AsBytes()
		if err != nil {
			f.fail(fmt.Sprintf("disagreeing[%d]", i), "is a %s, want bytes", v.Kind())
			return
		}
		p, err := peer.IDFromBytes(b)
		if err != nil {
			f.fail(fmt.Sprintf("disagreeing[%d]", i), "is not a peer ID: %v", err)
			return
		}
		e.Disagreeing = append(e.Disagreeing, p)
	})
	if f.err != nil {
		return nil, f.err
	}
	for i, s := range signed {
		if len(s) == 0 {
			continue
		}
		res, err := ipldDecodeSignedResult(s, true)
		if err != nil {
			return nil, fmt.Errorf("jobs: %s.results[%d].signed: %w", LedgerKindVerdict, i, err)
		}
		e.Results[i].Signed = res
	}
	if err := e.validate(); err != nil {
		return nil, err
	}
	return e, nil
}

// ipldEncodeBody builds a body map and checks its size.
func ipldEncodeBody(kind string, size int64, fn func(datamodel.MapAssembler)) ([]byte, error) {
	b, err := ipldBuildMap(kind+" entry", size, fn)
	if err != nil {
		return nil, err
	}
	return ipldCheckBodySize(kind, b)
}

func ipldCheckBodySize(kind string, b []byte) ([]byte, error) {
	if len(b) > MaxLedgerBodySize {
		return nil, fmt.Errorf("jobs: %s entry is %d bytes, more than the %d a ledger body may hold", kind, len(b), MaxLedgerBodySize)
	}
	return b, nil
}

// ipldReadBody decodes a body strictly and checks its version.
func ipldReadBody(kind string, data []byte, known ...string) (*ipldFields, error) {
	n, err := ipldDecodeCanonical(kind+" entry", data, MaxLedgerBodySize)
	if err != nil {
		return nil, err
	}
	f := ipldReadFields(kind, n, known...)
	if v := f.int("version"); f.err == nil && v != LedgerVersion {
		return nil, fmt.Errorf("jobs: %s.version %d is not supported (want %d); upgrade shoal", kind, v, LedgerVersion)
	}
	if f.err != nil {
		return nil, f.err
	}
	return f, nil
}

// ipldPeerField reads a peer ID stored as bytes.
func ipldPeerField(f *ipldFields, key string) peer.ID {
	b := f.bytes(key)
	if f.err != nil {
		return ""
	}
	p, err := peer.IDFromBytes(b)
	if err != nil {
		f.fail(key, "is not a peer ID: %v", err)
		return ""
	}
	return p
}

// list reads a list of at most max elements, handing each to fn.
func (f *ipldFields) list(key string, max int, fn func(i int, v datamodel.Node)) {
	v := f.get(key)
	if v == nil {
		return
	}
	if v.Kind() != datamodel.Kind_List {
		f.fail(key, "is a %s, want a list", v.Kind())
		return
	}
	if v.Length() > int64(max) {
		f.fail(key, "has %d elements, more than %d", v.Length(), max)
		return
	}
	it := v.ListIterator()
	for !it.Done() && f.err == nil {
		i, e, err := it.Next()
		if err != nil {
			f.fail(key, "%v", err)
			return
		}
		fn(int(i), e)
	}
}
