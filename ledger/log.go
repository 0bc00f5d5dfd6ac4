package ledger

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sys/unix"

	"github.com/shoalnet/shoal/crypto"
)

// LogFileName is the name of the entry file inside a log directory.
const LogFileName = "entries.log"

// fileMagic is the first line of an entry file; the second line is the origin.
const fileMagic = "shoal ledger file v1\n"

// frameHeaderSize is the size of the header before each entry in the file:
// uint32 length || uint32 crc32c(length bytes) || uint32 crc32c(entry).
const frameHeaderSize = 12

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Sentinel errors of a Log.
var (
	// ErrLogFailed is returned (wrapped) by Append once a write or sync has
	// failed: the log refuses further appends until it is reopened, because
	// the state of unsynced bytes is unknown.
	ErrLogFailed = errors.New("ledger: log failed")
	// ErrClosed is returned (wrapped) by calls on a closed Log.
	ErrClosed = errors.New("ledger: log is closed")
	// ErrCorrupt is returned (wrapped) by Open when the entry file is
	// damaged before its last record; the error names the file and seq.
	ErrCorrupt = errors.New("ledger: entry file is corrupt")
	// ErrNotFound is returned (wrapped) when a seq or size is beyond the log.
	ErrNotFound = errors.New("ledger: no such entry")
)

// Options tune a Log. The zero value gives the defaults.
type Options struct {
	// Now returns the time stamped on new entries. Default: time.Now.
	Now func() time.Time
	// MaxBatch bounds how many appends share one write and sync. Default 1024.
	MaxBatch int
}

// A Log is one node's own append-only log, stored in a directory. It is
// safe for concurrent use. Readers only ever see entries that are durable.
type Log struct {
	path   string
	f      *os.File
	key    crypto.PrivKey
	pub    []byte // marshaled public key of key
	origin Origin
	now    func() time.Time
	max    int

	reqs   chan *appendReq
	synced chan *batch
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	done   chan struct{} // closed when Close has answered every queued append

	// Builder-owned (only the builder goroutine touches these after Open).
	tipSeq  uint64
	tipCID  cid.Cid
	tipTime time.Time
	tipOff  int64

	mu      sync.RWMutex
	n       uint64      // durable entries; guarded by mu
	offsets []int64     // frame offset of each durable entry; guarded by mu
	end     int64       // offset past the last durable frame; guarded by mu
	hashes  []tlog.Hash // stored tree hashes, durable and pending; guarded by mu (builder appends)
	nHashes int64       // stored hashes of the durable entries; guarded by mu
	lastCID cid.Cid     // CID of entry n-1; guarded by mu
	failed  error       // set on a write or sync failure; guarded by mu
	cp      *Checkpoint // newest signed checkpoint; guarded by mu
}

// An appendReq asks for its entries to be appended in order, together.
type appendReq struct {
	ctx   context.Context
	items []Pending
	reply chan appendResult
}

// what names the request's entries in errors.
func (r *appendReq) what() Kind {
	if len(r.items) == 1 {
		return r.items[0].Kind
	}
	return Kind(fmt.Sprintf("%s and %d more", r.items[0].Kind, len(r.items)-1))
}

type appendResult struct {
	es  []*Entry
	err error
}

type batch struct {
	reqs    []*appendReq
	entries []*Entry // every request's, in order
	offsets []int64
	nHashes int64
	end     int64 // offset past the batch's last frame
	err     error
}

// Open opens (creating it if needed) the log of network written by key in
// dir. A torn last record, left by a crash during a write, is cut off; any
// other damage is an error wrapping ErrCorrupt that names the file and the
// sequence number. The directory is locked against a second opener.
func Open(ctx context.Context, dir string, key crypto.PrivKey, network string, opts Options) (*Log, error) {
	id, err := crypto.PeerID(key)
	if err != nil {
		return nil, err
	}
	origin := OriginOf(network, id)
	if _, _, err := origin.Parse(); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1024
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ledger: create log dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, LogFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ledger: open %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("ledger: %s is in use by another process (stop it first): %w", path, err)
	}
	pub, err := p2pcrypto.MarshalPublicKey(key.GetPublic())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ledger: marshal author key: %w", err)
	}
	l := &Log{path: path, f: f, key: key, pub: pub, origin: origin, now: opts.Now, max: opts.MaxBatch}
	if err := l.load(ctx); err != nil {
		f.Close()
		return nil, err
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.reqs = make(chan *appendReq, opts.MaxBatch)
	l.synced = make(chan *batch, 64)
	l.done = make(chan struct{})
	l.wg.Add(2)
	go l.builder()
	go l.syncer()
	return l, nil
}

