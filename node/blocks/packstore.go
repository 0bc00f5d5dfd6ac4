package blocks

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/ipfs/boxo/blockstore"
	dshelp "github.com/ipfs/boxo/datastore/dshelp"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	"github.com/multiformats/go-multihash"
)

// packBlockMin is the size from which a block is kept in a pack file
// instead of in the datastore. Payload leaves (256 KiB by default) go to
// packs; DAG nodes and small blocks stay in the datastore.
const packBlockMin = 32 << 10

// packTarget is the size at which the pack being written is sealed and a
// new one started.
const packTarget = 128 << 20

// packIndexPrefix is the datastore prefix of the pack index: one key per
// block kept in a pack, /packidx/<multihash key> → its place.
const packIndexPrefix = "/packidx"

// packExt names pack files: NNNNNNNN.pack in the block directory.
const packExt = ".pack"

// A packStore keeps large blocks appended to pack files in a directory, and
// small blocks in the datastore-backed blockstore it wraps. A batch of
// blocks is appended to the current pack, the pack is synced, and only then
// are the blocks' places written to the index in the datastore: a block
// the index names is whole on disk, and after a crash a block is either
// whole or absent (bytes appended but never indexed are dead space, which
// compaction reclaims). Writing a block costs one sequential append, where
// a file per block costs a create, a rename and a directory entry, and the
// datastore would copy it into its log, memtable and tables.
//
// Deleting a block removes its index entry. Packs that hold no live block
// are removed, and packs that are more than half dead are compacted (their
// live blocks moved to the current pack) by Compact, which GC calls.
type packStore struct {
	small blockstore.Blockstore
	ds    datastore.Batching
	dir   string
	log   *slog.Logger
	// target is the size at which the current pack is sealed
	// (packTarget; smaller in tests).
	target int64

	// wmu serialises appends to the current pack.
	wmu     sync.Mutex
	current *pack // guarded by wmu; nil until the first append

	// imu serialises index updates, so that the live accounting follows
	// the index exactly.
	imu sync.Mutex

	mu     sync.RWMutex
	packs  map[uint32]*pack // guarded by mu; readers hold mu shared during ReadAt
	nextID uint32           // guarded by wmu
	blocks int              // blocks in packs; guarded by mu
	bytes  uint64           // their bytes; guarded by mu
}

// A pack is one pack file.
type pack struct {
	id   uint32
	f    *os.File
	size int64 // bytes written; written holding packStore.wmu and mu, read holding either
	live int64 // bytes of indexed blocks; guarded by packStore.mu
	// pending counts blocks appended and not yet indexed (or given up);
	// a pack with pending blocks is never removed. Guarded by packStore.mu.
	pending int
}

// A packPlace is where a block lives: its pack, the offset of its bytes
// and their length.
type packPlace struct {
	pack   uint32
	offset int64
	length int
}

func (p packPlace) encode() []byte {
	b := binary.AppendUvarint(nil, uint64(p.pack))
	b = binary.AppendUvarint(b, uint64(p.offset))
	return binary.AppendUvarint(b, uint64(p.length))
}

func decodePackPlace(b []byte) (packPlace, error) {
	var vals [3]uint64
	for i := range vals {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return packPlace{}, errors.New("truncated")
		}
		vals[i], b = v, b[n:]
	}
	if len(b) != 0 || vals[0] > 1<<32-1 || vals[1] > 1<<62 || vals[2] > MaxBlockSize {
		return packPlace{}, errors.New("out of range")
	}
	return packPlace{pack: uint32(vals[0]), offset: int64(vals[1]), length: int(vals[2])}, nil
}

// recordHeader returns the header written before a block's bytes in a
// pack: the length of its multihash, the multihash, the length of the
// bytes (unsigned varints), so that a pack can be read without its index.
func recordHeader(buf []byte, mh multihash.Multihash, n int) []byte {
	buf = binary.AppendUvarint(buf[:0], uint64(len(mh)))
	buf = append(buf, mh...)
	return binary.AppendUvarint(buf, uint64(n))
}

