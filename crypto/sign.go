package crypto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
)

// A Domain names the one context a signature is valid in. Domains are
// append-only: never reuse or rename one.
type Domain string

// The domains Shoal signs in.
const (
	DomainCapacityAdvert   Domain = "shoal/capacity-advert/1"
	DomainJobSpec          Domain = "shoal/job-spec/1"
	DomainJobCommitment    Domain = "shoal/job-commitment/1"
	DomainJobResult        Domain = "shoal/job-result/1"
	DomainJobAnnouncement  Domain = "shoal/job-announcement/1"
	DomainLedgerEntry      Domain = "shoal/ledger-entry/1"
	DomainLedgerCheckpoint Domain = "shoal/ledger-checkpoint/1"
	DomainLedgerEvidence   Domain = "shoal/ledger-evidence/1"
)

// DetachedPayloadType is the payload type of detached signatures.
const DetachedPayloadType = "shoal/detached"

// ErrBadSignature is returned (wrapped) when a signature does not verify
// for the given key, domain and bytes.
var ErrBadSignature = errors.New("signature does not verify")

// rawRecord lets arbitrary bytes travel in a libp2p envelope.
type rawRecord struct {
	domain      Domain
	payloadType []byte
	payload     []byte
}

func (r *rawRecord) Domain() string                 { return string(r.domain) }
func (r *rawRecord) Codec() []byte                  { return r.payloadType }
func (r *rawRecord) MarshalRecord() ([]byte, error) { return r.payload, nil }
func (r *rawRecord) UnmarshalRecord(b []byte) error { r.payload = b; return nil }

var _ record.Record = (*rawRecord)(nil)

// Seal signs payload for domain with key and returns the marshaled libp2p
// envelope (protobuf: public key, payload type, payload, signature).
func Seal(key PrivKey, domain Domain, payloadType string, payload []byte) ([]byte, error) {
	if domain == "" || payloadType == "" {
		return nil, errors.New("crypto: Seal needs a domain and a payload type")
	}
	env, err := record.Seal(&rawRecord{domain: domain, payloadType: []byte(payloadType), payload: payload}, key)
	if err != nil {
		return nil, fmt.Errorf("crypto: seal %s: %w", domain, err)
	}
	b, err := env.Marshal()
	if err != nil {
		return nil, fmt.Errorf("crypto: marshal %s envelope: %w", domain, err)
	}
	return b, nil
}

// An Opened is the verified content of an envelope.
type Opened struct {
	Signer  peer.ID // derived from PublicKey
	PubKey  PubKey
	Payload []byte
}

// Open parses a marshaled envelope, checks that it carries payloadType and
// that its signature verifies for domain, and returns the signer and the
// payload. A bad signature wraps ErrBadSignature.
func Open(data []byte, domain Domain, payloadType string) (*Opened, error) {
	op, _, err := OpenOneOf(data, domain, payloadType)
	return op, err
}

// OpenOneOf is Open for an envelope that may carry any of payloadTypes;
// it also returns the one it carries.
func OpenOneOf(data []byte, domain Domain, payloadTypes ...string) (*Opened, string, error) {
	env, err := record.UnmarshalEnvelope(data)
	if err != nil {
		return nil, "", fmt.Errorf("crypto: %s envelope does not decode: %w", domain, err)
	}
	typ := string(env.PayloadType)
	if !slices.Contains(payloadTypes, typ) {
		return nil, "", fmt.Errorf("crypto: %s envelope has payload type %q, want %q", domain, typ, strings.Join(payloadTypes, `" or "`))
	}
	rec := &rawRecord{domain: domain, payloadType: env.PayloadType}
	if _, err := record.ConsumeTypedEnvelope(data, rec); err != nil {
		return nil, "", fmt.Errorf("crypto: %s envelope: %w: %v", domain, ErrBadSignature, err)
	}
	id, err := peer.IDFromPublicKey(env.PublicKey)
	if err != nil {
		return nil, "", fmt.Errorf("crypto: %s envelope signer: %w", domain, err)
	}
	return &Opened{Signer: id, PubKey: env.PublicKey, Payload: rec.payload}, typ, nil
}

// SignedBytes returns the exact bytes a detached signature covers for domain
// and msg: the envelope layout with payload type DetachedPayloadType.
func SignedBytes(domain Domain, msg []byte) []byte {
	fields := [][]byte{[]byte(domain), []byte(DetachedPayloadType), msg}
	n := 0
	for _, f := range fields {
		n += binary.MaxVarintLen64 + len(f)
	}
	b := make([]byte, 0, n)
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// Sign returns key's detached signature of msg for domain.
func Sign(key PrivKey, domain Domain, msg []byte) ([]byte, error) {
	if domain == "" {
		return nil, errors.New("crypto: Sign needs a domain")
	}
	sig, err := key.Sign(SignedBytes(domain, msg))
	if err != nil {
		return nil, fmt.Errorf("crypto: sign %s: %w", domain, err)
	}
	return sig, nil
}

// Verify checks pub's detached signature sig of msg for domain. It returns
// nil when the signature verifies and an error wrapping ErrBadSignature when
// it does not.
func Verify(pub PubKey, domain Domain, msg, sig []byte) error {
	ok, err := pub.Verify(SignedBytes(domain, msg), sig)
	if err != nil {
		return fmt.Errorf("crypto: verify %s: %w: %v", domain, ErrBadSignature, err)
	}
	if !ok {
		return fmt.Errorf("crypto: verify %s: %w", domain, ErrBadSignature)
	}
	return nil
}

// PubKeyFromID extracts the public key embedded in an ed25519 peer ID.
func PubKeyFromID(id peer.ID) (PubKey, error) {
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("crypto: public key of peer %s: %w", id, err)
	}
	if pub.Type() != p2pcrypto.Ed25519 {
		return nil, fmt.Errorf("crypto: peer %s has a %v key, want Ed25519", id, pub.Type())
	}
	return pub, nil
}
