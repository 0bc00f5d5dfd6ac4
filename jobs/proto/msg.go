package proto

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-varint"
)

// ID is the protocol ID of the job stream protocol: a stream carries one
// exchange after another (see the package documentation).
const ID = "/shoal/job/1.1.0"

// ID10 is the first version of the protocol, whose stream carries exactly
// one exchange. Workers still serve it; submitters ask for ID first.
const ID10 = "/shoal/job/1.0.0"

// Bounds on messages and their fields. A message over a bound is rejected.
const (
	MaxMessageSize = 256 << 10 // a whole message body
	MaxSpecSize    = 128 << 10 // the signed spec in an Offer
	MaxResultSize  = 32 << 10  // the signed result in a Result
	MaxReasonSize  = 1024      // a Decline, Cancel or Error text
	MaxSigSize     = 512       // a Commit signature
	MaxReplicas    = 64        // replica indexes are below this
	MaxRunTimeout  = 24 * time.Hour
	HashSize       = 32 // a commitment hash (sha2-256)
)

// A Type is the first byte of a message body. Types are append-only.
type Type byte

// The message types.
const (
	TypeOffer   Type = 1
	TypeAccept  Type = 2
	TypeDecline Type = 3
	TypeCommit  Type = 4
	TypeReveal  Type = 5
	TypeResult  Type = 6
	TypeCancel  Type = 7
	TypeError   Type = 8
)

var typeNames = map[Type]string{
	TypeOffer: "offer", TypeAccept: "accept", TypeDecline: "decline", TypeCommit: "commit",
	TypeReveal: "reveal", TypeResult: "result", TypeCancel: "cancel", TypeError: "error",
}

// String returns the lower-case name of t.
func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("type(%d)", byte(t))
}

// A Code says why a worker declined or failed a job. Codes cross the wire:
// the list is append-only; do not reorder or remove items.
type Code uint16

// The codes.
const (
	CodeBusy         Code = 1  // no free slot; try another worker or later
	CodeRuntime      Code = 2  // the worker does not offer the job's runtime
	CodeBadSpec      Code = 3  // the spec does not decode, verify or validate
	CodeShuttingDown Code = 4  // the worker is stopping
	CodeRefused      Code = 5  // the worker's policy refuses the job
	CodeFetch        Code = 6  // a block of the job could not be fetched
	CodeRun          Code = 7  // the sandbox could not run the job
	CodeInternal     Code = 8  // an unexpected error on the worker
	CodeProtocol     Code = 9  // the peer broke the protocol
	CodeCanceled     Code = 10 // the job was canceled
	CodeTimeout      Code = 11 // a step passed its deadline
	codeEnd          Code = 12 // one past the last code
)

var codeNames = [...]string{"", "busy", "runtime", "bad-spec", "shutting-down", "refused",
	"fetch", "run", "internal", "protocol", "canceled", "timeout"}

// String returns the lower-case name of c.
func (c Code) String() string {
	if c > 0 && c < codeEnd {
		return codeNames[c]
	}
	return fmt.Sprintf("code(%d)", uint16(c))
}

// Retryable reports whether a job declined or failed with c may succeed on
// another worker.
func (c Code) Retryable() bool {
	switch c {
	case CodeBadSpec, CodeCanceled:
		return false
	}
	return true
}

// A Msg is one protocol message: *Offer, *Accept, *Decline, *Commit,
// *Reveal, *Result, *Cancel or *Error.
type Msg interface {
	Type() Type
	// JobCID returns the job the message is about.
	JobCID() cid.Cid
	validate() error
	encode(*encoder)
	decode(*decoder)
}

// An Offer asks a worker to run one replica of a job. Sent by the submitter.
type Offer struct {
	Job        cid.Cid       // the job ID (the envelope's CID)
	Spec       []byte        // the signed job spec
	Replica    int           // which replica this is, 0-based
	Commit     bool          // answer with a Commit first, the Result on Reveal
	RunTimeout time.Duration // how long the worker may take to fetch and run; whole milliseconds
}

// Accept says the worker takes the job. Sent by the worker.
type Accept struct{ Job cid.Cid }

