// Package crypto owns a Shoal node's identity and every signature the network
// checks: the node's ed25519 key file, domain-separated signing and
// verification (libp2p core/record envelopes and detached signatures over the
// same layout), and the content-address helpers that name canonical bytes.
//
// # Identity
//
// A node is its libp2p ed25519 key. The key lives in the repo dir in a file
// that must have mode 0600 (no group or other bits); [ReadKeyFile] refuses a
// wider mode or a corrupt file with an error naming the file.
//
// The key file is text:
//
//	shoal identity v1
//	<base64 (std, padded) of libp2p crypto.MarshalPrivateKey>
//
// A future incompatible format changes the first line.
//
// # Domains
//
// Every signature is made for one [Domain]: a signature made for a capacity
// advert never verifies as a ledger entry or a job result. Signed bytes are
// the libp2p envelope layout
//
//	uvarint(len(domain)) || domain || uvarint(len(type)) || type || uvarint(len(payload)) || payload
//
// so an envelope ([Seal], [Open]) and a detached signature ([Sign],
// [Verify], which use the payload type "shoal/detached") follow one rule.
package crypto
