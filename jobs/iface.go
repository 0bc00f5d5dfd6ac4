package jobs

import (
	"context"
	"io"

	"github.com/ipfs/go-cid"
)

// Blocks is what a job needs of the node's block service: making a DAG
// local, writing one out to a path, and importing files as UnixFS. The
// node's blocks service implements it; jobstest.MemBlocks is an in-memory
// one. Implementations must be safe for concurrent use.
type Blocks interface {
	// Fetch makes every block of the DAG under c local, from peers if
	// needed. It returns an error naming c when that is not possible.
	Fetch(ctx context.Context, c cid.Cid) error
	// ExportPath writes the UnixFS file or directory c to dst, which must
	// not exist. A UnixFS symlink may come out as a symlink: callers that
	// hand the tree to untrusted code check it (jobs/local refuses any).
	ExportPath(ctx context.Context, c cid.Cid, dst string) error
	// AddPath imports the file or directory at path as UnixFS and returns
	// its CID and size in bytes.
	AddPath(ctx context.Context, path string) (cid.Cid, uint64, error)
	// AddReader imports the bytes of r as a UnixFS file.
	AddReader(ctx context.Context, r io.Reader) (cid.Cid, uint64, error)
	// Has reports whether the block c is held here (not its children).
	Has(ctx context.Context, c cid.Cid) (bool, error)
}

// An Executor runs jobs on this node. jobs/local implements it; the
// distribution across peers calls it on the worker side.
type Executor interface {
	// Execute runs spec here and returns the result signed by this node.
	// Every way the program can end, including bad modules, missing
	// inputs and broken limits, is a result with a Failure; Execute
	// returns an error only when ctx ends or the node cannot produce a
	// signed result (storage or key failure). progress, if not nil, is
	// called with each state the job enters; it must not block.
	Execute(ctx context.Context, spec *SignedSpec, progress func(State)) (*SignedResult, error)
}