// Origin returns the log's origin.
func (l *Log) Origin() Origin { return l.origin }

// Path returns the entry file's path.
func (l *Log) Path() string { return l.path }

// header returns the file header for the log.
func (l *Log) header() []byte { return []byte(fileMagic + string(l.origin) + "\n") }

// load reads the file, checks every record, cuts a torn tail, and builds the
// in-memory index and tree hashes.
func (l *Log) load(ctx context.Context) error {
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = l.hashes[x]
		}
		return out, nil
	})
	known := &knownAuthor{origin: l.origin, key: l.pub}
	var prevCID cid.Cid
	var prevTime time.Time
	end, err := openEntryFile(ctx, l.f, l.path, l.header(), func(seq uint64, off int64, data []byte) error {
		e, err := decodeEntryKnown(data, known)
		if err != nil {
			return fmt.Errorf("%w: %s: entry %d (offset %d): %v", ErrCorrupt, l.path, seq, off, err)
		}
		if e.Seq != seq || e.Origin != l.origin {
			return fmt.Errorf("%w: %s: entry %d (offset %d) claims seq %d of %s", ErrCorrupt, l.path, seq, off, e.Seq, e.Origin)
		}
		if seq > 0 && !e.Prev.Equals(prevCID) {
			return fmt.Errorf("%w: %s: entry %d (offset %d): prev link does not match entry %d", ErrCorrupt, l.path, seq, off, seq-1)
		}
		hs, err := tlog.StoredHashes(int64(seq), data, reader)
		if err != nil {
			return fmt.Errorf("ledger: tree hashes of entry %d of %s: %w", seq, l.path, err)
		}
		l.hashes = append(l.hashes, hs...)
		l.offsets = append(l.offsets, off)
		prevCID = e.CID()
		prevTime = e.Time
		return nil
	})
	if err != nil {
		return err
	}
	l.n = uint64(len(l.offsets))
	l.end = end
	l.nHashes = int64(len(l.hashes))
	l.lastCID = prevCID
	l.tipSeq, l.tipCID, l.tipTime, l.tipOff = l.n, prevCID, prevTime, end
	return nil
}

