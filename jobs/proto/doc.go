// Package proto implements the messages, framing and validation of the job
// stream protocol /shoal/job/1.1.0 ([ID]; /shoal/job/1.0.0, [ID10], is still
// served), which a submitting node speaks with the workers it offers a job to.
//
// # Exchange
//
// The submitter places each replica on a stream of its own and writes an
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
// # Streams carry one exchange after another
//
// On a stream of [ID], once an exchange has ended — the submitter has read
// the worker's [Decline], [Result] or [Error] — the submitter may write the
// next [Offer] on the same stream instead of opening another: opening a
// stream costs frames both ways (open, acknowledgement, protocol
// negotiation, close) that would outnumber the exchange's own three. At
// most one exchange is in progress on a stream at a time. The worker waits
// for the next offer for a while (a minute) and then closes the stream;
// the submitter closes streams it has left idle for 30 s. A [Cancel] for a
// job whose exchange has ended is ignored. An offer written on a stream the
// worker has just closed gets no answer but the end of the stream; the
// submitter then makes it again on a new stream. A stream of [ID10] carries
// exactly one exchange.
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
