// Package proto implements the messages, framing and validation of the job
// stream protocol /shoal/job/1.0.0, which a submitting node speaks with the
// workers it offers a job to.
//
// # Exchange
//
// The submitter opens one stream per replica it places and writes an
// [Offer] carrying the signed job spec. The worker answers [Accept] or
// [Decline] (with a [Code] and a reason). After accepting it fetches the
// job's blocks by CID, runs the job, and then either
//
//   - writes its signed [Result] at once (a job with one replica), or
//   - writes a signed [Commit] (a hash binding its peer ID, the job CID and
//     its result CID), waits for the submitter's [Reveal], and only then
//     writes its [Result] (a job with several replicas: commit, then reveal).
//
// Either side may end the exchange early: the submitter with [Cancel], the
// worker with [Error]. Every step has a deadline; a stream that misses one
// is reset.
//
// # Framing
//
// Each message is one frame: an unsigned varint (minimal encoding) giving
// the body length, then the body. A body is at most [MaxMessageSize] bytes;
// a longer frame is rejected before it is read.
//
// # Body
//
// The first body byte is the message [Type]. The fields follow in the fixed
// order of the message's struct, each encoded as
//
//	uint    uvarint, minimal encoding
//	bytes   uvarint(len) || bytes
//	string  bytes holding valid UTF-8
//	cid     bytes holding a binary CIDv1
//	peer    bytes holding a binary peer ID
//	bool    one byte, 0 or 1
//
// A body with trailing bytes, a non-minimal varint, an unknown type, a
// field over its bound or an invalid CID, peer ID or code is rejected. So
// every message has exactly one encoding.
//
// # Compatibility
//
// Codes and message types are append-only: never reuse or renumber one. A
// change that old peers cannot read gets a new protocol ID.
// The full specification is in docs/protocol.md, section "Jobs".
package proto
