package crypto

import (
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multicodec"
	"github.com/multiformats/go-multihash"
)

// CIDOf returns the CIDv1 with a sha2-256 multihash of data under codec
// (for example multicodec.DagCbor or multicodec.Raw). It is how Shoal names
// canonical bytes: job specs, results, ledger entries.
func CIDOf(codec multicodec.Code, data []byte) cid.Cid {
	mh, err := multihash.Sum(data, multihash.SHA2_256, -1)
	if err != nil {
		// sha2-256 with default length cannot fail.
		panic(fmt.Sprintf("crypto: sha2-256 multihash: %v", err))
	}
	return cid.NewCidV1(uint64(codec), mh)
}

// CheckCID reports whether data hashes to c. It supports sha2-256 and the
// identity hash, and returns an error naming the CID otherwise.
func CheckCID(c cid.Cid, data []byte) error {
	pref := c.Prefix()
	switch pref.MhType {
	case multihash.SHA2_256, multihash.IDENTITY:
	default:
		return fmt.Errorf("crypto: CID %s uses hash %#x; only sha2-256 and identity are supported", c, pref.MhType)
	}
	got, err := pref.Sum(data)
	if err != nil {
		return fmt.Errorf("crypto: hash for CID %s: %w", c, err)
	}
	if !got.Equals(c) {
		return fmt.Errorf("crypto: bytes hash to %s, not %s", got, c)
	}
	return nil
}
