package crypto

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// PrivKey and PubKey are libp2p's key types; Shoal identities are ed25519.
type (
	PrivKey = p2pcrypto.PrivKey
	PubKey  = p2pcrypto.PubKey
)

// keyFileHeader is the first line of a key file; a new format gets a new line.
const keyFileHeader = "shoal identity v1"

// KeyFileMode is the only permission a key file may have.
const KeyFileMode fs.FileMode = 0o600

// ErrKeyFilePermissions is returned (wrapped) by ReadKeyFile when the key
// file can be read by anyone other than its owner.
var ErrKeyFilePermissions = errors.New("key file is readable by others")

// GenerateKey returns a new ed25519 identity read from rand. Pass a seeded
// reader to reproduce a key (testnets, tests); pass crypto/rand.Reader otherwise.
func GenerateKey(rand io.Reader) (PrivKey, error) {
	priv, _, err := p2pcrypto.GenerateEd25519Key(rand)
	if err != nil {
		return nil, fmt.Errorf("crypto: generate ed25519 key: %w", err)
	}
	return priv, nil
}

// PeerID returns the libp2p peer ID of key.
func PeerID(key PrivKey) (peer.ID, error) {
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return "", fmt.Errorf("crypto: peer id from key: %w", err)
	}
	return id, nil
}

// MarshalKeyFile returns the key file contents for key.
func MarshalKeyFile(key PrivKey) ([]byte, error) {
	raw, err := p2pcrypto.MarshalPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("crypto: marshal private key: %w", err)
	}
	var b bytes.Buffer
	b.WriteString(keyFileHeader)
	b.WriteByte('\n')
	b.WriteString(base64.StdEncoding.EncodeToString(raw))
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// ParseKeyFile parses key file contents written by MarshalKeyFile.
// It accepts only ed25519 keys.
func ParseKeyFile(data []byte) (PrivKey, error) {
	header, rest, ok := bytes.Cut(data, []byte("\n"))
	if !ok || string(header) != keyFileHeader {
		return nil, fmt.Errorf("first line is not %q", keyFileHeader)
	}
	body := bytes.TrimSuffix(rest, []byte("\n"))
	if bytes.ContainsAny(body, "\n\r \t") {
		return nil, errors.New("key line has extra lines or spaces")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(string(body))
	if err != nil {
		return nil, fmt.Errorf("key line is not base64: %w", err)
	}
	key, err := p2pcrypto.UnmarshalPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("key does not decode: %w", err)
	}
	if key.Type() != p2pcrypto.Ed25519 {
		return nil, fmt.Errorf("key type is %v, want Ed25519", key.Type())
	}
	return key, nil
}

// WriteKeyFile writes key to a new file at path with mode 0600. It never
// overwrites an existing file, and the file is synced before it returns.
func WriteKeyFile(path string, key PrivKey) error {
	data, err := MarshalKeyFile(key)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, KeyFileMode)
	if err != nil {
		return fmt.Errorf("crypto: create key file %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("crypto: write key file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("crypto: sync key file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("crypto: close key file %s: %w", path, err)
	}
	return nil
}

// ReadKeyFile reads the key file at path. It fails, naming the file, when
// the file is missing, readable or writable by group or others (wrapping
// ErrKeyFilePermissions), or corrupt.
func ReadKeyFile(path string) (PrivKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("crypto: open key file %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("crypto: stat key file %s: %w", path, err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("crypto: key file %s has mode %#o, want %#o (run: chmod 600 %s): %w",
			path, perm, KeyFileMode, path, ErrKeyFilePermissions)
	}
	data, err := io.ReadAll(io.LimitReader(f, 16<<10))
	if err != nil {
		return nil, fmt.Errorf("crypto: read key file %s: %w", path, err)
	}
	key, err := ParseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("crypto: key file %s is corrupt: %w", path, err)
	}
	return key, nil
}
