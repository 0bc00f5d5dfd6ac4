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
	"sync"

	"github.com/ipfs/boxo/blockstore"
	dshelp "github.com/ipfs/boxo/datastore/dshelp"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
)

// fileBlockMin is the size from which a block is kept in a file of its
// own instead of in the datastore. Payload leaves (256 KiB by default)
// go to files; DAG nodes and small blocks stay in the datastore.
const fileBlockMin = 32 << 10

// maxParallelSyncs bounds the fsyncs a PutMany runs at once.
const maxParallelSyncs = 16

// A fileBlockstore keeps large blocks as files, one per block, in a
// directory sharded by two characters of the key, and small blocks in the
// datastore-backed blockstore it wraps. A file is written under a
// temporary name, synced and then renamed, so a block file that exists
// holds the whole block: after a crash a block is either whole or absent.
// Writing a block file costs one copy into the page cache, where the
// datastore would copy it into its log, memtable and tables.
type fileBlockstore struct {
	small  blockstore.Blockstore
	dir    string
	shards sync.Map // shard directories known to exist: name → struct{}
}

var _ blockstore.Blockstore = (*fileBlockstore)(nil)

// newFileBlockstore returns a fileBlockstore over dir (created if needed)
// and small.
func newFileBlockstore(dir string, small blockstore.Blockstore) (*fileBlockstore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("blocks: creating block directory %s: %w", dir, err)
	}
	return &fileBlockstore{small: small, dir: dir}, nil
}

// path returns the file that holds block c if it is stored as a file.
func (f *fileBlockstore) path(c cid.Cid) string {
	name := dshelp.MultihashToDsKey(c.Hash()).String()[1:]
	return filepath.Join(f.dir, shardOf(name), name)
}

// shardOf returns the shard directory of a key name: its next-to-last two
// characters, as go-ds-flatfs does, which spread base32 keys evenly.
func shardOf(name string) string {
	if len(name) < 3 {
		return "_"
	}
	return name[len(name)-3 : len(name)-1]
}

func (f *fileBlockstore) Has(ctx context.Context, c cid.Cid) (bool, error) {
	if _, err := os.Stat(f.path(c)); err == nil {
		return true, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("blocks: checking block file of %s: %w", c, err)
	}
	return f.small.Has(ctx, c)
}

func (f *fileBlockstore) Get(ctx context.Context, c cid.Cid) (blockformat.Block, error) {
	data, err := os.ReadFile(f.path(c))
	if err == nil {
		return blockformat.NewBlockWithCid(data, c)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blocks: reading block file of %s: %w", c, err)
	}
	return f.small.Get(ctx, c)
}

