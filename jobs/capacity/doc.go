// Package capacity implements Shoal's capacity adverts: the signed offers
// of job slots that every node publishes on gossipsub, the topic validator
// that keeps bad adverts out, and the capacity view — the newest valid
// advert of every peer — that a submitter reads to pick workers.
//
// The full specification is in docs/protocol.md, section "Capacity adverts";
// this comment is its summary.
//
// # Topic
//
// Adverts travel on the gossipsub topic "shoal/<network>/capacity/1" (see
// [Topic]) under [MessagePolicy]: messages carry no author and no gossipsub
// signature, and a message's ID is a hash of its data. The message data is
// one sealed advert, signed by its peer.
//
// # Sealed advert
//
// A sealed advert is a libp2p signed envelope (core/record, protobuf) made
// by [crypto.Seal] with domain "shoal/capacity-advert/1" and payload type
// "shoal/capacity-advert/1" ([PayloadType]). The whole envelope is at most
// [MaxAdvertSize] (4096) bytes and must be in canonical protobuf form (it
// re-marshals to the same bytes).
//
// # Payload
//
// The payload is canonical DAG-CBOR (map keys sorted shorter first, then
// bytewise; minimal integer and length encodings; no floats or tags in known
// fields) of a map with these keys, each required:
//
//	seq       int     strictly increasing per peer; 1..2^63-1
//	free      int     free job slots, 0..slots
//	peer      bytes   the binary peer ID of the advertising node
//	cores     int     logical CPUs, 0..2^20
//	slots     int     total job slots, 0..65536
//	expiry    int     unix time in milliseconds after which the advert is void
//	labels    map     string → string, at most 16; see [ValidLabel]
//	memory    int     physical memory in bytes, ≥ 0
//	network   string  network name, 1..64 printable ASCII bytes
//	version   string  software version, ≤ 64 printable ASCII bytes
//	runtimes  list    of strings, at most 8, unique; see [ValidRuntime]
//
// Unknown keys are allowed (a later version may add optional fields) and are
// covered by the signature and the size bound. A known key of the wrong
// type is an error.
//
// The advert of testdata/advert-payload.hex encodes as
//
//	ab                                    map, 11 entries
//	63 736571  1b 180b4168cb760000        "seq": 1732550400000000000
//	64 66726565  03                       "free": 3
//	64 70656572  58 26 0024 0801 1220 …   "peer": 38-byte ed25519 peer ID
//	65 636f726573  08                     "cores": 8
//	65 736c6f7473  04                     "slots": 4
//	66 657870697279  1b 00000193640d8d30  "expiry": 1732550430000
//	66 6c6162656c73  a2 …                 "labels": {"gpu": "none", "region": "eu"}
//	66 6d656d6f7279  1b 0000000400000000  "memory": 17179869184
//	67 6e6574776f726b  67 746573746e6574  "network": "testnet"
//	67 76657273696f6e  6b 73686f616c…     "version": "shoal/0.1.0"
//	68 72756e74696d6573  81 64 7761736d   "runtimes": ["wasm"]
//
// # Receiving
//
// A node accepts an advert only if, in this order: the sealed advert is at
// most 4096 bytes; the envelope decodes, is canonical, has the payload type
// and its signature verifies in the advert domain; the payload is canonical
// DAG-CBOR with every field valid; the envelope's signer is the advert's
// peer; the network is the receiver's; the expiry is in the future and at most [MaxTTL] +
// [MaxClockSkew] ahead; and the seq is newer than that of the advert the
// view holds for the peer. Failing any check is a rejection
// (pubsub.ValidationReject, which scores the relaying peer down), except
// two cases that honest gossip produces and that are ignored without
// penalty: a copy of the message that delivered the advert in the view
// ([ReasonDuplicate]), and an older seq ([ReasonStale]), which arrives when
// a peer fetches an old message by gossip after a newer one came by the
// mesh. The same seq in other bytes is a replay (the peer signed two
// adverts with one seq) and is rejected.
//
// # Publishing
//
// A node publishes its advert when it starts, soon after its slots
// change (a change settles for half of [DefaultMinInterval] first, changes
// within [DefaultMinInterval] of the last advert are coalesced, and a
// change undone before the advert goes out, such as a short job's slot
// taken and given back, publishes nothing), when a neighbour joins the topic or an advert of a peer new
// to its view arrives (so that a newcomer learns every offer without
// waiting for a heartbeat; at most once a second), and on a heartbeat well inside the expiry (defaults
// [DefaultHeartbeat] 10 s and [DefaultExpiry] 30 s). Its seq is
// max(previous seq + 1, unix time in nanoseconds), so a restarted node
// continues above its old adverts.
//
// # View
//
// The view holds the newest accepted advert per peer, the node's own
// included, and drops it when its expiry passes: a node that stops or is
// cut off leaves every view within one expiry.
//
// # Compatibility
//
// New optional payload keys may be added. Any other change — a new meaning
// or type for a key, a new required key, another envelope — gets a new
// topic ("…/capacity/2") and a new domain.
package capacity