// openEntryFile checks (or, for a new or empty file, writes) the header hdr
// of the entry file f at path, then calls fn for every intact frame in
// order with its seq, offset and entry bytes. A torn tail is cut off; any
// other damage is an error wrapping ErrCorrupt naming path and seq. It
// returns the offset just past the last frame.
func openEntryFile(ctx context.Context, f *os.File, path string, hdr []byte, fn func(seq uint64, off int64, data []byte) error) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("ledger: stat %s: %w", path, err)
	}
	fileSize := st.Size()
	if fileSize < int64(len(hdr)) {
		// New file, or a crash while creating it: nothing can have been acknowledged.
		if err := f.Truncate(0); err != nil {
			return 0, fmt.Errorf("ledger: reset %s: %w", path, err)
		}
		if _, err := f.WriteAt(hdr, 0); err != nil {
			return 0, fmt.Errorf("ledger: write header of %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			return 0, fmt.Errorf("ledger: sync %s: %w", path, err)
		}
		if err := syncDir(filepath.Dir(path)); err != nil {
			return 0, err
		}
		return int64(len(hdr)), nil
	}
	got := make([]byte, len(hdr))
	if _, err := f.ReadAt(got, 0); err != nil {
		return 0, fmt.Errorf("ledger: read header of %s: %w", path, err)
	}
	if string(got) != string(hdr) {
		return 0, fmt.Errorf("%w: %s does not start with %q (wrong key or network?)", ErrCorrupt, path, hdr)
	}
	off := int64(len(hdr))
	br := bufio.NewReaderSize(io.NewSectionReader(f, off, fileSize-off), 1<<20)
	var fh [frameHeaderSize]byte
	cut := func(at int64) (int64, error) {
		if err := f.Truncate(at); err != nil {
			return 0, fmt.Errorf("ledger: cut torn tail of %s at offset %d: %w", path, at, err)
		}
		if err := f.Sync(); err != nil {
			return 0, fmt.Errorf("ledger: sync %s after cutting torn tail: %w", path, err)
		}
		return at, nil
	}
	for seq := uint64(0); ; seq++ {
		if seq%4096 == 0 && ctx.Err() != nil {
			return 0, fmt.Errorf("ledger: open %s: %w", path, ctx.Err())
		}
		if _, err := io.ReadFull(br, fh[:]); err != nil {
			if err == io.EOF {
				return off, nil
			}
			if err == io.ErrUnexpectedEOF {
				return cut(off)
			}
			return 0, fmt.Errorf("ledger: read %s at entry %d: %w", path, seq, err)
		}
		n := binary.BigEndian.Uint32(fh[0:4])
		if crc32.Checksum(fh[0:4], castagnoli) != binary.BigEndian.Uint32(fh[4:8]) {
			zero, err := allZero(f, off, fileSize)
			if err != nil {
				return 0, fmt.Errorf("ledger: read %s at entry %d: %w", path, seq, err)
			}
			if zero {
				return cut(off)
			}
			return 0, fmt.Errorf("%w: %s: entry %d (offset %d): frame header checksum mismatch", ErrCorrupt, path, seq, off)
		}
		if n == 0 || n > MaxEntrySize {
			return 0, fmt.Errorf("%w: %s: entry %d (offset %d): length %d out of range", ErrCorrupt, path, seq, off, n)
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(br, data); err != nil {
			if err == io.ErrUnexpectedEOF || err == io.EOF {
				return cut(off)
			}
			return 0, fmt.Errorf("ledger: read %s at entry %d: %w", path, seq, err)
		}
		end := off + frameHeaderSize + int64(n)
		if crc32.Checksum(data, castagnoli) != binary.BigEndian.Uint32(fh[8:12]) {
			if end == fileSize {
				return cut(off)
			}
			return 0, fmt.Errorf("%w: %s: entry %d (offset %d): checksum mismatch", ErrCorrupt, path, seq, off)
		}
		if err := fn(seq, off, data); err != nil {
			return 0, err
		}
		off = end
	}
}

// appendFrame appends the frame of entry data to buf.
func appendFrame(buf, data []byte) []byte {
	var fh [frameHeaderSize]byte
	binary.BigEndian.PutUint32(fh[0:4], uint32(len(data)))
	binary.BigEndian.PutUint32(fh[4:8], crc32.Checksum(fh[0:4], castagnoli))
	binary.BigEndian.PutUint32(fh[8:12], crc32.Checksum(data, castagnoli))
	buf = append(buf, fh[:]...)
	return append(buf, data...)
}

// allZero reports whether the bytes of f from off to end are all zero, as
// left by a crash that extended the file before its data reached the disk.
func allZero(f *os.File, off, end int64) (bool, error) {
	buf := make([]byte, 64<<10)
	for off < end {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), end-off)], off)
		for _, c := range buf[:n] {
			if c != 0 {
				return false, nil
			}
		}
		off += int64(n)
		if err != nil && err != io.EOF {
			return false, err
		}
		if n == 0 {
			break
		}
	}
	return true, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("ledger: open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("ledger: sync dir %s: %w", dir, err)
	}
	return nil
}

// Append signs and durably appends an entry of kind with body, and returns
// it once its bytes are synced to disk. Concurrent calls are batched into
// one write and one sync. If ctx ends first, Append returns ctx's error and
// the entry may or may not have been recorded. After a write or sync
// failure every call returns an error wrapping ErrLogFailed.
func (l *Log) Append(ctx context.Context, kind Kind, body []byte) (*Entry, error) {
	es, err := l.AppendAll(ctx, []Pending{{Kind: kind, Body: body}})
	if err != nil {
		return nil, err
	}
	return es[0], nil
}

