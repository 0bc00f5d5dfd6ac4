package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multicodec"
	"github.com/multiformats/go-multihash"

	"github.com/shoalnet/shoal/crypto"
)

// EntryVersion is the format version byte that starts every encoded entry.
// An incompatible change to the layout gets a new version byte.
const EntryVersion byte = 1

// Size bounds of an entry and its fields. A decoder checks them before
// anything else.
const (
	MaxEntrySize  = 64 << 10 // whole encoded entry
	MaxBodySize   = 60 << 10 // body field
	MaxOriginSize = 256      // origin field
	MaxKindSize   = 64       // kind field
	maxKeySize    = 64       // marshaled public key (ed25519: 36 bytes)
	maxSigSize    = 128      // signature (ed25519: 64 bytes)
	cidSize       = 36       // CIDv1, raw codec, sha2-256: 0x01 0x55 0x12 0x20 + 32 bytes
)

// EntryCodec is the multicodec of an entry's CID: the canonical bytes are a
// fixed binary layout, not DAG-CBOR, so they are named as raw bytes.
const EntryCodec = multicodec.Raw

// A Kind says what an entry records. Kinds are lower-case dotted words.
type Kind string

// The kinds a Shoal node records.
const (
	KindJobSubmitted Kind = "job.submitted" // as submitter: the job spec's CID and envelope
	KindJobExecuted  Kind = "job.executed"  // as worker: job CID, result CID, the signed result
	KindJobVerdict   Kind = "job.verdict"   // as submitter: verdict with every worker's signed result
	KindEvidence     Kind = "evidence"      // as witness: the CID and summary of fork evidence
	KindNote         Kind = "note"          // free text from the operator or a test
)

// ValidKind reports whether k is a well-formed kind: 1..MaxKindSize bytes of
// a-z, 0-9, '.', '-' and '_', starting with a letter.
func ValidKind(k Kind) bool {
	if len(k) == 0 || len(k) > MaxKindSize || k[0] < 'a' || k[0] > 'z' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// An Origin names one log: "shoal/<network>/<peerID>". The peer ID is the
// log's author; no other key may sign its entries or checkpoints.
type Origin string

// OriginOf returns the origin of the log that id writes in network.
func OriginOf(network string, id peer.ID) Origin {
	return Origin("shoal/" + network + "/" + id.String())
}

// Parse splits o into its network and author, checking its form: the
// network is 1..64 bytes of a-z, A-Z, 0-9, '-', '_' and '.'.
func (o Origin) Parse() (network string, author peer.ID, err error) {
	if len(o) > MaxOriginSize {
		return "", "", fmt.Errorf("ledger: origin is %d bytes, more than %d", len(o), MaxOriginSize)
	}
	rest, ok := strings.CutPrefix(string(o), "shoal/")
	if !ok {
		return "", "", fmt.Errorf("ledger: origin %q does not start with \"shoal/\"", o)
	}
	network, idText, ok := strings.Cut(rest, "/")
	if !ok || !validNetwork(network) {
		return "", "", fmt.Errorf("ledger: origin %q has no valid network name", o)
	}
	id, err := peer.Decode(idText)
	if err != nil {
		return "", "", fmt.Errorf("ledger: origin %q: peer ID: %w", o, err)
	}
	if id.String() != idText {
		return "", "", fmt.Errorf("ledger: origin %q: peer ID is not in canonical form", o)
	}
	return network, id, nil
}

func validNetwork(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// An Entry is one record of a log. Its canonical bytes (Encoded) are what is
// signed, stored, hashed into the Merkle tree and named by CID; the decoded
// fields are a view of them. An Entry returned by this package has been
// decoded strictly and its signature checked. It must not be modified.
type Entry struct {
	Origin Origin
	Seq    uint64
	Prev   cid.Cid // CID of entry Seq-1; cid.Undef for Seq 0
	Time   time.Time
	Kind   Kind
	Body   []byte
	Key    []byte // libp2p-marshaled public key of the author
	Sig    []byte // signature of SignedPart() for crypto.DomainLedgerEntry

	encoded []byte
	signed  int // length of the signed prefix of encoded
}

// Encoded returns the entry's canonical bytes. The caller must not modify them.
func (e *Entry) Encoded() []byte { return e.encoded }

// SignedPart returns the prefix of the canonical bytes that the signature
// covers: everything before the signature field.
func (e *Entry) SignedPart() []byte { return e.encoded[:e.signed] }

// CID returns the entry's content address: CIDv1, raw codec, sha2-256 of
// the canonical bytes.
func (e *Entry) CID() cid.Cid { return crypto.CIDOf(EntryCodec, e.encoded) }

// appendBytes appends uvarint(len(b)) || b.
func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// encodeUnsigned returns the signed part of an entry with the given fields.
func encodeUnsigned(origin Origin, seq uint64, prev cid.Cid, t time.Time, kind Kind, body, key []byte) []byte {
	b := make([]byte, 0, 1+len(origin)+8+cidSize+8+len(kind)+len(body)+len(key)+16+maxSigSize)
	b = append(b, EntryVersion)
	b = appendBytes(b, []byte(origin))
	b = binary.BigEndian.AppendUint64(b, seq)
	var prevBytes []byte
	if prev.Defined() {
		prevBytes = prev.Bytes()
	}
	b = appendBytes(b, prevBytes)
	b = binary.BigEndian.AppendUint64(b, uint64(t.UnixNano()))
	b = appendBytes(b, []byte(kind))
	b = appendBytes(b, body)
	b = appendBytes(b, key)
	return b
}

// NewEntry builds and signs the entry with the given fields. It checks every
// field as DecodeEntry would.
func NewEntry(key crypto.PrivKey, origin Origin, seq uint64, prev cid.Cid, t time.Time, kind Kind, body []byte) (*Entry, error) {
	pubBytes, err := p2pcrypto.MarshalPublicKey(key.GetPublic())
	if err != nil {
		return nil, fmt.Errorf("ledger: marshal author key: %w", err)
	}
	e, err := signEntry(key, pubBytes, origin, seq, prev, t, kind, body)
	if err != nil {
		return nil, err
	}
	// Check the result as a reader would, so no writer can produce an
	// entry that readers reject.
	if _, err := decodeEntry(e.encoded, false); err != nil {
		return nil, err
	}
	return e, nil
}

// signEntry builds and signs an entry whose fields the caller has checked:
// key is the origin's author and pubBytes its marshaled public key, kind is
// valid, body is within bounds, prev is set exactly when seq > 0.
func signEntry(key crypto.PrivKey, pubBytes []byte, origin Origin, seq uint64, prev cid.Cid, t time.Time, kind Kind, body []byte) (*Entry, error) {
	t = time.Unix(0, t.UnixNano()).UTC()
	unsigned := encodeUnsigned(origin, seq, prev, t, kind, body, pubBytes)
	sig, err := crypto.Sign(key, crypto.DomainLedgerEntry, unsigned)
	if err != nil {
		return nil, fmt.Errorf("ledger: sign entry %d: %w", seq, err)
	}
	signed := len(unsigned)
	enc := appendBytes(unsigned, sig)
	return &Entry{
		Origin: origin, Seq: seq, Prev: prev, Time: t, Kind: kind,
		Body:    enc[signed-len(pubBytes)-uvarintLen(len(pubBytes))-len(body) : signed-len(pubBytes)-uvarintLen(len(pubBytes))],
		Key:     enc[signed-len(pubBytes) : signed],
		Sig:     enc[signed+uvarintLen(len(sig)):],
		encoded: enc,
		signed:  signed,
	}, nil
}

func uvarintLen(n int) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], uint64(n))
}

