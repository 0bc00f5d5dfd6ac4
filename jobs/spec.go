package jobs

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multicodec"

	"github.com/shoalnet/shoal/crypto"
)

// FormatVersion is the version of the envelope and result formats this
// package writes and reads. An incompatible change gets a new version.
const FormatVersion = 1

// RuntimeWASIP1 is the only runtime: a wasm32 module run under WASI
// preview 1 by Shoal's sandbox, with its mounts, clock and random source as
// docs/jobs.md specifies. It is part of the computation, so a change of
// those semantics gets a new runtime name (and so new computation CIDs).
const RuntimeWASIP1 = "wasm32-wasip1/1"

// Size bounds of encoded records. Decoders check them before decoding.
const (
	MaxEnvelopeSize     = 64 << 10
	MaxSignedSpecSize   = MaxEnvelopeSize + 256
	MaxResultSize       = 8 << 10
	MaxSignedResultSize = MaxResultSize + 256
)

// Bounds of a computation.
const (
	MaxInputs      = 64
	MaxArgs        = 1024
	MaxEnv         = 256
	MaxConstraints = 32
)

// Bounds of the limits in an envelope. Decoding rejects values outside them.
const (
	MinWallTime    = time.Millisecond
	MaxWallTime    = 24 * time.Hour
	MinMemory      = 1 << 16 // one WebAssembly page
	MaxMemory      = 1 << 32 // the whole wasm32 address space
	MaxStreamBytes = 256 << 20
	MaxOutputBytes = 4 << 30
	MaxReplicas    = 16
	MinNonceSize   = 8
	MaxNonceSize   = 32
)

// mountName is the shape of an input name: it becomes /inputs/<name>.
var mountName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// A Computation is what determines a job's output: the module, its inputs,
// args and env. Two submissions of the same computation have the same
// computation CID, and the sandbox derives its clock and random source from
// that CID, so they give the same bytes.
type Computation struct {
	// Runtime names the execution semantics; only RuntimeWASIP1 exists.
	Runtime string
	// Module is the CID of the WebAssembly module (a UnixFS file).
	Module cid.Cid
	// Inputs maps a mount name to the CID of a UnixFS file or directory,
	// mounted read-only at /inputs/<name>.
	Inputs map[string]cid.Cid
	// Args are the program's arguments after argv[0], which is always "job".
	Args []string
	// Env is the program's environment; nothing else is set.
	Env map[string]string
}

// Limits bound one run of a job. All fields are required in the encoding.
type Limits struct {
	WallTime time.Duration // [MinWallTime, MaxWallTime], encoded in milliseconds
	Memory   uint64        // linear memory bytes, [MinMemory, MaxMemory]
	Stdout   uint64        // bytes, at most MaxStreamBytes
	Stderr   uint64        // bytes, at most MaxStreamBytes
	Outputs  uint64        // total bytes written under /outputs, at most MaxOutputBytes
}

// DefaultLimits returns the limits a job gets when the submitter sets none:
// 60 s wall time, 256 MiB memory, 1 MiB of stdout and of stderr, 64 MiB of
// outputs.
func DefaultLimits() Limits {
	return Limits{WallTime: time.Minute, Memory: 256 << 20, Stdout: 1 << 20, Stderr: 1 << 20, Outputs: 64 << 20}
}

// An Envelope wraps a computation with everything that does not change its
// output: limits, replication, submitter, nonce and time. The CID of its
// canonical encoding is the job ID.
type Envelope struct {
	Version     int // FormatVersion
	Computation Computation
	Limits      Limits
	Replicas    int // [1, MaxReplicas]
	Quorum      int // [1, Replicas]
	Submitter   peer.ID
	Nonce       []byte    // MinNonceSize..MaxNonceSize random bytes
	Created     time.Time // millisecond precision
	// Constraints are labels a worker must carry (for example region=eu).
	Constraints map[string]string
}

// Validate checks c and returns an error naming the first bad field.
func (c *Computation) Validate() error {
	if c.Runtime != RuntimeWASIP1 {
		return fmt.Errorf("jobs: computation.runtime is %q; only %q is supported", c.Runtime, RuntimeWASIP1)
	}
	if !c.Module.Defined() {
		return errors.New("jobs: computation.module: missing module CID")
	}
	if len(c.Inputs) > MaxInputs {
		return fmt.Errorf("jobs: computation.inputs has %d entries, at most %d allowed", len(c.Inputs), MaxInputs)
	}
	for name, in := range c.Inputs {
		if !mountName.MatchString(name) || name == "." || name == ".." {
			return fmt.Errorf("jobs: computation.inputs: mount name %q must be 1-64 of [A-Za-z0-9._-], starting with a letter or digit", name)
		}
		if !in.Defined() {
			return fmt.Errorf("jobs: computation.inputs[%s]: missing CID", name)
		}
	}
	if len(c.Args) > MaxArgs {
		return fmt.Errorf("jobs: computation.args has %d entries, at most %d allowed", len(c.Args), MaxArgs)
	}
	for i, a := range c.Args {
		if strings.IndexByte(a, 0) >= 0 || !utf8.ValidString(a) {
			return fmt.Errorf("jobs: computation.args[%d] must be UTF-8 without NUL bytes", i)
		}
	}
	if len(c.Env) > MaxEnv {
		return fmt.Errorf("jobs: computation.env has %d entries, at most %d allowed", len(c.Env), MaxEnv)
	}
	for k, v := range c.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || !utf8.ValidString(k) {
			return fmt.Errorf("jobs: computation.env: name %q must be non-empty UTF-8 without '=' or NUL", k)
		}
		if strings.IndexByte(v, 0) >= 0 || !utf8.ValidString(v) {
			return fmt.Errorf("jobs: computation.env[%s] must be UTF-8 without NUL bytes", k)
		}
	}
	return nil
}

