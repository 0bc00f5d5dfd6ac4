package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/shoalnet/shoal/crypto"
)

// EvidenceVersion is the first byte of encoded evidence.
const EvidenceVersion byte = 1

// MaxEvidenceSize bounds encoded evidence: two maximal entries and framing.
const MaxEvidenceSize = 2*MaxEntrySize + 1024

// maxProofHashes bounds a consistency proof (2·log2 of the largest tree).
const maxProofHashes = 128

// An EvidenceKind says which kind of fork a piece of evidence proves.
// Values are part of the wire format: append only.
type EvidenceKind byte

const (
	// EntryFork: two validly signed entries of one log at one seq with different bytes.
	EntryFork EvidenceKind = 1
	// CheckpointFork: two validly signed checkpoints of one log and size with different roots.
	CheckpointFork EvidenceKind = 2
	// InconsistentCheckpoints: two validly signed checkpoints of one log,
	// sizes m < n, and a consistency proof that the tree of size n extends
	// a tree of size m whose root is not the root the smaller checkpoint signed.
	InconsistentCheckpoints EvidenceKind = 3
)

func (k EvidenceKind) String() string {
	switch k {
	case EntryFork:
		return "entry-fork"
	case CheckpointFork:
		return "checkpoint-fork"
	case InconsistentCheckpoints:
		return "inconsistent-checkpoints"
	}
	return fmt.Sprintf("evidence-kind-%d", byte(k))
}

// Evidence is a portable, self-certifying proof that a log's author signed
// two histories. It verifies offline with nothing but its own bytes: every
// signature in it is the offender's, bound by the origin's peer ID.
type Evidence struct {
	Kind   EvidenceKind
	Origin Origin
	// A and B are the two conflicting signed objects: entries for EntryFork,
	// checkpoint notes otherwise. For InconsistentCheckpoints A is the
	// smaller checkpoint.
	A, B []byte
	// OldRoot and Proof (InconsistentCheckpoints only): the root of B's tree
	// at A's size, and the consistency proof of it against B.
	OldRoot tlog.Hash
	Proof   tlog.TreeProof

	encoded []byte
}

// Errors returned (wrapped) by DecodeEvidence.
var (
	// ErrMalformedEvidence: the bytes are not canonical evidence.
	ErrMalformedEvidence = errors.New("ledger: malformed evidence")
	// ErrBogusEvidence: the evidence decodes but does not prove a fork.
	ErrBogusEvidence = errors.New("ledger: evidence does not prove a fork")
)

// NewEntryFork returns the evidence of two conflicting entries, checking it.
func NewEntryFork(a, b []byte) (*Evidence, error) {
	if bytes.Compare(a, b) > 0 {
		a, b = b, a
	}
	return finishEvidence(&Evidence{Kind: EntryFork, A: a, B: b})
}

// NewCheckpointFork returns the evidence of two checkpoint notes of one size
// with different roots, checking it.
func NewCheckpointFork(a, b []byte) (*Evidence, error) {
	if bytes.Compare(a, b) > 0 {
		a, b = b, a
	}
	return finishEvidence(&Evidence{Kind: CheckpointFork, A: a, B: b})
}

// NewInconsistentCheckpoints returns the evidence that checkpoint note
// older (size m) is not a prefix of checkpoint note newer (size n > m):
// oldRoot is the root of newer's tree at size m and proof the consistency
// proof of it (tlog.ProveTree over the newer log's entries).
func NewInconsistentCheckpoints(older, newer []byte, oldRoot tlog.Hash, proof tlog.TreeProof) (*Evidence, error) {
	return finishEvidence(&Evidence{Kind: InconsistentCheckpoints, A: older, B: newer, OldRoot: oldRoot, Proof: proof})
}