// Errors returned (wrapped) by DecodeEntry.
var (
	// ErrEntryTooLarge: the bytes are longer than MaxEntrySize.
	ErrEntryTooLarge = errors.New("ledger: entry exceeds 64 KiB")
	// ErrMalformedEntry: the bytes are not a canonical entry.
	ErrMalformedEntry = errors.New("ledger: malformed entry")
	// ErrEntrySignature: the entry decodes but its signature does not verify.
	ErrEntrySignature = errors.New("ledger: entry signature does not verify")
)

// DecodeEntry decodes and checks untrusted bytes: size first, then a strict
// field-by-field decode, a re-encode that must give the same bytes, the
// origin's author against the key, and last the signature. The returned
// Entry keeps data; the caller must not modify it afterwards.
func DecodeEntry(data []byte) (*Entry, error) {
	return decodeEntry(data, true)
}

// A knownAuthor is an origin and its author's marshaled key, already
// checked against each other: entries that carry exactly these skip the
// key parsing and binding checks (the bytes are still compared).
type knownAuthor struct {
	origin Origin
	key    []byte
}

// decodeEntryKnown is DecodeEntry without the signature check, for bytes
// this node wrote itself (protected by a checksum) and for parallel
// verification that checks signatures separately, with entries expected
// to be of author k. An entry of another origin or key is checked in full.
func decodeEntryKnown(data []byte, k *knownAuthor) (*Entry, error) {
	return decodeEntryFull(data, false, k)
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrMalformedEntry, fmt.Sprintf(format, args...))
	}
}