// Validate checks l and returns an error naming the first bad field.
func (l Limits) Validate() error {
	switch {
	case l.WallTime < MinWallTime || l.WallTime > MaxWallTime || l.WallTime%time.Millisecond != 0:
		return fmt.Errorf("jobs: limits.wall_ms: %v is outside [%v, %v] or not whole milliseconds", l.WallTime, MinWallTime, MaxWallTime)
	case l.Memory < MinMemory || l.Memory > MaxMemory:
		return fmt.Errorf("jobs: limits.memory: %d bytes is outside [%d, %d]", l.Memory, MinMemory, uint64(MaxMemory))
	case l.Stdout > MaxStreamBytes:
		return fmt.Errorf("jobs: limits.stdout: %d bytes is more than %d", l.Stdout, MaxStreamBytes)
	case l.Stderr > MaxStreamBytes:
		return fmt.Errorf("jobs: limits.stderr: %d bytes is more than %d", l.Stderr, MaxStreamBytes)
	case l.Outputs > MaxOutputBytes:
		return fmt.Errorf("jobs: limits.outputs: %d bytes is more than %d", l.Outputs, uint64(MaxOutputBytes))
	}
	return nil
}

// Validate checks e and returns an error naming the first bad field.
func (e *Envelope) Validate() error {
	if e.Version != FormatVersion {
		return fmt.Errorf("jobs: envelope.version %d is not supported (want %d); upgrade shoal", e.Version, FormatVersion)
	}
	if err := e.Computation.Validate(); err != nil {
		return err
	}
	if err := e.Limits.Validate(); err != nil {
		return err
	}
	if e.Replicas < 1 || e.Replicas > MaxReplicas {
		return fmt.Errorf("jobs: envelope.replicas: %d is outside [1, %d]", e.Replicas, MaxReplicas)
	}
	if e.Quorum < 1 || e.Quorum > e.Replicas {
		return fmt.Errorf("jobs: envelope.quorum: %d is outside [1, replicas=%d]", e.Quorum, e.Replicas)
	}
	if e.Submitter == "" {
		return errors.New("jobs: envelope.submitter: missing peer ID")
	}
	if _, err := crypto.PubKeyFromID(e.Submitter); err != nil {
		return fmt.Errorf("jobs: envelope.submitter: %w", err)
	}
	if n := len(e.Nonce); n < MinNonceSize || n > MaxNonceSize {
		return fmt.Errorf("jobs: envelope.nonce is %d bytes, want %d to %d", n, MinNonceSize, MaxNonceSize)
	}
	if ms := e.Created.UnixMilli(); ms <= 0 || !e.Created.Equal(time.UnixMilli(ms)) {
		return fmt.Errorf("jobs: envelope.created_ms: %v must be after 1970 with millisecond precision", e.Created)
	}
	if len(e.Constraints) > MaxConstraints {
		return fmt.Errorf("jobs: envelope.constraints has %d entries, at most %d allowed", len(e.Constraints), MaxConstraints)
	}
	for k, v := range e.Constraints {
		if k == "" || len(k) > 64 || len(v) > 256 || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("jobs: envelope.constraints: label %q=%q needs a 1-64 byte name and a value of at most 256 bytes", k, v)
		}
	}
	return nil
}

// fillComputation writes c's entries into a DAG-CBOR map.
func fillComputation(c *Computation) func(datamodel.MapAssembler) {
	names := sortedKeys(c.Inputs)
	return func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "runtime", qp.String(c.Runtime))
		qp.MapEntry(ma, "module", link(c.Module))
		qp.MapEntry(ma, "inputs", qp.Map(int64(len(names)), func(ma datamodel.MapAssembler) {
			for _, n := range names {
				qp.MapEntry(ma, n, link(c.Inputs[n]))
			}
		}))
		qp.MapEntry(ma, "args", assembleStrings(c.Args))
		qp.MapEntry(ma, "env", assembleStringMap(c.Env))
	}
}

// Encode returns the canonical DAG-CBOR encoding of c. It fails if c does
// not validate.
func (c *Computation) Encode() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return buildMap("computation", 5, fillComputation(c))
}