// A Pending is an entry to append: its kind and body.
type Pending struct {
	Kind Kind
	Body []byte
}

// MaxAppendAll is the most entries one AppendAll takes.
const MaxAppendAll = 64

// AppendAll appends entries in their order, next to each other and in one
// write and one sync, and returns them once they are durable: all of them
// or, on an error, none (a sync failure leaves the log failed, as for
// Append). Several entries that end one operation thus cost one sync.
func (l *Log) AppendAll(ctx context.Context, entries []Pending) ([]*Entry, error) {
	if len(entries) == 0 || len(entries) > MaxAppendAll {
		return nil, fmt.Errorf("ledger: append %d entries at once: want 1 to %d", len(entries), MaxAppendAll)
	}
	for _, p := range entries {
		if !ValidKind(p.Kind) {
			return nil, fmt.Errorf("ledger: append: kind %q is not lower-case dotted words (e.g. job.executed)", p.Kind)
		}
		if len(p.Body) > MaxBodySize {
			return nil, fmt.Errorf("ledger: append %s: body is %d bytes, more than %d; record a CID instead", p.Kind, len(p.Body), MaxBodySize)
		}
	}
	if err := l.Err(); err != nil {
		return nil, err
	}
	req := &appendReq{ctx: ctx, items: entries, reply: make(chan appendResult, 1)}
	select {
	case l.reqs <- req:
	case <-ctx.Done():
		return nil, fmt.Errorf("ledger: append %s: %w", req.what(), ctx.Err())
	case <-l.ctx.Done():
		return nil, fmt.Errorf("ledger: append %s: %w", req.what(), ErrClosed)
	}
	select {
	case r := <-req.reply:
		return r.es, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("ledger: append %s: %w (the entries may still be recorded)", req.what(), ctx.Err())
	case <-l.done:
		select {
		case r := <-req.reply:
			return r.es, r.err
		default:
			return nil, fmt.Errorf("ledger: append %s: %w", req.what(), ErrClosed)
		}
	}
}

// Record appends an entry of kind with body and returns its sequence
// number once it is durable. It is the recorder the jobs subsystem is given.
func (l *Log) Record(ctx context.Context, kind string, body []byte) (uint64, error) {
	e, err := l.Append(ctx, Kind(kind), body)
	if err != nil {
		return 0, err
	}
	return e.Seq, nil
}

// RecordAll appends entries of kinds[i] with bodies[i] in one write and one
// sync (AppendAll) and returns their sequence numbers once durable.
func (l *Log) RecordAll(ctx context.Context, kinds []string, bodies [][]byte) ([]uint64, error) {
	if len(kinds) != len(bodies) {
		return nil, fmt.Errorf("ledger: record %d kinds with %d bodies", len(kinds), len(bodies))
	}
	ps := make([]Pending, len(kinds))
	for i := range kinds {
		ps[i] = Pending{Kind: Kind(kinds[i]), Body: bodies[i]}
	}
	es, err := l.AppendAll(ctx, ps)
	if err != nil {
		return nil, err
	}
	seqs := make([]uint64, len(es))
	for i, e := range es {
		seqs[i] = e.Seq
	}
	return seqs, nil
}

// Err returns the error that made the log refuse appends, or nil.
func (l *Log) Err() error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.failed
}

func (l *Log) fail(err error) {
	l.mu.Lock()
	if l.failed == nil {
		l.failed = fmt.Errorf("%w: %s: %v (reopen the log to recover)", ErrLogFailed, l.path, err)
	}
	l.mu.Unlock()
}