// Decline says the worker does not take the job, and why. Sent by the worker.
type Decline struct {
	Job    cid.Cid
	Code   Code
	Reason string
}

// Commit binds the worker to its result before it is revealed. Hash is the
// commitment hash over (worker, job, result CID); Sig is the worker's
// signature of it (domain shoal/job-commitment/1). Sent by the worker.
type Commit struct {
	Job    cid.Cid
	Worker peer.ID
	Hash   [HashSize]byte
	Sig    []byte
}

// Reveal asks the worker for the result it committed to. Sent by the submitter.
type Reveal struct{ Job cid.Cid }

// Result carries the worker's signed result record. Sent by the worker.
type Result struct {
	Job    cid.Cid
	Result []byte
}

// Cancel stops the job on the worker. Sent by the submitter.
type Cancel struct {
	Job    cid.Cid
	Reason string
}

// Error says the worker could not finish the job. Sent by the worker.
type Error struct {
	Job     cid.Cid
	Code    Code
	Message string
}

func (*Offer) Type() Type   { return TypeOffer }
func (*Accept) Type() Type  { return TypeAccept }
func (*Decline) Type() Type { return TypeDecline }
func (*Commit) Type() Type  { return TypeCommit }
func (*Reveal) Type() Type  { return TypeReveal }
func (*Result) Type() Type  { return TypeResult }
func (*Cancel) Type() Type  { return TypeCancel }
func (*Error) Type() Type   { return TypeError }

func (m *Offer) JobCID() cid.Cid   { return m.Job }
func (m *Accept) JobCID() cid.Cid  { return m.Job }
func (m *Decline) JobCID() cid.Cid { return m.Job }
func (m *Commit) JobCID() cid.Cid  { return m.Job }
func (m *Reveal) JobCID() cid.Cid  { return m.Job }
func (m *Result) JobCID() cid.Cid  { return m.Job }
func (m *Cancel) JobCID() cid.Cid  { return m.Job }
func (m *Error) JobCID() cid.Cid   { return m.Job }

// ErrMalformed is wrapped by every error Unmarshal returns for bad bytes.
var ErrMalformed = errors.New("malformed job protocol message")

// Marshal returns the body encoding of m. It fails when m does not validate.
func Marshal(m Msg) ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("proto: marshal %s: %w", m.Type(), err)
	}
	e := &encoder{buf: make([]byte, 0, 64)}
	e.buf = append(e.buf, byte(m.Type()))
	m.encode(e)
	if len(e.buf) > MaxMessageSize {
		return nil, fmt.Errorf("proto: marshal %s: %d bytes, over the %d-byte bound", m.Type(), len(e.buf), MaxMessageSize)
	}
	return e.buf, nil
}

// Unmarshal decodes one message body. It rejects, wrapping ErrMalformed,
// any body that is not the exact encoding of a valid message.
func Unmarshal(b []byte) (Msg, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("proto: empty message: %w", ErrMalformed)
	}
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("proto: message of %d bytes, over the %d-byte bound: %w", len(b), MaxMessageSize, ErrMalformed)
	}
	var m Msg
	switch Type(b[0]) {
	case TypeOffer:
		m = new(Offer)
	case TypeAccept:
		m = new(Accept)
	case TypeDecline:
		m = new(Decline)
	case TypeCommit:
		m = new(Commit)
	case TypeReveal:
		m = new(Reveal)
	case TypeResult:
		m = new(Result)
	case TypeCancel:
		m = new(Cancel)
	case TypeError:
		m = new(Error)
	default:
		return nil, fmt.Errorf("proto: unknown message type %d: %w", b[0], ErrMalformed)
	}
	d := &decoder{buf: b[1:]}
	m.decode(d)
	if d.err == nil && len(d.buf) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.buf))
	}
	if d.err == nil {
		d.err = m.validate()
	}
	if d.err != nil {
		return nil, fmt.Errorf("proto: %s message: %w: %v", m.Type(), ErrMalformed, d.err)
	}
	return m, nil
}