// CID returns the computation's CID: the DAG-CBOR CID of its encoding.
func (c *Computation) CID() (cid.Cid, error) {
	b, err := c.Encode()
	if err != nil {
		return cid.Undef, err
	}
	return crypto.CIDOf(multicodec.DagCbor, b), nil
}

// Encode returns the canonical DAG-CBOR encoding of e. It fails if e does
// not validate.
func (e *Envelope) Encode() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	l := e.Limits
	return buildMap("envelope", 9, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "version", qp.Int(int64(e.Version)))
		qp.MapEntry(ma, "computation", qp.Map(5, fillComputation(&e.Computation)))
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
		qp.MapEntry(ma, "constraints", assembleStringMap(e.Constraints))
	})
}

// ID returns the job ID: the DAG-CBOR CID of e's encoding.
func (e *Envelope) ID() (cid.Cid, error) {
	b, err := e.Encode()
	if err != nil {
		return cid.Undef, err
	}
	return crypto.CIDOf(multicodec.DagCbor, b), nil
}

// readComputation reads a computation map; what names it in errors.
func readComputation(what string, n datamodel.Node) (Computation, error) {
	f := readFields(what, n, "runtime", "module", "inputs", "args", "env")
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

// DecodeComputation decodes canonical computation bytes. It rejects
// oversize, non-canonical or invalid input with an error naming the field.
func DecodeComputation(data []byte) (*Computation, error) {
	n, err := decodeCanonical("computation", data, MaxEnvelopeSize)
	if err != nil {
		return nil, err
	}
	c, err := readComputation("computation", n)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// DecodeEnvelope decodes canonical envelope bytes. It checks the size
// first, decodes strictly, requires the canonical form, and rejects unknown
// versions, unknown or missing fields and out-of-range limits with an
// error naming the field.
func DecodeEnvelope(data []byte) (*Envelope, error) {
	n, err := decodeCanonical("envelope", data, MaxEnvelopeSize)
	if err != nil {
		return nil, err
	}
	f := readFields("envelope", n, "version", "computation", "limits", "replicas", "quorum", "submitter", "nonce", "created_ms", "constraints")
	e := &Envelope{Version: int(f.int("version"))}
	if f.err == nil && e.Version != FormatVersion {
		return nil, fmt.Errorf("jobs: envelope.version %d is not supported (want %d); upgrade shoal", e.Version, FormatVersion)
	}
	if cn := f.get("computation"); cn != nil {
		c, err := readComputation("envelope.computation", cn)
		if err != nil {
			return nil, err
		}
		e.Computation = c
	}
	if ln := f.get("limits"); ln != nil {
		lf := readFields("envelope.limits", ln, "wall_ms", "memory", "stdout", "stderr", "outputs")
		wall := lf.int("wall_ms")
		if wall < 0 || wall > MaxWallTime.Milliseconds() {
			lf.fail("wall_ms", "%d is outside [%d, %d]", wall, MinWallTime.Milliseconds(), MaxWallTime.Milliseconds())
		}
		e.Limits = Limits{
			WallTime: time.Duration(wall) * time.Millisecond,
			Memory:   nonNegative(lf, "memory"),
			Stdout:   nonNegative(lf, "stdout"),
			Stderr:   nonNegative(lf, "stderr"),
			Outputs:  nonNegative(lf, "outputs"),
		}
		if lf.err != nil {
			return nil, lf.err
		}
	}
	e.Replicas = int(boundedInt(f, "replicas", MaxReplicas))
	e.Quorum = int(boundedInt(f, "quorum", MaxReplicas))
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

func nonNegative(f *fields, key string) uint64 {
	v := f.int(key)
	if v < 0 {
		f.fail(key, "%d is negative", v)
		return 0
	}
	return uint64(v)
}

func boundedInt(f *fields, key string, max int64) int64 {
	v := f.int(key)
	if v < 0 || v > max {
		f.fail(key, "%d is outside [0, %d]", v, max)
		return 0
	}
	return v
}

// NewEnvelope returns a version-1 envelope for comp submitted by submitter
// at now, with DefaultLimits, one replica, quorum 1, and a 16-byte nonce
// read from rand (pass crypto/rand.Reader, or a seeded reader in tests).
func NewEnvelope(submitter peer.ID, comp Computation, rand io.Reader, now time.Time) (*Envelope, error) {
	nonce := make([]byte, 16)
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, fmt.Errorf("jobs: read nonce: %w", err)
	}
	if comp.Runtime == "" {
		comp.Runtime = RuntimeWASIP1
	}
	return &Envelope{
		Version:     FormatVersion,
		Computation: comp,
		Limits:      DefaultLimits(),
		Replicas:    1,
		Quorum:      1,
		Submitter:   submitter,
		Nonce:       nonce,
		Created:     time.UnixMilli(now.UnixMilli()),
		Constraints: map[string]string{},
	}, nil
}
