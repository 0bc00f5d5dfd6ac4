// Package ledger implements a Shoal node's append-only, signed, hash-chained
// log of jobs and results: the entry and checkpoint formats, durable
// group-committed storage, Merkle inclusion and consistency proofs
// (golang.org/x/mod/sumdb/tlog), verification of a whole log without
// trusting it, fork evidence, the replication protocol /shoal/ledger/1.0.0
// with a witness, and checkpoint gossip helpers.
//
// The formats are specified byte by byte in docs/ledger.md; this comment
// summarises them.
//
// # Entries
//
// An entry is the fixed binary layout
//
//	version(1 byte = 1) || bytes(origin) || seq(8, big-endian) || bytes(prev CID)
//	|| time(8, big-endian unix nanoseconds) || bytes(kind) || bytes(body)
//	|| bytes(author public key, libp2p protobuf) || bytes(signature)
//
// where bytes(x) is uvarint(len(x)) || x. The signature is crypto.Sign with
// crypto.DomainLedgerEntry over every byte before the signature field. An
// entry is at most 64 KiB; its CID is CIDv1 raw sha2-256 of the bytes.
//
// # Checkpoints
//
// A checkpoint is a signed note (golang.org/x/mod/sumdb/note) in the C2SP
// tlog-checkpoint form: "<origin>\n<size>\n<base64 root>\n", where the root
// is the RFC 6962 tree hash of the entries' bytes. The note key's name is
// the origin and its ed25519 key is the one in the origin's peer ID, so a
// checkpoint verifies with nothing but its own origin line.
//
// # Storage
//
// [Open] opens the log in a directory. [Log.Append] returns only once the
// entry is synced; concurrent appends share one write and one fsync.
//
// # Peers
//
// [Server] serves a log on [ProtocolID]; [Remote] fetches from it and
// checks every answer. [Fetch] and [Verifier] verify a whole log from any
// [Source]. A [Witness] holds each peer's newest verified checkpoint and a
// [Replica] of its log, accepts newer checkpoints only with a consistency
// proof, and turns a rewritten history into [Evidence] that verifies
// offline ([DecodeEvidence]). [JoinGossip] and [GossipValidator] carry
// checkpoints and evidence on the topic [GossipTopic].
package ledger
