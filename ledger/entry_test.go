package ledger

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"

	"github.com/shoalnet/shoal/crypto"
)

func testEntry(t testing.TB, seed int64, seq uint64, prev cid.Cid, body string) *Entry {
	t.Helper()
	key := testKey(t, seed)
	id, _ := crypto.PeerID(key)
	e, err := NewEntry(key, OriginOf(testNetwork, id), seq, prev, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), KindJobExecuted, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEntryRoundTrip(t *testing.T) {
	e0 := testEntry(t, 1, 0, cid.Undef, "first")
	e1 := testEntry(t, 1, 1, e0.CID(), "second")
	for _, e := range []*Entry{e0, e1} {
		d, err := DecodeEntry(e.Encoded())
		if err != nil {
			t.Fatalf("DecodeEntry(entry %d) = %v", e.Seq, err)
		}
		if d.Seq != e.Seq || !d.Prev.Equals(e.Prev) || d.Kind != e.Kind || !bytes.Equal(d.Body, e.Body) || !d.Time.Equal(e.Time) || d.Origin != e.Origin {
			t.Fatalf("DecodeEntry(entry %d) = %+v, want %+v", e.Seq, d, e)
		}
		if !d.CID().Equals(e.CID()) {
			t.Fatalf("CID = %s, want %s", d.CID(), e.CID())
		}
	}
	if c := e0.CID(); c.Prefix().Codec != uint64(EntryCodec) || c.Version() != 1 {
		t.Fatalf("CID %s is not CIDv1 raw", c)
	}
}

// TestEntryMangled checks that every truncation and every single-byte bump
// of a valid entry is rejected.
func TestEntryMangled(t *testing.T) {
	e0 := testEntry(t, 1, 0, cid.Undef, "first")
	e := testEntry(t, 1, 1, e0.CID(), "second entry body")
	enc := e.Encoded()
	for i := 0; i < len(enc); i++ {
		if _, err := DecodeEntry(enc[:i]); err == nil {
			t.Fatalf("DecodeEntry(first %d bytes) succeeded", i)
		}
		for _, delta := range []byte{1, 0x80, 0xff} {
			m := bytes.Clone(enc)
			m[i] += delta
			if _, err := DecodeEntry(m); err == nil {
				t.Fatalf("DecodeEntry(byte %d + %#x) succeeded", i, delta)
			}
		}
	}
	if _, err := DecodeEntry(append(bytes.Clone(enc), 0)); err == nil {
		t.Fatal("DecodeEntry with a trailing byte succeeded")
	}
}

func TestEntryTooLarge(t *testing.T) {
	if _, err := DecodeEntry(make([]byte, MaxEntrySize+1)); !errors.Is(err, ErrEntryTooLarge) {
		t.Fatalf("DecodeEntry(64 KiB + 1) err = %v, want ErrEntryTooLarge", err)
	}
}

// TestEntryOtherDomain checks that a signature made for another domain
// over the same bytes never verifies as an entry.
func TestEntryOtherDomain(t *testing.T) {
	key := testKey(t, 1)
	e := testEntry(t, 1, 0, cid.Undef, "x")
	sig, err := crypto.Sign(key, crypto.DomainJobResult, e.SignedPart())
	if err != nil {
		t.Fatal(err)
	}
	forged := appendBytes(bytes.Clone(e.SignedPart()), sig)
	if _, err := DecodeEntry(forged); !errors.Is(err, ErrEntrySignature) {
		t.Fatalf("DecodeEntry(signed for job results) err = %v, want ErrEntrySignature", err)
	}
}

// TestEntryOtherKey checks that an entry whose key is not the origin's
// author is rejected, even when it is validly signed by that key.
func TestEntryOtherKey(t *testing.T) {
	a := testEntry(t, 1, 0, cid.Undef, "x")
	other := testKey(t, 2)
	pub, _ := p2pcrypto.MarshalPublicKey(other.GetPublic())
	unsigned := encodeUnsigned(a.Origin, 0, cid.Undef, a.Time, a.Kind, a.Body, pub)
	sig, _ := crypto.Sign(other, crypto.DomainLedgerEntry, unsigned)
	if _, err := DecodeEntry(appendBytes(unsigned, sig)); !errors.Is(err, ErrMalformedEntry) {
		t.Fatalf("DecodeEntry(signed by another key) err = %v, want ErrMalformedEntry", err)
	}
}

func TestEntryNonCanonicalVarint(t *testing.T) {
	e := testEntry(t, 1, 0, cid.Undef, "x")
	enc := e.Encoded()
	// Origin length is the byte after the version: re-encode it in two bytes.
	n := enc[1]
	m := append([]byte{enc[0], n | 0x80, 0}, enc[2:]...)
	if _, err := DecodeEntry(m); err == nil {
		t.Fatal("DecodeEntry with a two-byte length prefix succeeded")
	}
}

func TestValidKind(t *testing.T) {
	for k, want := range map[Kind]bool{
		"job.submitted": true, "evidence": true, "a": true, "x-y_z.9": true,
		"": false, "Job": false, "9a": false, "a b": false, ".a": false, "a/b": false,
		Kind(bytes.Repeat([]byte("a"), MaxKindSize+1)): false,
	} {
		if got := ValidKind(k); got != want {
			t.Errorf("ValidKind(%q) = %v, want %v", k, got, want)
		}
	}
}

func TestOriginParse(t *testing.T) {
	key := testKey(t, 1)
	id, _ := crypto.PeerID(key)
	o := OriginOf("net-1", id)
	n, got, err := o.Parse()
	if err != nil || n != "net-1" || got != id {
		t.Fatalf("Parse(%s) = %q, %s, %v", o, n, got, err)
	}
	for _, bad := range []Origin{"", "shoal/", "shoal//" + Origin(id.String()), "x/net/" + Origin(id.String()), "shoal/net/notapeer", "shoal/ne t/" + Origin(id.String())} {
		if _, _, err := bad.Parse(); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}

// TestSignEntryFields checks that the fields of a freshly signed entry are
// the ones decoding its bytes gives.
func TestSignEntryFields(t *testing.T) {
	e0 := testEntry(t, 1, 0, cid.Undef, "first")
	e := testEntry(t, 1, 1, e0.CID(), "body of the second entry")
	d, err := DecodeEntry(e.Encoded())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.Body, e.Body) || !bytes.Equal(d.Key, e.Key) || !bytes.Equal(d.Sig, e.Sig) || d.signed != e.signed {
		t.Fatalf("signed entry fields differ from decoded ones:\n%+v\n%+v", e, d)
	}
}