func validJob(c cid.Cid) error {
	if !c.Defined() {
		return errors.New("job CID is missing")
	}
	if c.Version() != 1 {
		return fmt.Errorf("job CID %s is not CIDv1", c)
	}
	return nil
}

func validText(field, s string) error {
	if len(s) > MaxReasonSize {
		return fmt.Errorf("%s is %d bytes, over %d", field, len(s), MaxReasonSize)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not UTF-8", field)
	}
	return nil
}

func validCode(c Code) error {
	if c == 0 || c >= codeEnd {
		return fmt.Errorf("unknown code %d", uint16(c))
	}
	return nil
}

func (m *Offer) validate() error {
	if err := validJob(m.Job); err != nil {
		return err
	}
	switch {
	case len(m.Spec) == 0:
		return errors.New("offer has no spec")
	case len(m.Spec) > MaxSpecSize:
		return fmt.Errorf("spec is %d bytes, over %d", len(m.Spec), MaxSpecSize)
	case m.Replica < 0 || m.Replica >= MaxReplicas:
		return fmt.Errorf("replica %d outside [0, %d)", m.Replica, MaxReplicas)
	case m.RunTimeout <= 0 || m.RunTimeout > MaxRunTimeout:
		return fmt.Errorf("run timeout %v outside (0, %v]", m.RunTimeout, MaxRunTimeout)
	case m.RunTimeout%time.Millisecond != 0:
		return fmt.Errorf("run timeout %v is not whole milliseconds", m.RunTimeout)
	}
	return nil
}

func (m *Accept) validate() error { return validJob(m.Job) }
func (m *Reveal) validate() error { return validJob(m.Job) }

func (m *Decline) validate() error {
	if err := validJob(m.Job); err != nil {
		return err
	}
	if err := validCode(m.Code); err != nil {
		return err
	}
	return validText("reason", m.Reason)
}

func (m *Commit) validate() error {
	if err := validJob(m.Job); err != nil {
		return err
	}
	if err := m.Worker.Validate(); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	if len(m.Sig) == 0 || len(m.Sig) > MaxSigSize {
		return fmt.Errorf("signature is %d bytes, want 1..%d", len(m.Sig), MaxSigSize)
	}
	return nil
}

func (m *Result) validate() error {
	if err := validJob(m.Job); err != nil {
		return err
	}
	if len(m.Result) == 0 || len(m.Result) > MaxResultSize {
		return fmt.Errorf("result is %d bytes, want 1..%d", len(m.Result), MaxResultSize)
	}
	return nil
}

func (m *Cancel) validate() error {
	if err := validJob(m.Job); err != nil {
		return err
	}
	return validText("reason", m.Reason)
}

func (m *Error) validate() error {
	if err := validJob(m.Job); err != nil {
		return err
	}
	if err := validCode(m.Code); err != nil {
		return err
	}
	return validText("message", m.Message)
}

func (m *Offer) encode(e *encoder) {
	e.cid(m.Job)
	e.bytes(m.Spec)
	e.uint(uint64(m.Replica))
	e.bool(m.Commit)
	e.uint(uint64(m.RunTimeout / time.Millisecond))
}

func (m *Offer) decode(d *decoder) {
	m.Job = d.cid()
	m.Spec = d.bytes(MaxSpecSize)
	m.Replica = int(d.uint(MaxReplicas))
	m.Commit = d.bool()
	m.RunTimeout = time.Duration(d.uint(uint64(MaxRunTimeout/time.Millisecond))) * time.Millisecond
}

func (m *Accept) encode(e *encoder) { e.cid(m.Job) }
func (m *Accept) decode(d *decoder) { m.Job = d.cid() }
func (m *Reveal) encode(e *encoder) { e.cid(m.Job) }
func (m *Reveal) decode(d *decoder) { m.Job = d.cid() }

func (m *Decline) encode(e *encoder) {
	e.cid(m.Job)
	e.uint(uint64(m.Code))
	e.bytes([]byte(m.Reason))
}

func (m *Decline) decode(d *decoder) {
	m.Job = d.cid()
	m.Code = Code(d.uint(uint64(codeEnd)))
	m.Reason = string(d.bytes(MaxReasonSize))
}

