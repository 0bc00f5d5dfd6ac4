// Package blocks implements Shoal's content-addressed payload store: a
// persistent blockstore, UnixFS import and export whose CIDs equal those of
// `ipfs add --cid-version=1`, block exchange with peers over bitswap and over
// Shoal's own DAG stream protocol, content routing, pins and garbage
// collection.
//
// # Storage
//
// Blocks live in the datastore given to [New] under the key prefix /blocks
// (keyed by multihash, as boxo's blockstore does) and pins under /pins.
// With [WithBlockDir], blocks of 32 KiB and more are instead appended to
// pack files in that directory and indexed in the datastore (/packidx) once
// the pack is synced, so that payload bytes are written once, in sequence,
// rather than through the datastore's log, memtable and tables or into a
// file of their own. GC compacts packs that are mostly dead.
//
// # Fetching
//
// A block that is not local is fetched as part of a DAG: the fetcher asks a
// provider for the DAG's root over [ProtocolDAG], and the provider streams
// every block of the DAG in depth-first order over one stream. The fetcher
// checks each block against its CID and against the links it already holds
// (a block nobody asked for is refused), stores it in batches while it reads
// on, and readers waiting for a block proceed as soon as its batch is
// stored, so a file's first bytes are served while the rest is
// still arriving. Peers that do not speak the DAG stream (any IPFS node), and
// failures of it, fall back to bitswap. Providers are connected peers first,
// then those the content router names.
//
// Every block that enters the store from a peer passes through one check:
// its size is at most [MaxBlockSize], its CID is supported ([ValidateCID])
// and its bytes hash to its CID. A peer that sends a bad block is dropped
// and avoided for a while.
//
// The wire format of the DAG stream is specified in docs/protocol.md,
// section "Payloads".
package blocks
