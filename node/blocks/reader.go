package blocks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	upb "github.com/ipfs/boxo/ipld/unixfs/pb"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multicodec"
)

// decodeFS decodes a dag-pb block as a UnixFS node.
func decodeFS(c cid.Cid, data []byte) (*merkledag.ProtoNode, *unixfs.FSNode, error) {
	pn, err := merkledag.DecodeProtobuf(data)
	if err != nil {
		return nil, nil, fmt.Errorf("blocks: decoding dag-pb block %s: %w", c, err)
	}
	fsn, err := unixfs.FSNodeFromBytes(pn.Data())
	if err != nil {
		return nil, nil, fmt.Errorf("blocks: block %s is not UnixFS: %w", c, err)
	}
	return pn, fsn, nil
}

// fileSize returns the size of the UnixFS file whose root block is blk.
func fileSize(blk blockformat.Block) (uint64, error) {
	c := blk.Cid()
	switch multicodec.Code(c.Prefix().Codec) {
	case multicodec.Raw:
		return uint64(len(blk.RawData())), nil
	case multicodec.DagPb:
		_, fsn, err := decodeFS(c, blk.RawData())
		if err != nil {
			return 0, err
		}
		switch fsn.Type() {
		case upb.Data_File, upb.Data_Raw:
			return fsn.FileSize(), nil
		case upb.Data_Directory, upb.Data_HAMTShard:
			return 0, fmt.Errorf("blocks: %w: CID %s is a directory; fetch it with get (ExportPath)", ErrNotFile, c)
		default:
			return 0, fmt.Errorf("blocks: %w: CID %s is UnixFS type %s", ErrNotFile, c, fsn.Type())
		}
	}
	return 0, fmt.Errorf("blocks: %w: CID %s has codec %s", ErrNotFile, c, multicodec.Code(c.Prefix().Codec))
}

// A fileReader streams a UnixFS file by walking its DAG depth-first.
type fileReader struct {
	op      *fetchOp
	stack   []cid.Cid
	cur     []byte
	size    uint64
	read    uint64
	release func()
	once    sync.Once
	err     error
}

func newFileReader(op *fetchOp, root cid.Cid, size uint64, release func()) *fileReader {
	return &fileReader{op: op, stack: []cid.Cid{root}, size: size, release: release}
}

