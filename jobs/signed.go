package jobs

import (
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
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
	b, err := env.Encode()
	if err != nil {
		return nil, err
	}
	sig, err := crypto.Sign(key, crypto.DomainJobSpec, b)
	if err != nil {
		return nil, fmt.Errorf("jobs: sign spec: %w", err)
	}
	return newSignedSpec(env, b, sig)
}

func newSignedSpec(env *Envelope, b, sig []byte) (*SignedSpec, error) {
	comp, err := env.Computation.CID()
	if err != nil {
		return nil, err
	}
	return &SignedSpec{Envelope: env, Bytes: b, Sig: sig, ID: crypto.CIDOf(multicodec.DagCbor, b), CompCID: comp}, nil
}

// Encode returns the canonical encoding of s.
func (s *SignedSpec) Encode() ([]byte, error) {
	return buildMap("signed spec", 2, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "envelope", qp.Bytes(s.Bytes))
		qp.MapEntry(ma, "sig", qp.Bytes(s.Sig))
	})
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
	n, err := decodeCanonical("signed spec", data, MaxSignedSpecSize)
	if err != nil {
		return nil, err
	}
	f := readFields("signed spec", n, "envelope", "sig")
	b, sig := f.bytes("envelope"), f.bytes("sig")
	if f.err != nil {
		return nil, f.err
	}
	env, err := DecodeEnvelope(b)
	if err != nil {
		return nil, err
	}
	pub, err := crypto.PubKeyFromID(env.Submitter)
	if err != nil {
		return nil, fmt.Errorf("jobs: signed spec: %w", err)
	}
	if verify {
		if err := crypto.Verify(pub, crypto.DomainJobSpec, b, sig); err != nil {
			return nil, fmt.Errorf("jobs: signed spec from %s: %w", env.Submitter, err)
		}
	}
	return newSignedSpec(env, b, sig)
}
