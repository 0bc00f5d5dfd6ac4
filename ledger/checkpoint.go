package ledger

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/shoalnet/shoal/crypto"
)

// MaxCheckpointSize bounds a signed checkpoint note.
const MaxCheckpointSize = 2 << 10

// A Checkpoint is a signed statement by a log's author: the log named
// Origin has Size entries and its Merkle tree (RFC 6962 hashing over the
// entries' canonical bytes) has root Hash.
type Checkpoint struct {
	Origin Origin
	Size   uint64
	Hash   tlog.Hash
	Note   []byte // the signed note, C2SP tlog-checkpoint form
}

// checkpointText returns the note body: origin, size and base64 root, each
// on its own line.
func checkpointText(origin Origin, size uint64, h tlog.Hash) string {
	return fmt.Sprintf("%s\n%d\n%s\n", origin, size, base64.StdEncoding.EncodeToString(h[:]))
}

// noteSigner signs notes with a libp2p ed25519 key under the note key name
// that equals the log's origin.
type noteSigner struct {
	name string
	hash uint32
	key  crypto.PrivKey
}

func (s *noteSigner) Name() string                    { return s.name }
func (s *noteSigner) KeyHash() uint32                 { return s.hash }
func (s *noteSigner) Sign(msg []byte) ([]byte, error) { return s.key.Sign(msg) }

var _ note.Signer = (*noteSigner)(nil)

// NoteVerifierKey returns the note verifier key ("<origin>+<hash>+<base64>")
// of the log origin: the key name is the origin itself and the ed25519
// public key is the one embedded in the origin's peer ID. Anyone who knows
// an origin can derive its verifier; nothing else is trusted.
func NoteVerifierKey(origin Origin) (string, error) {
	_, author, err := origin.Parse()
	if err != nil {
		return "", err
	}
	pub, err := crypto.PubKeyFromID(author)
	if err != nil {
		return "", err
	}
	raw, err := pub.Raw()
	if err != nil {
		return "", fmt.Errorf("ledger: raw key of %s: %w", author, err)
	}
	vkey, err := note.NewEd25519VerifierKey(string(origin), ed25519.PublicKey(raw))
	if err != nil {
		return "", fmt.Errorf("ledger: note verifier key for %s: %w", origin, err)
	}
	return vkey, nil
}

// noteVerifier returns the note verifier of origin.
func noteVerifier(origin Origin) (note.Verifier, error) {
	vkey, err := NoteVerifierKey(origin)
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("ledger: note verifier for %s: %w", origin, err)
	}
	return v, nil
}

// newNoteSigner returns a note signer for origin with key, which must be
// the origin's author key.
func newNoteSigner(key crypto.PrivKey, origin Origin) (*noteSigner, error) {
	if key.Type() != p2pcrypto.Ed25519 {
		return nil, fmt.Errorf("ledger: checkpoint key is %v, want Ed25519", key.Type())
	}
	v, err := noteVerifier(origin)
	if err != nil {
		return nil, err
	}
	_, author, _ := origin.Parse()
	if !author.MatchesPrivateKey(key) {
		return nil, fmt.Errorf("ledger: key is not the author of %s", origin)
	}
	return &noteSigner{name: string(origin), hash: v.KeyHash(), key: key}, nil
}

// SignCheckpoint returns the checkpoint of size and root h of origin's log,
// signed with key (the origin's author key).
func SignCheckpoint(key crypto.PrivKey, origin Origin, size uint64, h tlog.Hash) (*Checkpoint, error) {
	s, err := newNoteSigner(key, origin)
	if err != nil {
		return nil, err
	}
	msg, err := note.Sign(&note.Note{Text: checkpointText(origin, size, h)}, s)
	if err != nil {
		return nil, fmt.Errorf("ledger: sign checkpoint %d of %s: %w", size, origin, err)
	}
	return &Checkpoint{Origin: origin, Size: size, Hash: h, Note: msg}, nil
}

// Errors returned (wrapped) by ParseCheckpoint.
var (
	// ErrMalformedCheckpoint: the bytes are not a checkpoint note.
	ErrMalformedCheckpoint = errors.New("ledger: malformed checkpoint")
	// ErrCheckpointSignature: the note is not validly signed by its origin's author.
	ErrCheckpointSignature = errors.New("ledger: checkpoint is not signed by its origin")
)

// ParseCheckpoint decodes and verifies an untrusted signed checkpoint note.
// The note must be at most MaxCheckpointSize bytes, its text must be
// exactly "<origin>\n<size>\n<base64 root>\n" in canonical form, and it must
// carry a valid signature by the key in the origin's peer ID (other
// signatures, such as cosignatures, are allowed but ignored). If want is not
// empty the origin must equal it.
func ParseCheckpoint(msg []byte, want Origin) (*Checkpoint, error) {
	if len(msg) > MaxCheckpointSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformedCheckpoint, len(msg), MaxCheckpointSize)
	}
	text, sigs, ok := strings.Cut(string(msg), "\n\n")
	if !ok {
		return nil, fmt.Errorf("%w: no signature block", ErrMalformedCheckpoint)
	}
	// The note library accepts non-canonical base64 in signature lines;
	// require canonical base64 so that one checkpoint has one encoding.
	for _, line := range strings.Split(strings.TrimSuffix(sigs, "\n"), "\n") {
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("%w: bad signature line", ErrMalformedCheckpoint)
		}
		raw, err := base64.StdEncoding.Strict().DecodeString(line[i+1:])
		if err != nil || base64.StdEncoding.EncodeToString(raw) != line[i+1:] {
			return nil, fmt.Errorf("%w: signature is not canonical base64", ErrMalformedCheckpoint)
		}
	}
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) != 3 {
		return nil, fmt.Errorf("%w: want 3 lines (origin, size, root), got %d", ErrMalformedCheckpoint, len(lines))
	}
	origin := Origin(lines[0])
	if want != "" && origin != want {
		return nil, fmt.Errorf("%w: origin %q, want %q", ErrMalformedCheckpoint, origin, want)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] || size > 1<<62 {
		return nil, fmt.Errorf("%w: size %q is not a canonical decimal", ErrMalformedCheckpoint, lines[1])
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize {
		return nil, fmt.Errorf("%w: root %q is not a base64 32-byte hash", ErrMalformedCheckpoint, lines[2])
	}
	var h tlog.Hash
	copy(h[:], raw)
	v, err := noteVerifier(origin)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedCheckpoint, err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		var unv *note.UnverifiedNoteError
		var inv *note.InvalidSignatureError
		if errors.As(err, &unv) || errors.As(err, &inv) {
			return nil, fmt.Errorf("%w: %s: %v", ErrCheckpointSignature, origin, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformedCheckpoint, err)
	}
	if n.Text != checkpointText(origin, size, h) {
		return nil, fmt.Errorf("%w: text is not canonical", ErrMalformedCheckpoint)
	}
	return &Checkpoint{Origin: origin, Size: size, Hash: h, Note: msg}, nil
}

// String returns a one-line summary: "<origin> size <n> root <hash>".
func (c *Checkpoint) String() string {
	return fmt.Sprintf("%s size %d root %s", c.Origin, c.Size, c.Hash)
}