func packName(id uint32) string { return fmt.Sprintf("%08d%s", id, packExt) }

func indexKey(mh multihash.Multihash) datastore.Key {
	return datastore.NewKey(packIndexPrefix).Child(dshelp.MultihashToDsKey(mh))
}

// newPackStore opens the packs in dir (created if needed), builds the live
// accounting from the index in ds, removes packs nothing lives in, and moves
// blocks left as one file each by earlier versions into a pack.
func newPackStore(ctx context.Context, dir string, ds datastore.Batching, small blockstore.Blockstore, log *slog.Logger) (*packStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("blocks: creating block directory %s: %w", dir, err)
	}
	p := &packStore{small: small, ds: ds, dir: dir, log: log, packs: make(map[uint32]*pack), nextID: 1, target: packTarget}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("blocks: reading block directory %s: %w", dir, err)
	}
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(name, packExt) {
			continue
		}
		id, err := strconv.ParseUint(strings.TrimSuffix(name, packExt), 10, 32)
		if err != nil {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDWR, 0)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("blocks: opening pack %s: %w", name, err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			p.close()
			return nil, fmt.Errorf("blocks: opening pack %s: %w", name, err)
		}
		p.packs[uint32(id)] = &pack{id: uint32(id), f: f, size: fi.Size()}
		p.nextID = max(p.nextID, uint32(id)+1)
	}
	var stale []datastore.Key
	err = p.eachPlace(ctx, func(k datastore.Key, pl packPlace) error {
		pk := p.packs[pl.pack]
		if pk == nil || pl.offset+int64(pl.length) > pk.size {
			stale = append(stale, k) // its pack is gone or short: lost to a crash or by hand
			return nil
		}
		pk.live += int64(pl.length)
		p.blocks++
		p.bytes += uint64(pl.length)
		return nil
	})
	if err != nil {
		p.close()
		return nil, err
	}
	if len(stale) > 0 {
		log.Warn("removing the index entries of blocks whose packs are missing or short; they are absent now and will be fetched again when needed", "blocks", len(stale))
		for _, k := range stale {
			if err := ds.Delete(ctx, k); err != nil {
				p.close()
				return nil, fmt.Errorf("blocks: removing stale pack index entry %s: %w", k, err)
			}
		}
	}
	for id, pk := range p.packs {
		if pk.live == 0 {
			p.removePack(id)
		}
	}
	if err := p.migrateFiles(ctx); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// eachPlace calls fn for every entry of the index.
func (p *packStore) eachPlace(ctx context.Context, fn func(k datastore.Key, pl packPlace) error) error {
	res, err := p.ds.Query(ctx, query.Query{Prefix: packIndexPrefix})
	if err != nil {
		return fmt.Errorf("blocks: reading the pack index: %w", err)
	}
	defer res.Close()
	for e := range res.Next() {
		if e.Error != nil {
			return fmt.Errorf("blocks: reading the pack index: %w", e.Error)
		}
		pl, err := decodePackPlace(e.Value)
		if err != nil {
			p.log.Warn("malformed pack index entry ignored; its block is treated as absent", "key", e.Key, "err", err)
			continue
		}
		if err := fn(datastore.RawKey(e.Key), pl); err != nil {
			return err
		}
	}
	return nil
}

// close closes every pack file.
func (p *packStore) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pk := range p.packs {
		pk.f.Close()
	}
	clear(p.packs)
}

// removePack closes and deletes pack id. The caller makes sure no index
// entry that could survive a crash still names it.
func (p *packStore) removePack(id uint32) {
	p.mu.Lock()
	pk := p.packs[id]
	delete(p.packs, id)
	p.mu.Unlock()
	if pk == nil {
		return
	}
	pk.f.Close()
	if err := os.Remove(pk.f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		p.log.Warn("could not remove an empty pack", "pack", pk.f.Name(), "err", err)
	}
}

