package jobs

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
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
	return e.validateRest()
}

// validateRest checks e but for its version and computation.
func (e *Envelope) validateRest() error {
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

// wireComputation is the DAG-CBOR map of a computation.
type wireComputation struct {
	Runtime string             `cbor:"runtime"`
	Module  cidLink            `cbor:"module"`
	Inputs  map[string]cidLink `cbor:"inputs"`
	Args    []string           `cbor:"args"`
	Env     map[string]string  `cbor:"env"`
}

// wireLimits is the DAG-CBOR map of an envelope's limits.
type wireLimits struct {
	WallMS  int64 `cbor:"wall_ms"`
	Memory  int64 `cbor:"memory"`
	Stdout  int64 `cbor:"stdout"`
	Stderr  int64 `cbor:"stderr"`
	Outputs int64 `cbor:"outputs"`
}

// wireEnvelope is the DAG-CBOR map of an envelope. The computation is kept
// as its exact bytes, whose CID is the computation CID.
type wireEnvelope struct {
	Version     int64             `cbor:"version"`
	Computation cbor.RawMessage   `cbor:"computation"` // a wireComputation
	Limits      wireLimits        `cbor:"limits"`
	Replicas    int64             `cbor:"replicas"`
	Quorum      int64             `cbor:"quorum"`
	Submitter   []byte            `cbor:"submitter"`
	Nonce       []byte            `cbor:"nonce"`
	CreatedMS   int64             `cbor:"created_ms"`
	Constraints map[string]string `cbor:"constraints"`
}

// encode returns the canonical encoding of c without validating it.
func (c *Computation) encode() ([]byte, error) {
	inputs := make(map[string]cidLink, len(c.Inputs))
	for name, in := range c.Inputs {
		inputs[name] = cidLink{in}
	}
	return encode("computation", &wireComputation{
		Runtime: c.Runtime,
		Module:  cidLink{c.Module},
		Inputs:  inputs,
		Args:    c.Args,
		Env:     c.Env,
	})
}

// Encode returns the canonical DAG-CBOR encoding of c. It fails if c does
// not validate.
func (c *Computation) Encode() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c.encode()
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
	b, _, err := e.encode()
	return b, err
}

// encode validates e and returns its encoding and, within it, its
// computation's.
func (e *Envelope) encode() (env, comp []byte, err error) {
	if err := e.Validate(); err != nil {
		return nil, nil, err
	}
	if comp, err = e.Computation.encode(); err != nil {
		return nil, nil, err
	}
	l := e.Limits
	env, err = encode("envelope", &wireEnvelope{
		Version:     int64(e.Version),
		Computation: comp,
		Limits: wireLimits{
			WallMS:  l.WallTime.Milliseconds(),
			Memory:  int64(l.Memory),
			Stdout:  int64(l.Stdout),
			Stderr:  int64(l.Stderr),
			Outputs: int64(l.Outputs),
		},
		Replicas:    int64(e.Replicas),
		Quorum:      int64(e.Quorum),
		Submitter:   []byte(e.Submitter),
		Nonce:       e.Nonce,
		CreatedMS:   e.Created.UnixMilli(),
		Constraints: e.Constraints,
	})
	if err != nil {
		return nil, nil, err
	}
	return env, comp, nil
}

// ID returns the job ID: the DAG-CBOR CID of e's encoding.
func (e *Envelope) ID() (cid.Cid, error) {
	b, err := e.Encode()
	if err != nil {
		return cid.Undef, err
	}
	return crypto.CIDOf(multicodec.DagCbor, b), nil
}

// decodeComputation decodes and validates computation bytes; path names
// them in errors.
func decodeComputation(path string, data []byte) (Computation, error) {
	var w wireComputation
	if err := decodeCanonical(path, path, data, MaxEnvelopeSize, &w); err != nil {
		return Computation{}, err
	}
	c := Computation{
		Runtime: w.Runtime,
		Module:  w.Module.c,
		Inputs:  make(map[string]cid.Cid, len(w.Inputs)),
		Args:    w.Args,
		Env:     w.Env,
	}
	for name, in := range w.Inputs {
		c.Inputs[name] = in.c
	}
	if err := c.Validate(); err != nil {
		return Computation{}, err
	}
	return c, nil
}

// DecodeComputation decodes canonical computation bytes. It rejects
// oversize, non-canonical or invalid input with an error naming the field.
func DecodeComputation(data []byte) (*Computation, error) {
	c, err := decodeComputation("computation", data)
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
	e, _, err := decodeEnvelope(data)
	return e, err
}

// decodeEnvelope is DecodeEnvelope; it also returns the bytes of the
// computation within data.
func decodeEnvelope(data []byte) (*Envelope, []byte, error) {
	var w wireEnvelope
	if err := decodeCanonical("envelope", "envelope", data, MaxEnvelopeSize, &w); err != nil {
		return nil, nil, err
	}
	if w.Version != FormatVersion {
		return nil, nil, fmt.Errorf("jobs: envelope.version %d is not supported (want %d); upgrade shoal", w.Version, FormatVersion)
	}
	comp, err := decodeComputation("envelope.computation", w.Computation)
	if err != nil {
		return nil, nil, err
	}
	e := &Envelope{Version: FormatVersion, Computation: comp}
	var c checks
	wl := w.Limits
	if wl.WallMS < 0 || wl.WallMS > MaxWallTime.Milliseconds() {
		c.fail("envelope.limits.wall_ms", "%d is outside [%d, %d]", wl.WallMS, MinWallTime.Milliseconds(), MaxWallTime.Milliseconds())
	}
	e.Limits = Limits{
		WallTime: time.Duration(wl.WallMS) * time.Millisecond,
		Memory:   c.nonNegative("envelope.limits.memory", wl.Memory),
		Stdout:   c.nonNegative("envelope.limits.stdout", wl.Stdout),
		Stderr:   c.nonNegative("envelope.limits.stderr", wl.Stderr),
		Outputs:  c.nonNegative("envelope.limits.outputs", wl.Outputs),
	}
	e.Replicas = c.bounded("envelope.replicas", w.Replicas, MaxReplicas)
	e.Quorum = c.bounded("envelope.quorum", w.Quorum, MaxReplicas)
	if c.err != nil {
		return nil, nil, c.err
	}
	id, err := peer.IDFromBytes(w.Submitter)
	if err != nil {
		return nil, nil, fmt.Errorf("jobs: envelope.submitter is not a peer ID: %w", err)
	}
	e.Submitter = id
	e.Nonce = w.Nonce
	if w.CreatedMS <= 0 {
		return nil, nil, fmt.Errorf("jobs: envelope.created_ms: %d must be positive", w.CreatedMS)
	}
	e.Created = time.UnixMilli(w.CreatedMS)
	e.Constraints = w.Constraints
	if err := e.validateRest(); err != nil {
		return nil, nil, err
	}
	return e, w.Computation, nil
}

// checks records the first value found out of range, with an error
// naming its field.
type checks struct{ err error }

func (c *checks) fail(path, format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("jobs: %s: %s", path, fmt.Sprintf(format, args...))
	}
}

// nonNegative returns v, which must not be negative.
func (c *checks) nonNegative(path string, v int64) uint64 {
	if v < 0 {
		c.fail(path, "%d is negative", v)
		return 0
	}
	return uint64(v)
}

// bounded returns v, which must be in [0, max].
func (c *checks) bounded(path string, v, max int64) int {
	if v < 0 || v > max {
		c.fail(path, "%d is outside [0, %d]", v, max)
		return 0
	}
	return int(v)
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
