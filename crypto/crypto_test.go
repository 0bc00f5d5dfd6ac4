package crypto

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/multiformats/go-multicodec"
)

func testKey(t testing.TB, seed int64) PrivKey {
	t.Helper()
	k, err := GenerateKey(rand.New(rand.NewSource(seed)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeyFileRoundTrip(t *testing.T) {
	k := testKey(t, 1)
	path := filepath.Join(t.TempDir(), "identity.key")
	if err := WriteKeyFile(path, k); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != KeyFileMode {
		t.Errorf("mode = %#o, want %#o", st.Mode().Perm(), KeyFileMode)
	}
	got, err := ReadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equals(k) {
		t.Error("ReadKeyFile returned another key")
	}
	if err := WriteKeyFile(path, k); err == nil {
		t.Error("WriteKeyFile overwrote an existing file")
	}
}

func TestGenerateKeyReproducible(t *testing.T) {
	a, b := testKey(t, 7), testKey(t, 7)
	if !a.Equals(b) {
		t.Error("same seed gave different keys")
	}
	if testKey(t, 8).Equals(a) {
		t.Error("different seeds gave the same key")
	}
}

func TestKeyFileWideModeRefused(t *testing.T) {
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o666} {
		path := filepath.Join(t.TempDir(), "identity.key")
		if err := WriteKeyFile(path, testKey(t, 1)); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := ReadKeyFile(path)
		if !errors.Is(err, ErrKeyFilePermissions) {
			t.Errorf("ReadKeyFile(mode %#o) = %v, want ErrKeyFilePermissions", mode, err)
			continue
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("error %q does not name the file and the fix", err)
		}
	}
}

func TestKeyFileCorruptRefused(t *testing.T) {
	good, err := MarshalKeyFile(testKey(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	header, body, _ := bytes.Cut(good, []byte("\n"))
	cases := map[string][]byte{
		"empty":        {},
		"header only":  header,
		"wrong header": append([]byte("shoal identity v2\n"), body...),
		"truncated":    good[:len(good)-10],
		"not base64":   append(append(header, '\n'), []byte("!!!!\n")...),
		"extra line":   append(append([]byte{}, good...), []byte("AAAA\n")...),
		"spaces":       bytes.Replace(good, []byte("\n"), []byte("\n "), 1),
	}
	// Every single-byte bump of the key line must be refused or decode to
	// another key (ed25519 private keys carry their public half, which
	// UnmarshalPrivateKey does not check, so a bump inside the seed may
	// decode): never to the same key.
	for i := len(header) + 1; i < len(good)-1; i++ {
		b := bytes.Clone(good)
		b[i]++
		if k, err := ParseKeyFile(b); err == nil && k.Equals(testKey(t, 1)) {
			t.Errorf("ParseKeyFile with byte %d bumped returned the original key", i)
		}
	}
	dir := t.TempDir()
	for name, data := range cases {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := ReadKeyFile(path)
		if err == nil {
			t.Errorf("ReadKeyFile(%s) = nil error, want corrupt", name)
			continue
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("ReadKeyFile(%s) error %q does not name the file", name, err)
		}
	}
	if _, err := ReadKeyFile(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("ReadKeyFile(missing) = %v, want an error naming the file", err)
	}
}

func TestSignVerifyDomainSeparation(t *testing.T) {
	k := testKey(t, 1)
	msg := []byte("job result bytes")
	sig, err := Sign(k, DomainJobResult, msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(k.GetPublic(), DomainJobResult, msg, sig); err != nil {
		t.Fatalf("Verify of a good signature: %v", err)
	}
	for _, d := range []Domain{DomainCapacityAdvert, DomainJobSpec, DomainJobCommitment, DomainLedgerEntry, DomainLedgerCheckpoint} {
		if err := Verify(k.GetPublic(), d, msg, sig); !errors.Is(err, ErrBadSignature) {
			t.Errorf("Verify(domain %s) of a %s signature = %v, want ErrBadSignature", d, DomainJobResult, err)
		}
	}
	if err := Verify(testKey(t, 2).GetPublic(), DomainJobResult, msg, sig); !errors.Is(err, ErrBadSignature) {
		t.Errorf("Verify with another key = %v, want ErrBadSignature", err)
	}
	if err := Verify(k.GetPublic(), DomainJobResult, append(bytes.Clone(msg), 'x'), sig); !errors.Is(err, ErrBadSignature) {
		t.Errorf("Verify of another message = %v, want ErrBadSignature", err)
	}
	for i := range sig {
		bad := bytes.Clone(sig)
		bad[i] ^= 0x01
		if err := Verify(k.GetPublic(), DomainJobResult, msg, bad); !errors.Is(err, ErrBadSignature) {
			t.Errorf("Verify with signature byte %d flipped = %v, want ErrBadSignature", i, err)
		}
	}
	for n := range len(sig) {
		if err := Verify(k.GetPublic(), DomainJobResult, msg, sig[:n]); err == nil {
			t.Errorf("Verify with signature truncated to %d bytes = nil", n)
		}
	}
	if _, err := Sign(k, "", msg); err == nil {
		t.Error("Sign with an empty domain succeeded")
	}
}

func TestSealOpen(t *testing.T) {
	k := testKey(t, 3)
	id, err := PeerID(k)
	if err != nil {
		t.Fatal(err)
	}
	env, err := Seal(k, DomainCapacityAdvert, "shoal/advert", []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	o, err := Open(env, DomainCapacityAdvert, "shoal/advert")
	if err != nil {
		t.Fatalf("Open of a good envelope: %v", err)
	}
	if o.Signer != id || string(o.Payload) != "payload" {
		t.Errorf("Open = signer %s payload %q, want %s %q", o.Signer, o.Payload, id, "payload")
	}
	if _, err := Open(env, DomainLedgerEntry, "shoal/advert"); !errors.Is(err, ErrBadSignature) {
		t.Errorf("Open with the wrong domain = %v, want ErrBadSignature", err)
	}
	if _, err := Open(env, DomainCapacityAdvert, "shoal/other"); err == nil {
		t.Error("Open with the wrong payload type succeeded")
	}
	// Every single-byte change of the envelope must be refused or, if the
	// protobuf still decodes, fail the signature check.
	for i := range env {
		bad := bytes.Clone(env)
		bad[i] ^= 0x01
		if o, err := Open(bad, DomainCapacityAdvert, "shoal/advert"); err == nil {
			t.Errorf("Open with byte %d flipped succeeded (payload %q)", i, o.Payload)
		}
	}
	for n := range len(env) {
		if _, err := Open(env[:n], DomainCapacityAdvert, "shoal/advert"); err == nil {
			t.Errorf("Open of the first %d bytes succeeded", n)
		}
	}
	if _, err := Seal(k, "", "t", nil); err == nil {
		t.Error("Seal with an empty domain succeeded")
	}
}

func TestCIDOf(t *testing.T) {
	data := []byte("hello")
	c := CIDOf(multicodec.Raw, data)
	if err := CheckCID(c, data); err != nil {
		t.Fatalf("CheckCID of matching bytes: %v", err)
	}
	if err := CheckCID(c, []byte("hellp")); err == nil {
		t.Error("CheckCID of other bytes succeeded")
	}
	// The CID of "hello" as raw sha2-256 is fixed by the formats.
	if got, want := c.String(), "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"; got != want {
		t.Errorf("CIDOf(raw, hello) = %s, want %s", got, want)
	}
}

func TestPubKeyFromID(t *testing.T) {
	k := testKey(t, 4)
	id, _ := PeerID(k)
	pub, err := PubKeyFromID(id)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equals(k.GetPublic()) {
		t.Error("PubKeyFromID returned another key")
	}
}

func FuzzParseKeyFile(f *testing.F) {
	good, _ := MarshalKeyFile(testKey(f, 1))
	f.Add(good)
	f.Add([]byte("shoal identity v1\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParseKeyFile(data)
		if err != nil {
			return
		}
		// Whatever parses re-marshals and parses to the same key.
		b, err := MarshalKeyFile(k)
		if err != nil {
			t.Fatal(err)
		}
		k2, err := ParseKeyFile(b)
		if err != nil || !k2.Equals(k) {
			t.Fatalf("re-parse: %v", err)
		}
	})
}

func FuzzOpen(f *testing.F) {
	env, _ := Seal(testKey(f, 1), DomainCapacityAdvert, "shoal/advert", []byte("payload"))
	f.Add(env)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := Open(data, DomainCapacityAdvert, "shoal/advert")
		if err != nil {
			return
		}
		if err := Verify(o.PubKey, DomainCapacityAdvert, o.Payload, nil); err == nil {
			t.Fatal("an empty detached signature verified")
		}
	})
}
