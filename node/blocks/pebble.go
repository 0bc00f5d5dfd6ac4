package blocks

import (
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

// PebbleCacheSize is the block cache of the node's datastore (go-ds-pebble
// WithCacheSize). Every lookup reads the filter and index blocks of each
// table that could hold its key; once a node has stored some ten thousand
// jobs those blocks outgrow a cache of 8 MiB, and lookups read them from
// the table files again and again (pebble Get went from 4 % to 8 % of a
// busy testnet's CPU). The cache fills only as blocks are read.
const PebbleCacheSize = 64 << 20

// PebbleOptions returns pebble options suited to a datastore that holds
// blocks (values of up to 2 MiB, mostly 256 KiB): values of 4 KiB and more
// are kept in blob files that compactions do not rewrite, which cuts write
// amplification for payloads several-fold, and the memtable is large
// enough to absorb a few hundred MiB in flight. Tables carry bloom filters:
// most lookups are for keys that are absent (a block not yet stored, a job
// announcement not yet seen), and without a filter each of those reads
// index and data blocks of every table that could hold the key. Pass it to go-ds-pebble
// with pebbleds.WithPebbleOpts when opening the node's store. Each call
// returns a fresh value.
func PebbleOptions() *pebble.Options {
	o := &pebble.Options{
		FormatMajorVersion:          pebble.FormatValueSeparation,
		MemTableSize:                16 << 20,
		MemTableStopWritesThreshold: 4,
		// Compact level 0 once two of its sublevels overlap: a node looks
		// keys up for every job, and each extra sublevel is one more table
		// to check per lookup. Under a sustained job load, pebble's default
		// (4, here 8 until payloads moved to pack files) let daemons spend
		// about 8 % more CPU per job after a few thousand jobs.
		L0CompactionThreshold: 2,
		L0StopWritesThreshold: 32,
		BytesPerSync:          4 << 20,
	}
	// Every level inherits the filter of the one above it.
	o.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	// Payloads are mostly compressed or random bytes: compressing them
	// costs CPU for nothing.
	o.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionNone })
	o.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
		return pebble.ValueSeparationPolicy{
			Enabled:               true,
			MinimumSize:           4 << 10,
			MaxBlobReferenceDepth: 10,
			RewriteMinimumAge:     5 * time.Minute,
			TargetGarbageRatio:    0.2,
		}
	}
	return o
}
