package blocks

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	upb "github.com/ipfs/boxo/ipld/unixfs/pb"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multicodec"
)

// maxTarEntries bounds the entries of a tar stream given to AddTar.
const maxTarEntries = 1 << 20

// tarDir is a directory being assembled from tar entries.
type tarDir struct {
	entries map[string]ipld.Node // files and symlinks
	dirs    map[string]*tarDir
}

func newTarDir() *tarDir {
	return &tarDir{entries: make(map[string]ipld.Node), dirs: make(map[string]*tarDir)}
}

// AddTar imports a directory tree given as a tar stream, streaming each
// file into the store as it is read, pins the tree and announces it. Entry
// names are paths relative to the tree's root ("a.txt", "sub/b.txt"; a
// leading "./" is allowed); only regular files, directories and symbolic
// links are accepted, and no name may contain "..". Directories are built
// as `ipfs add -r` builds them, so the same tree gets the same CID. The
// size is the number of file bytes imported.
func (s *Service) AddTar(ctx context.Context, r io.Reader) (cid.Cid, uint64, error) {
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	bd := ipld.NewBufferedDAG(ctx, s.dag)
	root := newTarDir()
	tr := tar.NewReader(r)
	var total uint64
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return cid.Undef, 0, fmt.Errorf("blocks: reading tar stream: %w", err)
		}
		if n >= maxTarEntries {
			return cid.Undef, 0, fmt.Errorf("blocks: tar stream has more than %d entries", maxTarEntries)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "./"), "/")
		if name == "" || name == "." {
			continue // the root itself
		}
		elems := strings.Split(name, "/")
		for _, e := range elems {
			if !validEntryName(e) {
				return cid.Undef, 0, fmt.Errorf("blocks: tar entry %q has an unsafe name; use paths relative to the tree's root", hdr.Name)
			}
		}
		parent := root
		for _, e := range elems[:len(elems)-1] {
			d, ok := parent.dirs[e]
			if !ok {
				d = newTarDir()
				parent.dirs[e] = d
			}
			parent = d
		}
		base := elems[len(elems)-1]
		if _, dup := parent.entries[base]; dup {
			return cid.Undef, 0, fmt.Errorf("blocks: tar entry %q appears twice", hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if _, ok := parent.dirs[base]; !ok {
				parent.dirs[base] = newTarDir()
			}
		case tar.TypeReg:
			if _, ok := parent.dirs[base]; ok {
				return cid.Undef, 0, fmt.Errorf("blocks: tar entry %q is both a file and a directory", hdr.Name)
			}
			nd, size, err := importFile(ctx, bd, tr)
			if err != nil {
				return cid.Undef, 0, fmt.Errorf("blocks: importing tar entry %q: %w", hdr.Name, err)
			}
			parent.entries[base] = nd
			total += size
		case tar.TypeSymlink:
			data, err := unixfs.SymlinkData(hdr.Linkname)
			if err != nil {
				return cid.Undef, 0, err
			}
			nd := merkledag.NodeWithData(data)
			if err := nd.SetCidBuilder(cidBuilder); err != nil {
				return cid.Undef, 0, err
			}
			if err := bd.Add(ctx, nd); err != nil {
				return cid.Undef, 0, err
			}
			parent.entries[base] = nd
		default:
			return cid.Undef, 0, fmt.Errorf("blocks: tar entry %q has type %q; only files, directories and symlinks can be added", hdr.Name, hdr.Typeflag)
		}
	}
	nd, err := buildTarDir(ctx, bd, root)
	if err != nil {
		return cid.Undef, 0, fmt.Errorf("blocks: building directory: %w", err)
	}
	return s.finishAdd(ctx, bd, nd, total)
}