// place returns where block c lives, if in a pack.
func (p *packStore) place(ctx context.Context, c cid.Cid) (packPlace, bool, error) {
	v, err := p.ds.Get(ctx, indexKey(c.Hash()))
	if errors.Is(err, datastore.ErrNotFound) {
		return packPlace{}, false, nil
	}
	if err != nil {
		return packPlace{}, false, fmt.Errorf("blocks: looking up block %s: %w", c, err)
	}
	pl, err := decodePackPlace(v)
	if err != nil {
		return packPlace{}, false, fmt.Errorf("blocks: pack index entry of %s is malformed (%v); remove the repo's blocks or restore it from a backup", c, err)
	}
	return pl, true, nil
}

// readPlace reads the bytes at pl into dst (len(dst) == pl.length). It
// reports false if pl's pack is gone.
func (p *packStore) readPlace(pl packPlace, dst []byte) (bool, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	pk := p.packs[pl.pack]
	if pk == nil {
		return false, nil
	}
	if _, err := pk.f.ReadAt(dst, pl.offset); err != nil {
		return true, fmt.Errorf("blocks: reading %d bytes at %d of pack %s: %w", pl.length, pl.offset, pk.f.Name(), err)
	}
	return true, nil
}

// Has looks among the small blocks first: most blocks are (DAG nodes, a
// job's stdout), and a lookup that finds its key stops early where a miss
// walks every level of the datastore's tables. A large block pays one
// miss, next to hashing its 256 KiB.
func (p *packStore) Has(ctx context.Context, c cid.Cid) (bool, error) {
	if ok, err := p.small.Has(ctx, c); ok || err != nil {
		return ok, err
	}
	_, ok, err := p.place(ctx, c)
	return ok, err
}

func (p *packStore) Get(ctx context.Context, c cid.Cid) (blockformat.Block, error) {
	var buf []byte // a fresh one: the block keeps it
	data, err := p.readInto(ctx, c, &buf)
	if err != nil {
		return nil, err
	}
	return blockformat.NewBlockWithCid(data, c)
}

// readInto returns the bytes of block c, read into *buf (grown if too
// small) when the block is in a pack, so that a caller streaming many
// blocks reuses one buffer. The result is valid until *buf is used again.
func (p *packStore) readInto(ctx context.Context, c cid.Cid, buf *[]byte) ([]byte, error) {
	pl, ok, err := p.place(ctx, c)
	if err != nil {
		return nil, err
	}
	if ok {
		if cap(*buf) < pl.length {
			*buf = make([]byte, pl.length)
		}
		data := (*buf)[:pl.length]
		found, err := p.readPlace(pl, data)
		if err != nil {
			return nil, err
		}
		if found {
			return data, nil
		}
	}
	blk, err := p.small.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	return blk.RawData(), nil
}

func (p *packStore) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	if pl, ok, err := p.place(ctx, c); err != nil {
		return -1, err
	} else if ok {
		return pl.length, nil
	}
	return p.small.GetSize(ctx, c)
}

// DeleteBlock removes c's index entry (its bytes become dead space in
// its pack, reclaimed by Compact) and c from the datastore.
func (p *packStore) DeleteBlock(ctx context.Context, c cid.Cid) error {
	p.imu.Lock()
	pl, ok, err := p.place(ctx, c)
	if err == nil && ok {
		if err = p.ds.Delete(ctx, indexKey(c.Hash())); err == nil {
			p.account(pl, -1)
		}
	}
	p.imu.Unlock()
	if err != nil {
		return fmt.Errorf("blocks: removing block %s: %w", c, err)
	}
	return p.small.DeleteBlock(ctx, c)
}

// account adds (sign 1) or removes (sign -1) a block at pl from the live
// accounting.
func (p *packStore) account(pl packPlace, sign int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pk := p.packs[pl.pack]; pk != nil {
		pk.live += int64(sign * pl.length)
	}
	p.blocks += sign
	p.bytes = uint64(int64(p.bytes) + int64(sign*pl.length))
}

func (p *packStore) Put(ctx context.Context, b blockformat.Block) error {
	return p.PutMany(ctx, []blockformat.Block{b})
}