func finishEvidence(ev *Evidence) (*Evidence, error) {
	enc := ev.encode()
	out, err := DecodeEvidence(enc)
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (ev *Evidence) encode() []byte {
	b := []byte{EvidenceVersion, byte(ev.Kind)}
	b = appendBytes(b, ev.A)
	b = appendBytes(b, ev.B)
	if ev.Kind == InconsistentCheckpoints {
		b = append(b, ev.OldRoot[:]...)
		b = binary.AppendUvarint(b, uint64(len(ev.Proof)))
		for _, h := range ev.Proof {
			b = append(b, h[:]...)
		}
	}
	return b
}

// Encoded returns the evidence's canonical bytes. The caller must not modify them.
func (ev *Evidence) Encoded() []byte { return ev.encoded }

// CID returns the evidence's content address (CIDv1 raw sha2-256).
func (ev *Evidence) CID() cid.Cid { return crypto.CIDOf(EntryCodec, ev.encoded) }

// Offender returns the peer whose signatures the evidence convicts.
func (ev *Evidence) Offender() peer.ID {
	_, id, _ := ev.Origin.Parse()
	return id
}

// String returns a one-line summary.
func (ev *Evidence) String() string {
	return fmt.Sprintf("%s by %s (%s)", ev.Kind, ev.Origin, ev.CID())
}

// DecodeEvidence decodes untrusted bytes and verifies that they prove a
// fork: size first, strict decode, re-encode for byte equality, then every
// signature and the fork itself. Malformed bytes wrap ErrMalformedEvidence;
// well-formed evidence that proves nothing (forged, bad signatures, no
// conflict) wraps ErrBogusEvidence.
func DecodeEvidence(data []byte) (*Evidence, error) {
	if len(data) > MaxEvidenceSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformedEvidence, len(data), MaxEvidenceSize)
	}
	r := &reader{b: data}
	if v := r.byte1("version"); r.err == nil && v != EvidenceVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrMalformedEvidence, v, EvidenceVersion)
	}
	ev := &Evidence{Kind: EvidenceKind(r.byte1("kind"))}
	limit := MaxEntrySize
	if ev.Kind != EntryFork {
		limit = MaxCheckpointSize
	}
	ev.A = r.bytes("first", limit)
	ev.B = r.bytes("second", limit)
	if r.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedEvidence, r.err)
	}
	switch ev.Kind {
	case EntryFork, CheckpointFork:
	case InconsistentCheckpoints:
		if len(r.b) < tlog.HashSize {
			return nil, fmt.Errorf("%w: old root truncated", ErrMalformedEvidence)
		}
		copy(ev.OldRoot[:], r.b)
		r.b = r.b[tlog.HashSize:]
		n, k := binary.Uvarint(r.b)
		if k <= 0 || n > maxProofHashes {
			return nil, fmt.Errorf("%w: bad proof length", ErrMalformedEvidence)
		}
		r.b = r.b[k:]
		if uint64(len(r.b)) < n*tlog.HashSize {
			return nil, fmt.Errorf("%w: proof truncated", ErrMalformedEvidence)
		}
		ev.Proof = make(tlog.TreeProof, n)
		for i := range ev.Proof {
			copy(ev.Proof[i][:], r.b)
			r.b = r.b[tlog.HashSize:]
		}
	default:
		return nil, fmt.Errorf("%w: unknown kind %d", ErrMalformedEvidence, byte(ev.Kind))
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformedEvidence, len(r.b))
	}
	if !bytes.Equal(ev.encode(), data) {
		return nil, fmt.Errorf("%w: not in canonical form", ErrMalformedEvidence)
	}
	if err := ev.verify(); err != nil {
		return nil, err
	}
	ev.encoded = data
	return ev, nil
}

func (ev *Evidence) verify() error {
	bogus := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrBogusEvidence, ev.Kind, fmt.Sprintf(format, args...))
	}
	switch ev.Kind {
	case EntryFork:
		if bytes.Compare(ev.A, ev.B) >= 0 {
			return bogus("entries are equal or out of order")
		}
		a, err := DecodeEntry(ev.A)
		if err != nil {
			return bogus("first entry: %v", err)
		}
		b, err := DecodeEntry(ev.B)
		if err != nil {
			return bogus("second entry: %v", err)
		}
		if a.Origin != b.Origin || a.Seq != b.Seq {
			return bogus("entries are %s #%d and %s #%d, not one position of one log", a.Origin, a.Seq, b.Origin, b.Seq)
		}
		ev.Origin = a.Origin
	case CheckpointFork, InconsistentCheckpoints:
		a, err := ParseCheckpoint(ev.A, "")
		if err != nil {
			return bogus("first checkpoint: %v", err)
		}
		b, err := ParseCheckpoint(ev.B, a.Origin)
		if err != nil {
			return bogus("second checkpoint: %v", err)
		}
		ev.Origin = a.Origin
		if ev.Kind == CheckpointFork {
			if bytes.Compare(ev.A, ev.B) >= 0 {
				return bogus("checkpoints are equal or out of order")
			}
			if a.Size != b.Size || a.Hash == b.Hash {
				return bogus("checkpoints of sizes %d and %d with roots %s and %s do not conflict", a.Size, b.Size, a.Hash, b.Hash)
			}
			return nil
		}
		if a.Size == 0 || a.Size >= b.Size {
			return bogus("sizes %d and %d: want 0 < first < second", a.Size, b.Size)
		}
		if ev.OldRoot == a.Hash {
			return bogus("old root equals the first checkpoint's root")
		}
		if err := tlog.CheckTree(ev.Proof, int64(b.Size), b.Hash, int64(a.Size), ev.OldRoot); err != nil {
			return bogus("consistency proof does not verify: %v", err)
		}
	}
	return nil
}