// builder collects appends, builds and signs their entries, writes each
// batch with one write, and hands it to the syncer.
func (l *Log) builder() {
	defer l.wg.Done()
	defer close(l.synced)
	var buf []byte
	for {
		var reqs []*appendReq
		select {
		case r := <-l.reqs:
			reqs = append(reqs, r)
		case <-l.ctx.Done():
			return
		}
	drain:
		for len(reqs) < l.max {
			select {
			case r := <-l.reqs:
				reqs = append(reqs, r)
			default:
				break drain
			}
		}
		b := &batch{}
		if err := l.Err(); err != nil {
			b.err = err
			b.reqs = reqs
			l.synced <- b
			continue
		}
		buf = buf[:0]
		off := l.tipOff
		var newHashes []tlog.Hash
		base := int64(len(l.hashes))
		reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for i, x := range idx {
				if x < base {
					out[i] = l.hashes[x]
				} else {
					out[i] = newHashes[x-base]
				}
			}
			return out, nil
		})
		for _, r := range reqs {
			if r.ctx.Err() != nil {
				r.reply <- appendResult{err: fmt.Errorf("ledger: append %s: %w", r.what(), r.ctx.Err())}
				continue
			}
			// A request's entries go in whole or not at all: on an error
			// the tip and the batch are put back as they were.
			tipSeq, tipCID, tipTime := l.tipSeq, l.tipCID, l.tipTime
			nBuf, nHashes, nEntries, offStart := len(buf), len(newHashes), len(b.entries), off
			var err error
			for _, it := range r.items {
				t := l.now().UTC()
				if t.Before(l.tipTime) {
					t = l.tipTime
				}
				var e *Entry
				if e, err = signEntry(l.key, l.pub, l.origin, l.tipSeq, l.tipCID, t, it.Kind, it.Body); err != nil {
					break
				}
				data := e.Encoded()
				hs, herr := tlog.StoredHashes(int64(e.Seq), data, reader)
				if herr != nil {
					err = fmt.Errorf("ledger: tree hashes of entry %d: %w", e.Seq, herr)
					break
				}
				newHashes = append(newHashes, hs...)
				buf = appendFrame(buf, data)
				b.entries = append(b.entries, e)
				b.offsets = append(b.offsets, off)
				off += frameHeaderSize + int64(len(data))
				l.tipSeq++
				l.tipCID = e.CID()
				l.tipTime = t
			}
			if err != nil {
				l.tipSeq, l.tipCID, l.tipTime = tipSeq, tipCID, tipTime
				buf, newHashes, b.entries, b.offsets, off = buf[:nBuf], newHashes[:nHashes], b.entries[:nEntries], b.offsets[:nEntries], offStart
				r.reply <- appendResult{err: err}
				continue
			}
			b.reqs = append(b.reqs, r)
		}
		if len(b.entries) == 0 {
			continue
		}
		if _, err := l.f.WriteAt(buf, l.tipOff); err != nil {
			l.fail(fmt.Errorf("write: %w", err))
			b.err = l.Err()
		}
		l.tipOff = off
		b.end = off
		l.mu.Lock()
		l.hashes = append(l.hashes, newHashes...)
		b.nHashes = int64(len(l.hashes))
		l.mu.Unlock()
		l.synced <- b
	}
}

// syncer syncs written batches (one sync for all that are waiting),
// publishes them to readers and answers their appenders.
func (l *Log) syncer() {
	defer l.wg.Done()
	for b := range l.synced {
		bs := []*batch{b}
	drain:
		for {
			select {
			case nb, ok := <-l.synced:
				if !ok {
					break drain
				}
				bs = append(bs, nb)
			default:
				break drain
			}
		}
		var syncErr error
		if l.Err() == nil {
			if err := unix.Fdatasync(int(l.f.Fd())); err != nil {
				l.fail(fmt.Errorf("sync: %w", err))
			}
		}
		syncErr = l.Err()
		for _, b := range bs {
			err := b.err
			if err == nil {
				err = syncErr
			}
			if err != nil {
				for _, r := range b.reqs {
					r.reply <- appendResult{err: err}
				}
				continue
			}
			l.mu.Lock()
			l.offsets = append(l.offsets, b.offsets...)
			l.end = b.end
			l.n += uint64(len(b.entries))
			l.nHashes = b.nHashes
			l.lastCID = b.entries[len(b.entries)-1].CID()
			l.mu.Unlock()
			i := 0
			for _, r := range b.reqs {
				r.reply <- appendResult{es: b.entries[i : i+len(r.items) : i+len(r.items)]}
				i += len(r.items)
			}
		}
	}
}

