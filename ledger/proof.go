package ledger

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// CheckInclusion reports (as nil) whether proof shows that the entry with
// canonical bytes entry is entry seq of the tree of size entries with root
// root. It is tlog.CheckRecord over the entry's record hash.
func CheckInclusion(proof tlog.RecordProof, size uint64, root tlog.Hash, seq uint64, entry []byte) error {
	if err := tlog.CheckRecord(proof, int64(size), root, int64(seq), tlog.RecordHash(entry)); err != nil {
		return fmt.Errorf("ledger: entry %d is not proven in tree %d (%s): %w", seq, size, root, err)
	}
	return nil
}

// CheckConsistency reports (as nil) whether proof shows that the tree of
// size old with root oldRoot is a prefix of the tree of size size with root
// root. It is tlog.CheckTree.
func CheckConsistency(proof tlog.TreeProof, size uint64, root tlog.Hash, old uint64, oldRoot tlog.Hash) error {
	if err := tlog.CheckTree(proof, int64(size), root, int64(old), oldRoot); err != nil {
		return fmt.Errorf("ledger: tree %d (%s) is not proven a prefix of tree %d (%s): %w", old, oldRoot, size, root, err)
	}
	return nil
}
