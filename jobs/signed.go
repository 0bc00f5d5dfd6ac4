package jobs

import (
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multicodec"

	"github.com/shoalnet/shoal/crypto"
)

// A SignedSpec is a job as it travels: the envelope's canonical bytes and
// the submitter's detached signature of them (domain
// crypto.DomainJobSpec). Its encoding is the DAG-CBOR map
// {"envelope": bytes, "sig": bytes}.
//
// A SignedSpec returned by SignSpec or DecodeSignedSpec has been checked:
// the envelope decodes and validates and the signature verifies for
// Envelope.Submitter. Its fields must not be modified.
type SignedSpec struct {
	Envelope *Envelope
	Bytes    []byte  // canonical envelope bytes
	Sig      []byte  // submitter's signature of Bytes
	ID       cid.Cid // job ID: CID of Bytes
	CompCID  cid.Cid // computation CID
}

// SignSpec encodes env and signs it with key, which must be the key of
// env.Submitter.
func SignSpec(key crypto.PrivKey, env *Envelope) (*SignedSpec, error) {
	id, err := crypto.PeerID(key)
	if err != nil {
		return nil, err
	}
	if id != env.Submitter {
		return nil, fmt.Errorf("jobs: sign spec: key is %s but envelope.submitter is %s", id, env.Submitter)
	}
	b, comp, err := env.encode()
	if err != nil {
		return nil, err
	}
	sig, err := crypto.Sign(key, crypto.DomainJobSpec, b)
	if err != nil {
		return nil, fmt.Errorf("jobs: sign spec: %w", err)
	}
	return newSignedSpec(env, b, comp, sig), nil
}

// newSignedSpec returns the signed spec of env, whose encoding is b and
// within it comp, its computation's.
func newSignedSpec(env *Envelope, b, comp, sig []byte) *SignedSpec {
	return &SignedSpec{Envelope: env, Bytes: b, Sig: sig,
		ID: crypto.CIDOf(multicodec.DagCbor, b), CompCID: crypto.CIDOf(multicodec.DagCbor, comp)}
}

// wireSignedSpec is the DAG-CBOR map of a signed spec.
type wireSignedSpec struct {
	Envelope []byte `cbor:"envelope"`
	Sig      []byte `cbor:"sig"`
}

// Encode returns the canonical encoding of s.
func (s *SignedSpec) Encode() ([]byte, error) {
	return encode("signed spec", &wireSignedSpec{Envelope: s.Bytes, Sig: s.Sig})
}

// DecodeSignedSpec decodes and checks a signed spec: size, canonical form,
// the envelope (as DecodeEnvelope does) and the submitter's signature. A
// bad signature wraps crypto.ErrBadSignature.
func DecodeSignedSpec(data []byte) (*SignedSpec, error) {
	return decodeSignedSpec(data, true)
}

// DecodeSignedSpecUnverified is DecodeSignedSpec without the signature
// check. It is for a spec inside a message whose own signature, by the
// same submitter, already vouches for it (a results announcement); such a
// spec must go through DecodeSignedSpec before it is shown or relied on.
func DecodeSignedSpecUnverified(data []byte) (*SignedSpec, error) {
	return decodeSignedSpec(data, false)
}

func decodeSignedSpec(data []byte, verify bool) (*SignedSpec, error) {
	var w wireSignedSpec
	if err := decodeCanonical("signed spec", "signed spec", data, MaxSignedSpecSize, &w); err != nil {
		return nil, err
	}
	env, comp, err := decodeEnvelope(w.Envelope)
	if err != nil {
		return nil, err
	}
	// The key was extracted once already, by Validate.
	if verify {
		pub, err := crypto.PubKeyFromID(env.Submitter)
		if err != nil {
			return nil, fmt.Errorf("jobs: signed spec: %w", err)
		}
		if err := crypto.Verify(pub, crypto.DomainJobSpec, w.Envelope, w.Sig); err != nil {
			return nil, fmt.Errorf("jobs: signed spec from %s: %w", env.Submitter, err)
		}
	}
	return newSignedSpec(env, w.Envelope, comp, w.Sig), nil
}