func (m *Commit) encode(e *encoder) {
	e.cid(m.Job)
	e.bytes([]byte(m.Worker))
	e.bytes(m.Hash[:])
	e.bytes(m.Sig)
}

func (m *Commit) decode(d *decoder) {
	m.Job = d.cid()
	m.Worker = d.peer()
	h := d.bytes(HashSize)
	if d.err == nil && len(h) != HashSize {
		d.err = fmt.Errorf("commitment hash is %d bytes, want %d", len(h), HashSize)
	}
	copy(m.Hash[:], h)
	m.Sig = d.bytes(MaxSigSize)
}

func (m *Result) encode(e *encoder) {
	e.cid(m.Job)
	e.bytes(m.Result)
}

func (m *Result) decode(d *decoder) {
	m.Job = d.cid()
	m.Result = d.bytes(MaxResultSize)
}

func (m *Cancel) encode(e *encoder) {
	e.cid(m.Job)
	e.bytes([]byte(m.Reason))
}

func (m *Cancel) decode(d *decoder) {
	m.Job = d.cid()
	m.Reason = string(d.bytes(MaxReasonSize))
}

func (m *Error) encode(e *encoder) {
	e.cid(m.Job)
	e.uint(uint64(m.Code))
	e.bytes([]byte(m.Message))
}

func (m *Error) decode(d *decoder) {
	m.Job = d.cid()
	m.Code = Code(d.uint(uint64(codeEnd)))
	m.Message = string(d.bytes(MaxReasonSize))
}

// An encoder appends fields to buf.
type encoder struct{ buf []byte }

func (e *encoder) uint(v uint64) { e.buf = append(e.buf, varint.ToUvarint(v)...) }

func (e *encoder) bytes(b []byte) {
	e.uint(uint64(len(b)))
	e.buf = append(e.buf, b...)
}

func (e *encoder) cid(c cid.Cid) { e.bytes(c.Bytes()) }

func (e *encoder) bool(v bool) {
	if v {
		e.buf = append(e.buf, 1)
	} else {
		e.buf = append(e.buf, 0)
	}
}

// A decoder consumes fields from buf; the first error sticks in err.
type decoder struct {
	buf []byte
	err error
}

// uint reads a minimal uvarint no larger than max.
func (d *decoder) uint(max uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n, err := varint.FromUvarint(d.buf)
	if err != nil {
		d.err = fmt.Errorf("varint: %v", err)
		return 0
	}
	if v > max {
		d.err = fmt.Errorf("value %d over %d", v, max)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// bytes reads a length-prefixed field of at most max bytes. The result
// aliases the message buffer.
func (d *decoder) bytes(max int) []byte {
	n := d.uint(uint64(max))
	if d.err != nil {
		return nil
	}
	if uint64(len(d.buf)) < n {
		d.err = fmt.Errorf("field of %d bytes, only %d left", n, len(d.buf))
		return nil
	}
	b := d.buf[:n:n]
	d.buf = d.buf[n:]
	return b
}

func (d *decoder) cid() cid.Cid {
	b := d.bytes(256)
	if d.err != nil {
		return cid.Undef
	}
	c, err := cid.Cast(b)
	if err != nil {
		d.err = fmt.Errorf("CID: %v", err)
		return cid.Undef
	}
	if c.Version() != 1 {
		d.err = fmt.Errorf("CID %s is not CIDv1", c)
		return cid.Undef
	}
	return c
}

func (d *decoder) peer() peer.ID {
	b := d.bytes(128)
	if d.err != nil {
		return ""
	}
	id, err := peer.IDFromBytes(b)
	if err != nil {
		d.err = fmt.Errorf("peer ID: %v", err)
		return ""
	}
	return id
}

func (d *decoder) bool() bool {
	if d.err != nil {
		return false
	}
	if len(d.buf) == 0 {
		d.err = errors.New("missing bool")
		return false
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	if b > 1 {
		d.err = fmt.Errorf("bool byte %d, want 0 or 1", b)
	}
	return b == 1
}