func (r *fileReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	for len(r.cur) == 0 {
		if err := r.advance(); err != nil {
			r.err = err
			return 0, err
		}
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	r.read += uint64(n)
	if r.read > r.size {
		r.err = fmt.Errorf("blocks: file %s holds more than its declared %d bytes", r.op.root, r.size)
		return 0, r.err
	}
	return n, nil
}

// advance loads the next block of the file into cur.
func (r *fileReader) advance() error {
	if len(r.stack) == 0 {
		if r.read != r.size {
			return fmt.Errorf("blocks: file %s ended after %d of its declared %d bytes", r.op.root, r.read, r.size)
		}
		return io.EOF
	}
	c := r.stack[len(r.stack)-1]
	r.stack = r.stack[:len(r.stack)-1]
	blk, err := r.op.get(c)
	if err != nil {
		return err
	}
	switch multicodec.Code(c.Prefix().Codec) {
	case multicodec.Raw:
		r.cur = blk.RawData()
	case multicodec.DagPb:
		pn, fsn, err := decodeFS(c, blk.RawData())
		if err != nil {
			return err
		}
		if t := fsn.Type(); t != upb.Data_File && t != upb.Data_Raw {
			return fmt.Errorf("blocks: file %s contains a block %s of UnixFS type %s", r.op.root, c, t)
		}
		r.cur = fsn.Data()
		links := pn.Links()
		for i := len(links) - 1; i >= 0; i-- {
			r.stack = append(r.stack, links[i].Cid)
		}
	default:
		return fmt.Errorf("blocks: file %s contains a block %s with codec %s", r.op.root, c, multicodec.Code(c.Prefix().Codec))
	}
	return nil
}

func (r *fileReader) Close() error {
	r.once.Do(func() {
		r.op.close()
		if r.release != nil {
			r.release()
		}
		if r.err == nil {
			r.err = errors.New("blocks: read after Close")
		}
	})
	return nil
}

// Open returns a reader of the UnixFS file c and its size in bytes. Blocks
// missing locally are fetched from peers as the reader needs them, so the
// first bytes are available before the whole file has arrived. Reads use
// ctx. The caller must Close the reader. Open fails with ErrNotFile for a
// directory and with ErrNoProvider when nobody delivers the root block
// within the fetch timeout.
func (s *Service) Open(ctx context.Context, c cid.Cid) (io.ReadCloser, uint64, error) {
	if err := ValidateCID(c); err != nil {
		return nil, 0, err
	}
	s.gcMu.RLock()
	op := s.newOp(ctx, c)
	fail := func(err error) (io.ReadCloser, uint64, error) {
		op.close()
		s.gcMu.RUnlock()
		return nil, 0, err
	}
	blk, err := op.get(c)
	if err != nil {
		return fail(err)
	}
	size, err := fileSize(blk)
	if err != nil {
		return fail(err)
	}
	return newFileReader(op, c, size, s.gcMu.RUnlock), size, nil
}

// opGetter serves the nodes of a fetchOp to boxo's UnixFS directory code.
type opGetter struct{ op *fetchOp }

func (g opGetter) Get(_ context.Context, c cid.Cid) (ipld.Node, error) {
	blk, err := g.op.get(c)
	if err != nil {
		return nil, err
	}
	switch multicodec.Code(c.Prefix().Codec) {
	case multicodec.DagPb:
		return merkledag.DecodeProtobufBlock(blk)
	case multicodec.Raw:
		return merkledag.DecodeRawBlock(blk)
	}
	return nil, fmt.Errorf("blocks: block %s has codec %s, not UnixFS", c, multicodec.Code(c.Prefix().Codec))
}

func (g opGetter) GetMany(ctx context.Context, cs []cid.Cid) <-chan *ipld.NodeOption {
	out := make(chan *ipld.NodeOption, len(cs))
	go func() {
		defer close(out)
		for _, c := range cs {
			nd, err := g.Get(ctx, c)
			select {
			case out <- &ipld.NodeOption{Node: nd, Err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return out
}

// ExportPath writes the UnixFS file or directory tree c to dst, fetching
// blocks from peers as needed. dst must not exist: the tree is written under
// a temporary name in dst's directory and renamed to dst only once complete,
// so a failure or cancellation leaves nothing under dst. Entry names are
// checked (no "/", ".", ".." or NUL), so a DAG cannot write outside dst.
func (s *Service) ExportPath(ctx context.Context, c cid.Cid, dst string) error {
	if err := ValidateCID(c); err != nil {
		return err
	}
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("blocks: exporting %s: %s already exists; choose a new path", c, dst)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("blocks: exporting %s: %w", c, err)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".shoal-tmp-"+hex.EncodeToString(rnd[:]))

	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	op := s.newOp(ctx, c)
	defer op.close()
	if err := s.exportNode(ctx, op, c, tmp); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("blocks: exporting %s to %s: %w", c, dst, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("blocks: exporting %s: %w", c, err)
	}
	return nil
}

// validEntryName reports whether name is safe as one path element.
func validEntryName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00") &&
		(filepath.Separator == '/' || !strings.ContainsRune(name, filepath.Separator))
}

func (s *Service) exportNode(ctx context.Context, op *fetchOp, c cid.Cid, path string) error {
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
			dir, err := uio.NewDirectoryFromNode(merkledag.NewReadOnlyDagService(opGetter{op}), pn)
			if err != nil {
				return fmt.Errorf("reading directory %s: %w", c, err)
			}
			links, err := dir.Links(ctx)
			if err != nil {
				return fmt.Errorf("listing directory %s: %w", c, err)
			}
			if err := os.Mkdir(path, 0o755); err != nil {
				return err
			}
			for _, l := range links {
				if !validEntryName(l.Name) {
					return fmt.Errorf("directory %s has an unsafe entry name %q", c, l.Name)
				}
				if err := s.exportNode(ctx, op, l.Cid, filepath.Join(path, l.Name)); err != nil {
					return err
				}
			}
			return nil
		case upb.Data_Symlink:
			return os.Symlink(string(fsn.Data()), path)
		}
	}
	size, err := fileSize(blk)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	r := newFileReader(op, c, size, nil)
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