// PutMany appends the large blocks of bs that are not stored yet to the
// current pack, syncs it, indexes them, and writes the small ones to the
// datastore in one batch. When PutMany returns nil every block is stored.
func (p *packStore) PutMany(ctx context.Context, bs []blockformat.Block) error {
	var small, large []blockformat.Block
	seen := make(map[string]struct{})
	for _, b := range bs {
		if len(b.RawData()) < packBlockMin {
			small = append(small, b)
			continue
		}
		if _, dup := seen[string(b.Cid().Hash())]; dup {
			continue
		}
		seen[string(b.Cid().Hash())] = struct{}{}
		if _, ok, err := p.place(ctx, b.Cid()); err != nil {
			return err
		} else if ok {
			continue
		}
		large = append(large, b)
	}
	if len(large) > 0 {
		places, err := p.appendBlocks(large)
		if err != nil {
			return err
		}
		err = p.index(ctx, large, places, nil)
		p.settle(places)
		if err != nil {
			return err
		}
	}
	if len(small) > 0 {
		return p.small.PutMany(ctx, small)
	}
	return nil
}

// appendBlocks appends bs to the current pack (starting a new one when it
// reaches packTarget), syncs what it wrote and returns where each block
// now is. Nothing is indexed yet.
func (p *packStore) appendBlocks(bs []blockformat.Block) (_ []packPlace, err error) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	places := make([]packPlace, 0, len(bs))
	defer func() {
		if err != nil {
			p.settle(places) // none of them will be indexed
		}
	}()
	var touched []*pack
	var hdr []byte
	for _, b := range bs {
		if p.current == nil || p.current.size >= p.target {
			if err := p.startPack(); err != nil {
				return nil, err
			}
		}
		pk := p.current
		if len(touched) == 0 || touched[len(touched)-1] != pk {
			touched = append(touched, pk)
		}
		data := b.RawData()
		hdr = recordHeader(hdr, b.Cid().Hash(), len(data))
		if err := p.write(pk, hdr); err != nil {
			return nil, err
		}
		places = append(places, packPlace{pack: pk.id, offset: pk.size, length: len(data)})
		p.mu.Lock()
		pk.pending++
		p.mu.Unlock()
		if err := p.write(pk, data); err != nil {
			return nil, err
		}
	}
	for _, pk := range touched {
		if err := pk.f.Sync(); err != nil {
			if pk == p.current {
				p.current = nil // its state on disk is unknown: write the next blocks elsewhere
			}
			return nil, fmt.Errorf("blocks: syncing pack %s (is the disk full?): %w", pk.f.Name(), err)
		}
	}
	return places, nil
}

// settle marks the blocks at places as no longer pending: indexed, or
// given up.
func (p *packStore) settle(places []packPlace) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pl := range places {
		if pk := p.packs[pl.pack]; pk != nil {
			pk.pending--
		}
	}
}

// write appends b to pk. On error the pack is sealed: what follows goes
// to a new one.
func (p *packStore) write(pk *pack, b []byte) error {
	n, err := pk.f.WriteAt(b, pk.size)
	p.mu.Lock()
	pk.size += int64(n)
	p.mu.Unlock()
	if err != nil {
		p.current = nil
		return fmt.Errorf("blocks: writing to pack %s (is the disk full?): %w", pk.f.Name(), err)
	}
	return nil
}

// startPack creates the next pack and makes it current.
func (p *packStore) startPack() error {
	id := p.nextID
	path := filepath.Join(p.dir, packName(id))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("blocks: creating pack %s (is the disk full?): %w", path, err)
	}
	p.nextID++
	pk := &pack{id: id, f: f}
	p.mu.Lock()
	p.packs[id] = pk
	p.mu.Unlock()
	p.current = pk
	return nil
}

