// Package jobstest provides in-memory stand-ins for what package jobs
// needs from the rest of a node, for tests of jobs and its subpackages.
package jobstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/multiformats/go-multicodec"

	"github.com/shoalnet/shoal/crypto"
	"github.com/shoalnet/shoal/jobs"
)

// ErrNotFound is returned (wrapped) for a CID the store does not hold.
var ErrNotFound = errors.New("jobstest: block not found")

// MemBlocks is an in-memory jobs.Blocks. Files are raw blocks (their CID
// is the raw CID of their bytes); a directory is one DAG-CBOR map of entry
// name to CID. The CIDs are content addresses, but not UnixFS ones. Its
// zero value is usable, and it is safe for concurrent use.
type MemBlocks struct {
	mu     sync.Mutex         // guards blocks
	blocks map[cid.Cid][]byte // by CID
}

var _ jobs.Blocks = (*MemBlocks)(nil)

func (m *MemBlocks) put(c cid.Cid, b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.blocks == nil {
		m.blocks = map[cid.Cid][]byte{}
	}
	m.blocks[c] = b
}

func (m *MemBlocks) get(c cid.Cid) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blocks[c]
	return b, ok
}

// Remove drops c, so that a later Fetch of it fails.
func (m *MemBlocks) Remove(c cid.Cid) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.blocks, c)
}

// Has reports whether block c is held.
func (m *MemBlocks) Has(_ context.Context, c cid.Cid) (bool, error) {
	_, ok := m.get(c)
	return ok, nil
}

// Fetch succeeds when every block under c is held.
func (m *MemBlocks) Fetch(ctx context.Context, c cid.Cid) error {
	b, ok := m.get(c)
	if !ok {
		return fmt.Errorf("jobstest: fetch %s: %w", c, ErrNotFound)
	}
	if c.Prefix().Codec != uint64(multicodec.DagCbor) {
		return nil
	}
	entries, err := decodeDir(b)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := m.Fetch(ctx, e.c); err != nil {
			return err
		}
	}
	return nil
}

// AddReader stores the bytes of r as one file.
func (m *MemBlocks) AddReader(ctx context.Context, r io.Reader) (cid.Cid, uint64, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return cid.Undef, 0, fmt.Errorf("jobstest: read: %w", err)
	}
	c := crypto.CIDOf(multicodec.Raw, b)
	m.put(c, b)
	return c, uint64(len(b)), nil
}

// AddBytes stores b as one file and returns its CID.
func (m *MemBlocks) AddBytes(b []byte) cid.Cid {
	c, _, _ := m.AddReader(context.Background(), bytes.NewReader(b))
	return c
}

// AddPath stores the file or directory at path. It refuses links and
// other special files.
func (m *MemBlocks) AddPath(ctx context.Context, path string) (cid.Cid, uint64, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return cid.Undef, 0, fmt.Errorf("jobstest: add %s: %w", path, err)
	}
	switch {
	case st.Mode().IsRegular():
		f, err := os.Open(path)
		if err != nil {
			return cid.Undef, 0, fmt.Errorf("jobstest: add %s: %w", path, err)
		}
		defer f.Close()
		return m.AddReader(ctx, f)
	case st.IsDir():
		des, err := os.ReadDir(path)
		if err != nil {
			return cid.Undef, 0, fmt.Errorf("jobstest: add %s: %w", path, err)
		}
		var entries []dirEntry
		var total uint64
		for _, de := range des {
			c, n, err := m.AddPath(ctx, filepath.Join(path, de.Name()))
			if err != nil {
				return cid.Undef, 0, err
			}
			entries = append(entries, dirEntry{de.Name(), c})
			total += n
		}
		b, err := encodeDir(entries)
		if err != nil {
			return cid.Undef, 0, err
		}
		c := crypto.CIDOf(multicodec.DagCbor, b)
		m.put(c, b)
		return c, total, nil
	default:
		return cid.Undef, 0, fmt.Errorf("jobstest: add %s: not a regular file or directory", path)
	}
}

// ExportPath writes file or directory c to dst, which must not exist.
func (m *MemBlocks) ExportPath(ctx context.Context, c cid.Cid, dst string) error {
	b, ok := m.get(c)
	if !ok {
		return fmt.Errorf("jobstest: export %s: %w", c, ErrNotFound)
	}
	if c.Prefix().Codec != uint64(multicodec.DagCbor) {
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("jobstest: export %s: %w", c, err)
		}
		if _, err := f.Write(b); err != nil {
			f.Close()
			return fmt.Errorf("jobstest: export %s: %w", c, err)
		}
		return f.Close()
	}
	entries, err := decodeDir(b)
	if err != nil {
		return err
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return fmt.Errorf("jobstest: export %s: %w", c, err)
	}
	for _, e := range entries {
		if err := m.ExportPath(ctx, e.c, filepath.Join(dst, e.name)); err != nil {
			return err
		}
	}
	return nil
}

type dirEntry struct {
	name string
	c    cid.Cid
}

func encodeDir(entries []dirEntry) ([]byte, error) {
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	n, err := qp.BuildMap(basicnode.Prototype.Map, int64(len(entries)), func(ma datamodel.MapAssembler) {
		for _, e := range entries {
			qp.MapEntry(ma, e.name, qp.Link(cidlink.Link{Cid: e.c}))
		}
	})
	if err != nil {
		return nil, fmt.Errorf("jobstest: build directory: %w", err)
	}
	var buf bytes.Buffer
	if err := dagcbor.Encode(n, &buf); err != nil {
		return nil, fmt.Errorf("jobstest: encode directory: %w", err)
	}
	return buf.Bytes(), nil
}

func decodeDir(b []byte) ([]dirEntry, error) {
	nb := basicnode.Prototype.Map.NewBuilder()
	if err := dagcbor.Decode(nb, bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("jobstest: decode directory: %w", err)
	}
	n := nb.Build()
	var out []dirEntry
	it := n.MapIterator()
	for !it.Done() {
		k, v, err := it.Next()
		if err != nil {
			return nil, err
		}
		name, _ := k.AsString()
		l, err := v.AsLink()
		if err != nil {
			return nil, fmt.Errorf("jobstest: directory entry %q: %w", name, err)
		}
		if name == "" || name == "." || name == ".." || filepath.Base(name) != name {
			return nil, fmt.Errorf("jobstest: directory entry %q is not a plain name", name)
		}
		out = append(out, dirEntry{name, l.(cidlink.Link).Cid})
	}
	return out, nil
}
