package ledger

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/shoalnet/shoal/crypto"
)

func testCheckpoint(t testing.TB, seed int64, size uint64, root byte) *Checkpoint {
	t.Helper()
	key := testKey(t, seed)
	id, _ := crypto.PeerID(key)
	var h tlog.Hash
	h[0] = root
	cp, err := SignCheckpoint(key, OriginOf(testNetwork, id), size, h)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func TestCheckpointRoundTrip(t *testing.T) {
	cp := testCheckpoint(t, 1, 42, 7)
	got, err := ParseCheckpoint(cp.Note, cp.Origin)
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != 42 || got.Hash != cp.Hash || got.Origin != cp.Origin {
		t.Fatalf("ParseCheckpoint = %v, want %v", got, cp)
	}
	if _, err := ParseCheckpoint(cp.Note, "shoal/other/x"); err == nil {
		t.Fatal("ParseCheckpoint with another wanted origin succeeded")
	}
	if !bytes.HasPrefix(cp.Note, []byte(string(cp.Origin)+"\n42\n")) {
		t.Fatalf("note text = %q, want the C2SP checkpoint form", cp.Note)
	}
}

// TestCheckpointNoteLibrary cross-checks the signature with the note
// library and a verifier built from the raw ed25519 key.
func TestCheckpointNoteLibrary(t *testing.T) {
	cp := testCheckpoint(t, 1, 3, 1)
	key := testKey(t, 1)
	raw, _ := key.GetPublic().Raw()
	vkey, err := note.NewEd25519VerifierKey(string(cp.Origin), ed25519.PublicKey(raw))
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(cp.Note, note.VerifierList(v))
	if err != nil {
		t.Fatalf("note.Open = %v", err)
	}
	if len(n.Sigs) != 1 {
		t.Fatalf("note has %d verified signatures, want 1", len(n.Sigs))
	}
	if got, _ := NoteVerifierKey(cp.Origin); got != vkey {
		t.Fatalf("NoteVerifierKey = %q, want %q", got, vkey)
	}
}

func TestCheckpointMangled(t *testing.T) {
	cp := testCheckpoint(t, 1, 42, 7)
	for i := 0; i < len(cp.Note); i++ {
		if _, err := ParseCheckpoint(cp.Note[:i], ""); err == nil {
			t.Fatalf("ParseCheckpoint(first %d bytes) succeeded", i)
		}
		for _, delta := range []byte{1, 0x80} {
			m := bytes.Clone(cp.Note)
			m[i] += delta
			if _, err := ParseCheckpoint(m, ""); err == nil {
				t.Fatalf("ParseCheckpoint(byte %d + %#x) succeeded: %q", i, delta, m)
			}
		}
	}
}

// TestCheckpointWrongSigner checks that a checkpoint naming one origin but
// signed by another key is rejected as unsigned.
func TestCheckpointWrongSigner(t *testing.T) {
	a := testCheckpoint(t, 1, 5, 1)
	other := testKey(t, 2)
	s := &noteSigner{name: string(a.Origin), key: other}
	v, _ := noteVerifier(a.Origin)
	s.hash = v.KeyHash()
	msg, err := note.Sign(&note.Note{Text: checkpointText(a.Origin, 5, a.Hash)}, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseCheckpoint(msg, ""); !errors.Is(err, ErrCheckpointSignature) {
		t.Fatalf("ParseCheckpoint(signed by another key) err = %v, want ErrCheckpointSignature", err)
	}
	if _, err := SignCheckpoint(other, a.Origin, 5, a.Hash); err == nil {
		t.Fatal("SignCheckpoint with a key that is not the origin's author succeeded")
	}
}

func TestCheckpointNonCanonical(t *testing.T) {
	cp := testCheckpoint(t, 1, 42, 7)
	for _, text := range []string{
		string(cp.Origin) + "\n042\n",
		string(cp.Origin) + "\n+42\n",
		string(cp.Origin) + "\n42\nextra\n",
	} {
		key := testKey(t, 1)
		s, _ := newNoteSigner(key, cp.Origin)
		// Append a root line where the text lacks one.
		if bytes.Count([]byte(text), []byte("\n")) == 2 {
			text += "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
		}
		msg, err := note.Sign(&note.Note{Text: text}, s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseCheckpoint(msg, ""); err == nil {
			t.Errorf("ParseCheckpoint(%q) succeeded", text)
		}
	}
}