// readInto returns the bytes of block c, read into *buf (grown if too
// small) when the block is a file, so that a caller streaming many blocks
// reuses one buffer. The result is valid until *buf is used again.
func (f *fileBlockstore) readInto(ctx context.Context, c cid.Cid, buf *[]byte) ([]byte, error) {
	fh, err := os.Open(f.path(c))
	if errors.Is(err, fs.ErrNotExist) {
		blk, err := f.small.Get(ctx, c)
		if err != nil {
			return nil, err
		}
		return blk.RawData(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("blocks: reading block file of %s: %w", c, err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("blocks: reading block file of %s: %w", c, err)
	}
	if fi.Size() > MaxBlockSize {
		return nil, fmt.Errorf("blocks: block file of %s is %d bytes, over the %d-byte limit; it is corrupt, remove it", c, fi.Size(), MaxBlockSize)
	}
	n := int(fi.Size())
	if cap(*buf) < n {
		*buf = make([]byte, n)
	}
	data := (*buf)[:n]
	if _, err := io.ReadFull(fh, data); err != nil {
		return nil, fmt.Errorf("blocks: reading block file of %s: %w", c, err)
	}
	return data, nil
}

func (f *fileBlockstore) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	fi, err := os.Stat(f.path(c))
	if err == nil {
		return int(fi.Size()), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return -1, fmt.Errorf("blocks: checking block file of %s: %w", c, err)
	}
	return f.small.GetSize(ctx, c)
}

func (f *fileBlockstore) DeleteBlock(ctx context.Context, c cid.Cid) error {
	if err := os.Remove(f.path(c)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blocks: removing block file of %s: %w", c, err)
	}
	return f.small.DeleteBlock(ctx, c)
}

func (f *fileBlockstore) Put(ctx context.Context, b blockformat.Block) error {
	return f.PutMany(ctx, []blockformat.Block{b})
}

// PutMany writes the large blocks of bs to files and the small ones to the
// datastore in one batch. The large ones are written first, then synced
// together, then renamed into place; a large block whose file exists is
// not written again. When PutMany returns nil every block is stored.
func (f *fileBlockstore) PutMany(ctx context.Context, bs []blockformat.Block) error {
	var small []blockformat.Block
	var pending []*pendingFile
	defer func() {
		for _, p := range pending {
			p.abort()
		}
	}()
	for _, b := range bs {
		if len(b.RawData()) < fileBlockMin {
			small = append(small, b)
			continue
		}
		if _, err := os.Stat(f.path(b.Cid())); err == nil {
			continue // a block file is whole once it exists
		}
		p, err := f.writeTemp(b)
		if err != nil {
			return err
		}
		pending = append(pending, p)
	}
	if err := syncAll(pending); err != nil {
		return err
	}
	for i, p := range pending {
		if err := os.Rename(p.tmp, p.final); err != nil {
			return fmt.Errorf("blocks: moving block file %s into place: %w", p.final, err)
		}
		pending[i] = nil
	}
	pending = nil
	if len(small) > 0 {
		return f.small.PutMany(ctx, small)
	}
	return nil
}

// A pendingFile is a block written under a temporary name.
type pendingFile struct {
	file       *os.File // nil once closed
	tmp, final string
}

// abort closes and removes the temporary file, if still there.
func (p *pendingFile) abort() {
	if p == nil {
		return
	}
	if p.file != nil {
		p.file.Close()
	}
	os.Remove(p.tmp)
}

func (f *fileBlockstore) writeTemp(b blockformat.Block) (*pendingFile, error) {
	final := f.path(b.Cid())
	dir := filepath.Dir(final)
	if _, ok := f.shards.Load(dir); !ok {
		// Once per shard and process: a mkdir per block costs a system
		// call for nothing.
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("blocks: creating block directory %s: %w", dir, err)
		}
		f.shards.Store(dir, struct{}{})
	}
	tf, err := os.CreateTemp(dir, ".tmp-*")
	if errors.Is(err, fs.ErrNotExist) {
		// The shard was removed behind this process's back: make it again.
		if err = os.MkdirAll(dir, 0o700); err == nil {
			tf, err = os.CreateTemp(dir, ".tmp-*")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("blocks: creating block file in %s (is the disk full?): %w", dir, err)
	}
	p := &pendingFile{file: tf, tmp: tf.Name(), final: final}
	if _, err := tf.Write(b.RawData()); err != nil {
		p.abort()
		return nil, fmt.Errorf("blocks: writing block file %s (is the disk full?): %w", p.tmp, err)
	}
	return p, nil
}

// syncAll syncs and closes the files of ps, several at once: the disk
// serves concurrent syncs far faster than one after another.
func syncAll(ps []*pendingFile) error {
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxParallelSyncs)
	errs := make([]error, len(ps))
	for i, p := range ps {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := p.file.Sync()
			if cerr := p.file.Close(); err == nil {
				err = cerr
			}
			p.file = nil
			if err != nil {
				errs[i] = fmt.Errorf("blocks: syncing block file %s: %w", p.tmp, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// AllKeysChan lists the blocks kept as files, then those of the datastore.
func (f *fileBlockstore) AllKeysChan(ctx context.Context) (<-chan cid.Cid, error) {
	smallKeys, err := f.small.AllKeysChan(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan cid.Cid, 64)
	go func() {
		defer close(out)
		send := func(c cid.Cid) bool {
			select {
			case out <- c:
				return true
			case <-ctx.Done():
				return false
			}
		}
		ok := f.walk(func(c cid.Cid, _ int64) bool { return send(c) })
		for c := range smallKeys {
			if ok {
				ok = send(c)
			}
		}
	}()
	return out, nil
}

// walk calls fn for each block file, with its size, until fn returns
// false; it reports whether the walk went to the end. Files that are not
// block files (temporary files of an interrupted write) are skipped.
func (f *fileBlockstore) walk(fn func(c cid.Cid, size int64) bool) bool {
	shards, err := os.ReadDir(f.dir)
	if err != nil {
		return true
	}
	for _, sh := range shards {
		if !sh.IsDir() {
			continue
		}
		ents, err := os.ReadDir(filepath.Join(f.dir, sh.Name()))
		if err != nil {
			continue
		}
		for _, e := range ents {
			name := e.Name()
			if strings.HasPrefix(name, ".") || !e.Type().IsRegular() {
				continue
			}
			mh, err := dshelp.DsKeyToMultihash(datastore.NewKey(name))
			if err != nil {
				continue
			}
			info, err := e.Info()
			if err != nil {
				continue
			}
			if !fn(cid.NewCidV1(cid.Raw, mh), info.Size()) {
				return false
			}
		}
	}
	return true
}

// fileStat returns the number and bytes of the blocks kept as files.
func (f *fileBlockstore) fileStat() (n int, bytes uint64) {
	f.walk(func(_ cid.Cid, size int64) bool {
		n++
		bytes += uint64(size)
		return true
	})
	return n, bytes
}

// removeTemps removes the temporary files left by writes a crash
// interrupted.
func (f *fileBlockstore) removeTemps() {
	shards, err := os.ReadDir(f.dir)
	if err != nil {
		return
	}
	for _, sh := range shards {
		if !sh.IsDir() {
			continue
		}
		ents, _ := os.ReadDir(filepath.Join(f.dir, sh.Name()))
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".tmp-") {
				os.Remove(filepath.Join(f.dir, sh.Name(), e.Name()))
			}
		}
	}
}
