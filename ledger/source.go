package ledger

import (
	"context"

	"golang.org/x/mod/sumdb/tlog"
)

// LocalSource returns a Source that serves l directly, for auditing a log
// in the same process (and for tests) with the code paths used for peers.
func LocalSource(l *Log) Source { return localSource{l} }

type localSource struct{ l *Log }

var _ Source = localSource{}

func (s localSource) Origin() Origin { return s.l.Origin() }

func (s localSource) Checkpoint(ctx context.Context) (*Checkpoint, error) { return s.l.Checkpoint() }

func (s localSource) Entries(ctx context.Context, from uint64, max int) ([][]byte, error) {
	if from >= s.l.Size() {
		return nil, s.l.notFound(from)
	}
	return s.l.RawEntries(from, max, maxEntriesBytes)
}

func (s localSource) ProveTree(ctx context.Context, old, size uint64) (tlog.TreeProof, error) {
	return s.l.ProveTree(old, size)
}