// buildTarDir builds the UnixFS directory of d, its entries in byte order
// of their names as `ipfs add -r` adds them.
func buildTarDir(ctx context.Context, dag ipld.DAGService, d *tarDir) (ipld.Node, error) {
	dir, err := uio.NewDirectory(dag, uio.WithCidBuilder(cidBuilder))
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(d.entries)+len(d.dirs))
	for n := range d.entries {
		names = append(names, n)
	}
	for n := range d.dirs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		child, ok := d.entries[n]
		if !ok {
			if child, err = buildTarDir(ctx, dag, d.dirs[n]); err != nil {
				return nil, err
			}
		}
		if err := dir.AddChild(ctx, n, child); err != nil {
			return nil, err
		}
	}
	nd, err := dir.GetNode()
	if err != nil {
		return nil, err
	}
	if err := dag.Add(ctx, nd); err != nil {
		return nil, err
	}
	return nd, nil
}

// Kind tells files from directories.
type Kind string

// Kinds of UnixFS roots.
const (
	KindFile      Kind = "file"
	KindDirectory Kind = "directory"
)

// KindOf returns whether c is a UnixFS file or directory, fetching its root
// block if needed; for a file it also returns the size.
func (s *Service) KindOf(ctx context.Context, c cid.Cid) (Kind, uint64, error) {
	if err := ValidateCID(c); err != nil {
		return "", 0, err
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	op := s.newOp(ctx, c)
	defer op.close()
	blk, err := op.get(c)
	if err != nil {
		return "", 0, err
	}
	size, err := fileSize(blk)
	if err == nil {
		return KindFile, size, nil
	}
	if errors.Is(err, ErrNotFile) && multicodec.Code(c.Prefix().Codec) == multicodec.DagPb {
		if _, fsn, derr := decodeFS(c, blk.RawData()); derr == nil &&
			(fsn.Type() == upb.Data_Directory || fsn.Type() == upb.Data_HAMTShard) {
			return KindDirectory, 0, nil
		}
	}
	return "", 0, err
}

// WriteTar writes the UnixFS tree c to w as a tar stream, fetching blocks
// from peers as needed. Entry names are relative to the tree's root; a
// file root gives one entry named name. Names are checked as ExportPath
// checks them.
func (s *Service) WriteTar(ctx context.Context, c cid.Cid, name string, w io.Writer) error {
	if err := ValidateCID(c); err != nil {
		return err
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	op := s.newOp(ctx, c)
	defer op.close()
	tw := tar.NewWriter(w)
	if err := s.tarNode(ctx, op, tw, c, name, true); err != nil {
		return fmt.Errorf("blocks: writing %s as tar: %w", c, err)
	}
	return tw.Close()
}

func (s *Service) tarNode(ctx context.Context, op *fetchOp, tw *tar.Writer, c cid.Cid, name string, root bool) error {
	blk, err := op.get(c)
	if err != nil {
		return err
	}
	if multicodec.Code(c.Prefix().Codec) == multicodec.DagPb {
		pn, fsn, err := decodeFS(c, blk.RawData())
		if err != nil {
			return err
		}
		switch fsn.Type() {
		case upb.Data_Directory, upb.Data_HAMTShard:
			if !root {
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755}); err != nil {
					return err
				}
			}
			dir, err := uio.NewDirectoryFromNode(merkledag.NewReadOnlyDagService(opGetter{op}), pn)
			if err != nil {
				return fmt.Errorf("reading directory %s: %w", c, err)
			}
			links, err := dir.Links(ctx)
			if err != nil {
				return fmt.Errorf("listing directory %s: %w", c, err)
			}
			for _, l := range links {
				if !validEntryName(l.Name) {
					return fmt.Errorf("directory %s has an unsafe entry name %q", c, l.Name)
				}
				child := l.Name
				if !root {
					child = path.Join(name, l.Name)
				}
				if err := s.tarNode(ctx, op, tw, l.Cid, child, false); err != nil {
					return err
				}
			}
			return nil
		case upb.Data_Symlink:
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: string(fsn.Data()), Mode: 0o777})
		}
	}
	size, err := fileSize(blk)
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(size), Mode: 0o644}); err != nil {
		return err
	}
	_, err = io.Copy(tw, newFileReader(op, c, size, nil))
	return err
}
