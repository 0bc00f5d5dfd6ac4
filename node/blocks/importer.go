package blocks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multihash"
)

// Import settings equal to Kubo's `ipfs add --cid-version=1` defaults.
const (
	// ChunkSize is the fixed chunk size of file import (Kubo's size-262144).
	ChunkSize = 256 << 10
	// MaxLinks is the number of links per internal node of a file DAG.
	MaxLinks = 174
)

// cidBuilder makes CIDv1 dag-pb sha2-256 CIDs, as Kubo does with
// --cid-version=1.
var cidBuilder = cid.V1Builder{Codec: cid.DagProtobuf, MhType: multihash.SHA2_256, MhLength: -1}

// ctxReader makes a Reader stop with the context's error and counts bytes.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
	n   uint64
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += uint64(n)
	return n, err
}

// importFile imports r as a UnixFS file into dag and returns its root node
// and size in bytes.
func importFile(ctx context.Context, dag ipld.DAGService, r io.Reader) (ipld.Node, uint64, error) {
	cr := &ctxReader{ctx: ctx, r: r}
	params := helpers.DagBuilderParams{
		Maxlinks:   MaxLinks,
		RawLeaves:  true,
		CidBuilder: cidBuilder,
		Dagserv:    dag,
	}
	db, err := params.New(chunker.NewSizeSplitter(cr, ChunkSize))
	if err != nil {
		return nil, 0, err
	}
	nd, err := balanced.Layout(db)
	if err != nil {
		return nil, 0, err
	}
	return nd, cr.n, nil
}

// AddReader imports the bytes of r as a UnixFS file (the CID `ipfs add
// --cid-version=1` gives), pins it and announces it. It streams: memory use
// does not grow with the file. It returns the root CID and the size in
// bytes. On error nothing is pinned, and the blocks written are removed by
// the next garbage collection.
func (s *Service) AddReader(ctx context.Context, r io.Reader) (cid.Cid, uint64, error) {
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	bd := ipld.NewBufferedDAG(ctx, s.dag)
	nd, size, err := importFile(ctx, bd, r)
	if err != nil {
		return cid.Undef, 0, fmt.Errorf("blocks: importing file: %w", err)
	}
	return s.finishAdd(ctx, bd, nd, size)
}

// finishAdd commits an import, pins its root and announces it.
func (s *Service) finishAdd(ctx context.Context, bd *ipld.BufferedDAG, nd ipld.Node, size uint64) (cid.Cid, uint64, error) {
	if err := bd.Commit(); err != nil {
		return cid.Undef, 0, fmt.Errorf("blocks: writing imported blocks: %w", err)
	}
	if err := s.putPin(ctx, nd.Cid()); err != nil {
		return cid.Undef, 0, err
	}
	s.provide(nd.Cid())
	s.maybeAutoGC()
	return nd.Cid(), size, nil
}

// AddPath imports the file or directory tree at path as UnixFS (the CID
// `ipfs add --cid-version=1 -r` gives: hidden entries, whose names start
// with ".", are skipped as Kubo does without --hidden; symbolic links inside
// a directory are stored as UnixFS symlinks), pins it and announces it. The
// size is the number of file bytes imported.
func (s *Service) AddPath(ctx context.Context, path string) (cid.Cid, uint64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return cid.Undef, 0, fmt.Errorf("blocks: adding %s: %w", path, err)
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	bd := ipld.NewBufferedDAG(ctx, s.dag)
	var nd ipld.Node
	var size uint64
	switch {
	case fi.Mode().IsRegular():
		nd, size, err = importPathFile(ctx, bd, path)
	case fi.IsDir():
		nd, size, err = importDir(ctx, bd, path)
	default:
		err = fmt.Errorf("%s is a %v, not a regular file or directory", path, fi.Mode().Type())
	}
	if err != nil {
		return cid.Undef, 0, fmt.Errorf("blocks: adding %s: %w", path, err)
	}
	return s.finishAdd(ctx, bd, nd, size)
}

func importPathFile(ctx context.Context, dag ipld.DAGService, path string) (ipld.Node, uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	nd, size, err := importFile(ctx, dag, f)
	if err != nil {
		return nil, 0, fmt.Errorf("importing %s: %w", path, err)
	}
	return nd, size, nil
}

// importDir imports the directory at path, recursively.
func importDir(ctx context.Context, dag ipld.DAGService, path string) (ipld.Node, uint64, error) {
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, 0, err
	}
	dir, err := uio.NewDirectory(dag, uio.WithCidBuilder(cidBuilder))
	if err != nil {
		return nil, 0, err
	}
	var total uint64
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		full := filepath.Join(path, name)
		var child ipld.Node
		var size uint64
		switch t := e.Type(); {
		case t.IsDir():
			child, size, err = importDir(ctx, dag, full)
		case t.IsRegular():
			child, size, err = importPathFile(ctx, dag, full)
		case t&fs.ModeSymlink != 0:
			child, err = importSymlink(ctx, dag, full)
		default:
			err = fmt.Errorf("%s is a %v; only regular files, directories and symlinks can be added", full, t)
		}
		if err != nil {
			return nil, 0, err
		}
		if err := dir.AddChild(ctx, name, child); err != nil {
			return nil, 0, fmt.Errorf("adding %s to its directory: %w", full, err)
		}
		total += size
	}
	nd, err := dir.GetNode()
	if err != nil {
		return nil, 0, err
	}
	if err := dag.Add(ctx, nd); err != nil {
		return nil, 0, err
	}
	return nd, total, nil
}

func importSymlink(ctx context.Context, dag ipld.DAGService, path string) (ipld.Node, error) {
	target, err := os.Readlink(path)
	if err != nil {
		return nil, err
	}
	data, err := unixfs.SymlinkData(target)
	if err != nil {
		return nil, err
	}
	nd := merkledag.NodeWithData(data)
	if err := nd.SetCidBuilder(cidBuilder); err != nil {
		return nil, err
	}
	if err := dag.Add(ctx, nd); err != nil {
		return nil, err
	}
	return nd, nil
}

// ErrNotPinned is returned (wrapped) by Unpin for a CID that is not pinned.
var ErrNotPinned = errors.New("not pinned")