// Close stops the log: appends in flight finish or fail, then the file is
// closed. It is safe to call more than once.
func (l *Log) Close() error {
	var err error
	l.once.Do(func() {
		l.cancel()
		l.wg.Wait()
		// Answer appends that were queued but never picked up.
		for {
			select {
			case r := <-l.reqs:
				r.reply <- appendResult{err: fmt.Errorf("ledger: append %s: %w", r.what(), ErrClosed)}
				continue
			default:
			}
			break
		}
		close(l.done)
		if cerr := l.f.Close(); cerr != nil {
			err = fmt.Errorf("ledger: close %s: %w", l.path, cerr)
		}
	})
	return err
}

// Size returns the number of durable entries.
func (l *Log) Size() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.n
}

// readRaw returns the canonical bytes of durable entry seq, its frame's
// length and checksum checked.
func (l *Log) readRaw(seq uint64) ([]byte, error) {
	l.mu.RLock()
	if seq >= l.n {
		l.mu.RUnlock()
		return nil, l.notFound(seq)
	}
	end := l.end
	if seq+1 < l.n {
		end = l.offsets[seq+1]
	}
	offs := l.offsets[seq : seq+1 : seq+1]
	l.mu.RUnlock()
	datas, err := readFrames(l.f, l.path, seq, offs, end)
	if err != nil {
		return nil, err
	}
	return datas[0], nil
}

func (l *Log) notFound(seq uint64) error {
	return fmt.Errorf("%w: entry %d of %s (the log has %d)", ErrNotFound, seq, l.origin, l.Size())
}

// Entry returns durable entry seq, or an error wrapping ErrNotFound.
func (l *Log) Entry(seq uint64) (*Entry, error) {
	data, err := l.readRaw(seq)
	if err != nil {
		return nil, err
	}
	e, err := decodeEntryKnown(data, &knownAuthor{origin: l.origin, key: l.pub})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: entry %d: %v", ErrCorrupt, l.path, seq, err)
	}
	return e, nil
}

// RawEntries returns the canonical bytes of up to max durable entries
// starting at from, stopping early once maxBytes would be exceeded (at least
// one entry is returned when from < Size).
func (l *Log) RawEntries(from uint64, max int, maxBytes int) ([][]byte, error) {
	l.mu.RLock()
	size := l.n
	if from > size {
		l.mu.RUnlock()
		return nil, fmt.Errorf("%w: entry %d of %s (the log has %d)", ErrNotFound, from, l.origin, size)
	}
	to := min(size, from+uint64(max))
	offs := l.offsets[from:to:to]
	end := l.end
	if to < size {
		end = l.offsets[to]
	}
	l.mu.RUnlock()
	if len(offs) == 0 {
		return nil, nil
	}
	offs, end = framesWithin(offs, end, maxBytes)
	return readFrames(l.f, l.path, from, offs, end)
}

// framesWithin shortens offs, the offsets of consecutive frames the last
// of which ends at end, to the first frame and those after it whose data
// fit in maxBytes in all, and returns them with the new end.
func framesWithin(offs []int64, end int64, maxBytes int) ([]int64, int64) {
	total := int64(0)
	for i := range offs {
		next := end
		if i+1 < len(offs) {
			next = offs[i+1]
		}
		total += next - offs[i] - frameHeaderSize
		if i > 0 && total > int64(maxBytes) {
			return offs[:i], offs[i]
		}
	}
	return offs, end
}