// index records that bs are at places. With from nil, a block already
// indexed keeps its entry (its new copy is dead space); with from set
// (compaction), a block's entry moves only while it still names from[i].
func (p *packStore) index(ctx context.Context, bs []blockformat.Block, places, from []packPlace) error {
	p.imu.Lock()
	defer p.imu.Unlock()
	batch, err := p.ds.Batch(ctx)
	if err != nil {
		return fmt.Errorf("blocks: indexing blocks: %w", err)
	}
	type change struct{ added, removed *packPlace }
	var changes []change
	for i, b := range bs {
		old, ok, err := p.place(ctx, b.Cid())
		if err != nil {
			return err
		}
		switch {
		case from == nil && ok:
			continue
		case from != nil && (!ok || old != from[i]):
			continue // deleted or moved meanwhile
		}
		if err := batch.Put(ctx, indexKey(b.Cid().Hash()), places[i].encode()); err != nil {
			return fmt.Errorf("blocks: indexing block %s: %w", b.Cid(), err)
		}
		c := change{added: &places[i]}
		if ok {
			c.removed = &old
		}
		changes = append(changes, c)
	}
	if err := batch.Commit(ctx); err != nil {
		return fmt.Errorf("blocks: indexing %d blocks (is the disk full?): %w", len(bs), err)
	}
	for _, c := range changes {
		p.account(*c.added, 1)
		if c.removed != nil {
			p.account(*c.removed, -1)
		}
	}
	return nil
}

// AllKeysChan lists the blocks kept in packs, then those of the datastore.
func (p *packStore) AllKeysChan(ctx context.Context) (<-chan cid.Cid, error) {
	res, err := p.ds.Query(ctx, query.Query{Prefix: packIndexPrefix, KeysOnly: true})
	if err != nil {
		return nil, fmt.Errorf("blocks: listing the pack index: %w", err)
	}
	smallKeys, err := p.small.AllKeysChan(ctx)
	if err != nil {
		res.Close()
		return nil, err
	}
	out := make(chan cid.Cid, 64)
	go func() {
		defer close(out)
		defer res.Close()
		send := func(c cid.Cid) bool {
			select {
			case out <- c:
				return true
			case <-ctx.Done():
				return false
			}
		}
		ok := true
		for e := range res.Next() {
			if e.Error != nil || !ok {
				break
			}
			mh, err := dshelp.DsKeyToMultihash(datastore.NewKey(datastore.RawKey(e.Key).BaseNamespace()))
			if err != nil {
				continue
			}
			ok = send(cid.NewCidV1(cid.Raw, mh))
		}
		for c := range smallKeys {
			if ok {
				ok = send(c)
			}
		}
	}()
	return out, nil
}

// stat returns the number and bytes of the blocks kept in packs, and the
// bytes of the pack files on disk.
func (p *packStore) stat() (n int, bytes, disk uint64) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, pk := range p.packs {
		disk += uint64(pk.size)
	}
	return p.blocks, p.bytes, disk
}