func (r *reader) byte1(what string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.fail("%s: truncated", what)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) u64(what string) uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.fail("%s: truncated", what)
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) bytes(what string, max int) []byte {
	if r.err != nil {
		return nil
	}
	n, k := binary.Uvarint(r.b)
	if k <= 0 {
		r.fail("%s: bad length prefix", what)
		return nil
	}
	if n > uint64(max) {
		r.fail("%s: %d bytes, more than %d", what, n, max)
		return nil
	}
	if k != uvarintLen(int(n)) {
		r.fail("%s: length prefix of %d bytes where %d do", what, k, uvarintLen(int(n)))
		return nil
	}
	r.b = r.b[k:]
	if uint64(len(r.b)) < n {
		r.fail("%s: truncated", what)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func decodeEntry(data []byte, checkSig bool) (*Entry, error) {
	return decodeEntryFull(data, checkSig, nil)
}

func decodeEntryFull(data []byte, checkSig bool, known *knownAuthor) (*Entry, error) {
	if len(data) > MaxEntrySize {
		return nil, fmt.Errorf("%w: %d bytes", ErrEntryTooLarge, len(data))
	}
	r := &reader{b: data}
	if v := r.byte1("version"); r.err == nil && v != EntryVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrMalformedEntry, v, EntryVersion)
	}
	e := &Entry{}
	e.Origin = Origin(r.bytes("origin", MaxOriginSize))
	e.Seq = r.u64("seq")
	prev := r.bytes("prev", cidSize)
	e.Time = time.Unix(0, int64(r.u64("time"))).UTC()
	e.Kind = Kind(r.bytes("kind", MaxKindSize))
	e.Body = r.bytes("body", MaxBodySize)
	e.Key = r.bytes("key", maxKeySize)
	signed := len(data) - len(r.b)
	e.Sig = r.bytes("signature", maxSigSize)
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformedEntry, len(r.b))
	}
	if !ValidKind(e.Kind) {
		return nil, fmt.Errorf("%w: kind %q is not lower-case dotted words", ErrMalformedEntry, e.Kind)
	}
	if e.Seq == 0 {
		if len(prev) != 0 {
			return nil, fmt.Errorf("%w: entry 0 has a prev link", ErrMalformedEntry)
		}
	} else {
		c, err := cid.Cast(prev)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d: prev is not a CID: %v", ErrMalformedEntry, e.Seq, err)
		}
		if p := c.Prefix(); p.Version != 1 || p.Codec != uint64(EntryCodec) || p.MhType != multihash.SHA2_256 || p.MhLength != 32 {
			return nil, fmt.Errorf("%w: entry %d: prev %s is not a CIDv1 raw sha2-256", ErrMalformedEntry, e.Seq, c)
		}
		e.Prev = c
	}
	var pub crypto.PubKey
	if known == nil || e.Origin != known.origin || !bytes.Equal(e.Key, known.key) {
		_, author, err := e.Origin.Parse()
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d: %v", ErrMalformedEntry, e.Seq, err)
		}
		pub, err = p2pcrypto.UnmarshalPublicKey(e.Key)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d: author key: %v", ErrMalformedEntry, e.Seq, err)
		}
		if pub.Type() != p2pcrypto.Ed25519 {
			return nil, fmt.Errorf("%w: entry %d: author key is %v, want Ed25519", ErrMalformedEntry, e.Seq, pub.Type())
		}
		if !author.MatchesPublicKey(pub) {
			return nil, fmt.Errorf("%w: entry %d: key is not the key of origin %s", ErrMalformedEntry, e.Seq, e.Origin)
		}
	}
	// No second encoding of one entry: every length prefix is a minimal
	// uvarint (reader.bytes), the other fields have a fixed size, and prev
	// is a CID that go-cid read whole with minimal varints, so encoding
	// the fields again gives data back (FuzzDecodeEntry checks it).
	e.encoded = data
	e.signed = signed
	if checkSig {
		if pub == nil {
			return nil, fmt.Errorf("ledger: entry %d: signature check needs the author key", e.Seq)
		}
		if err := e.checkSig(pub); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// checkSig verifies the entry's signature with pub, which must be the entry's key.
func (e *Entry) checkSig(pub crypto.PubKey) error {
	if err := crypto.Verify(pub, crypto.DomainLedgerEntry, e.SignedPart(), e.Sig); err != nil {
		return fmt.Errorf("%w: entry %d of %s: %v", ErrEntrySignature, e.Seq, e.Origin, err)
	}
	return nil
}

// VerifySignature checks the entry's signature against its own key (which
// DecodeEntry has already bound to the origin's author).
func (e *Entry) VerifySignature() error {
	pub, err := p2pcrypto.UnmarshalPublicKey(e.Key)
	if err != nil {
		return fmt.Errorf("%w: entry %d: author key: %v", ErrMalformedEntry, e.Seq, err)
	}
	return e.checkSig(pub)
}