// readFrames reads the frames at offs, consecutive in f with the last
// ending at end, in one read, checks each frame's length and checksum and
// returns their data; first is the seq of the first, for errors.
func readFrames(f *os.File, path string, first uint64, offs []int64, end int64) ([][]byte, error) {
	if len(offs) == 0 {
		return nil, nil
	}
	buf := make([]byte, end-offs[0])
	if _, err := f.ReadAt(buf, offs[0]); err != nil {
		return nil, fmt.Errorf("ledger: read entries %d to %d of %s: %w", first, first+uint64(len(offs))-1, path, err)
	}
	out := make([][]byte, len(offs))
	for i, off := range offs {
		seq := first + uint64(i)
		next := end
		if i+1 < len(offs) {
			next = offs[i+1]
		}
		fr := buf[off-offs[0] : next-offs[0]]
		if len(fr) < frameHeaderSize {
			return nil, fmt.Errorf("%w: %s: entry %d: frame of %d bytes", ErrCorrupt, path, seq, len(fr))
		}
		n := binary.BigEndian.Uint32(fr[0:4])
		if n == 0 || n > MaxEntrySize || int(n) != len(fr)-frameHeaderSize {
			return nil, fmt.Errorf("%w: %s: entry %d: length %d does not fit its frame of %d bytes", ErrCorrupt, path, seq, n, len(fr))
		}
		data := fr[frameHeaderSize:]
		if crc32.Checksum(data, castagnoli) != binary.BigEndian.Uint32(fr[8:12]) {
			return nil, fmt.Errorf("%w: %s: entry %d: checksum mismatch", ErrCorrupt, path, seq)
		}
		out[i] = data
	}
	return out, nil
}

// hashReader reads durable stored hashes.
func (l *Log) hashReader() tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		l.mu.RLock()
		defer l.mu.RUnlock()
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x < 0 || x >= l.nHashes {
				return nil, fmt.Errorf("ledger: stored hash %d beyond the durable tree (%d)", x, l.nHashes)
			}
			out[i] = l.hashes[x]
		}
		return out, nil
	})
}

// TreeHash returns the root hash of the tree of the first size entries.
func (l *Log) TreeHash(size uint64) (tlog.Hash, error) {
	if n := l.Size(); size > n {
		return tlog.Hash{}, fmt.Errorf("%w: tree size %d of %s (the log has %d)", ErrNotFound, size, l.origin, n)
	}
	h, err := tlog.TreeHash(int64(size), l.hashReader())
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("ledger: tree hash %d of %s: %w", size, l.origin, err)
	}
	return h, nil
}

// Checkpoint returns a signed checkpoint of the log's durable entries.
func (l *Log) Checkpoint() (*Checkpoint, error) {
	size := l.Size()
	l.mu.RLock()
	cp := l.cp
	l.mu.RUnlock()
	if cp != nil && cp.Size == size {
		return cp, nil
	}
	h, err := l.TreeHash(size)
	if err != nil {
		return nil, err
	}
	cp, err = SignCheckpoint(l.key, l.origin, size, h)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	if l.cp == nil || l.cp.Size < cp.Size {
		l.cp = cp
	}
	l.mu.Unlock()
	return cp, nil
}

// ProveEntry returns the inclusion proof of entry seq in the tree of size
// entries (seq < size ≤ Size()).
func (l *Log) ProveEntry(seq, size uint64) (tlog.RecordProof, error) {
	if n := l.Size(); seq >= size || size > n {
		return nil, fmt.Errorf("%w: inclusion proof of entry %d in tree %d of %s (the log has %d)", ErrNotFound, seq, size, l.origin, n)
	}
	p, err := tlog.ProveRecord(int64(size), int64(seq), l.hashReader())
	if err != nil {
		return nil, fmt.Errorf("ledger: prove entry %d in tree %d of %s: %w", seq, size, l.origin, err)
	}
	return p, nil
}

// ProveTree returns the consistency proof that the tree of size old is a
// prefix of the tree of size size (0 < old ≤ size ≤ Size()).
func (l *Log) ProveTree(old, size uint64) (tlog.TreeProof, error) {
	if n := l.Size(); old == 0 || old > size || size > n {
		return nil, fmt.Errorf("%w: consistency proof %d→%d of %s (the log has %d)", ErrNotFound, old, size, l.origin, n)
	}
	p, err := tlog.ProveTree(int64(size), int64(old), l.hashReader())
	if err != nil {
		return nil, fmt.Errorf("ledger: prove tree %d→%d of %s: %w", old, size, l.origin, err)
	}
	return p, nil
}