// Compact removes the packs nothing lives in and moves the live blocks of
// packs that are more than half dead into the current pack, then removes
// those packs. It returns the bytes of pack files removed. Blocks stay
// readable throughout.
func (p *packStore) Compact(ctx context.Context) (freed uint64, err error) {
	// The current pack is a candidate too: if it is mostly dead it is
	// sealed, and what lives in it moves to a new one.
	p.wmu.Lock()
	p.mu.RLock()
	victims := make(map[uint32]bool)
	for id, pk := range p.packs {
		if pk.live*2 < pk.size {
			victims[id] = true
			if pk == p.current {
				p.current = nil
			}
		}
	}
	p.mu.RUnlock()
	p.wmu.Unlock()
	if len(victims) == 0 {
		return 0, nil
	}
	type entry struct {
		mh multihash.Multihash
		pl packPlace
	}
	var moving []entry
	err = p.eachPlace(ctx, func(k datastore.Key, pl packPlace) error {
		if !victims[pl.pack] {
			return nil
		}
		mh, err := dshelp.DsKeyToMultihash(datastore.NewKey(k.BaseNamespace()))
		if err != nil {
			return nil
		}
		moving = append(moving, entry{mh, pl})
		return nil
	})
	if err != nil {
		return 0, err
	}
	slices.SortFunc(moving, func(a, b entry) int { // read each pack in order
		return cmp.Or(cmp.Compare(a.pl.pack, b.pl.pack), cmp.Compare(a.pl.offset, b.pl.offset))
	})
	// Move in batches of about 32 MiB: read, append and sync, re-index.
	for len(moving) > 0 {
		if err := ctx.Err(); err != nil {
			return freed, err
		}
		var bs []blockformat.Block
		var from []packPlace
		size := 0
		for len(moving) > 0 && size < 32<<20 {
			e := moving[0]
			moving = moving[1:]
			data := make([]byte, e.pl.length)
			if ok, err := p.readPlace(e.pl, data); err != nil || !ok {
				return freed, fmt.Errorf("blocks: compacting pack %d: %w", e.pl.pack, err)
			}
			blk, err := blockformat.NewBlockWithCid(data, cid.NewCidV1(cid.Raw, e.mh))
			if err != nil {
				return freed, err
			}
			bs = append(bs, blk)
			from = append(from, e.pl)
			size += len(data)
		}
		places, err := p.appendBlocks(bs)
		if err != nil {
			return freed, err
		}
		err = p.index(ctx, bs, places, from)
		p.settle(places)
		if err != nil {
			return freed, err
		}
	}
	// The index no longer names the victims; make that durable before
	// their files go.
	if err := p.ds.Sync(ctx, datastore.NewKey(packIndexPrefix)); err != nil {
		return freed, fmt.Errorf("blocks: syncing the pack index: %w", err)
	}
	p.mu.RLock()
	var gone []uint32
	for id := range victims {
		if pk := p.packs[id]; pk != nil && pk.live == 0 && pk.pending == 0 {
			gone = append(gone, id)
			freed += uint64(pk.size)
		}
	}
	p.mu.RUnlock()
	for _, id := range gone {
		p.removePack(id)
	}
	return freed, nil
}

// migrateFiles moves blocks stored one file each (in two-character shard
// directories, by earlier versions) into a pack and removes the files,
// and removes temporary files of interrupted writes. Files that are not
// blocks are left alone.
func (p *packStore) migrateFiles(ctx context.Context) error {
	shards, err := os.ReadDir(p.dir)
	if err != nil {
		return fmt.Errorf("blocks: reading block directory %s: %w", p.dir, err)
	}
	var moved []string
	var batch []blockformat.Block
	var batchFiles []string
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := p.PutMany(ctx, batch); err != nil {
			return fmt.Errorf("blocks: moving block files into a pack: %w", err)
		}
		moved = append(moved, batchFiles...)
		batch, batchFiles, size = nil, nil, 0
		return nil
	}
	for _, sh := range shards {
		if !sh.IsDir() {
			continue
		}
		shardDir := filepath.Join(p.dir, sh.Name())
		ents, err := os.ReadDir(shardDir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			name := e.Name()
			path := filepath.Join(shardDir, name)
			if strings.HasPrefix(name, ".tmp-") {
				os.Remove(path)
				continue
			}
			if !e.Type().IsRegular() {
				continue
			}
			mh, err := dshelp.DsKeyToMultihash(datastore.NewKey(name))
			if err != nil {
				continue
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("blocks: reading block file %s: %w", path, err)
			}
			c := cid.NewCidV1(cid.Raw, mh)
			if err := verifyBlock(c, data); err != nil {
				p.log.Warn("block file does not hash to its name; left in place", "file", path, "err", err)
				continue
			}
			blk, err := blockformat.NewBlockWithCid(data, c)
			if err != nil {
				return err
			}
			batch = append(batch, blk)
			batchFiles = append(batchFiles, path)
			if size += len(data); size >= 32<<20 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if len(moved) == 0 {
		return nil
	}
	if err := p.ds.Sync(ctx, datastore.NewKey(packIndexPrefix)); err != nil {
		return fmt.Errorf("blocks: syncing the pack index: %w", err)
	}
	for _, path := range moved {
		os.Remove(path)
	}
	for _, sh := range shards {
		if sh.IsDir() {
			os.Remove(filepath.Join(p.dir, sh.Name())) // only if now empty
		}
	}
	p.log.Info("moved block files into a pack", "blocks", len(moved))
	return nil
}

var _ blockstore.Blockstore = (*packStore)(nil)
