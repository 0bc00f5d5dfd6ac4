package ledger

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/ipfs/go-cid"
	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/multiformats/go-multihash"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/shoalnet/shoal/crypto"
)

// ExportMagic is the first line of an exported log.
const ExportMagic = "shoal ledger export v1\n"

// A VerifyError reports the first thing wrong in a log: the sequence
// number of the first bad entry (Seq is -1 when the fault is not in an
// entry, such as a bad checkpoint or header) and why.
type VerifyError struct {
	Seq    int64
	Reason string
	Err    error // the underlying error, if any
}

func (e *VerifyError) Error() string {
	if e.Seq < 0 {
		return "ledger: verify: " + e.Reason
	}
	return fmt.Sprintf("ledger: verify: entry %d: %s", e.Seq, e.Reason)
}

func (e *VerifyError) Unwrap() error { return e.Err }

// A Report is the outcome of a verification that passed.
type Report struct {
	Origin         Origin    `json:"origin"`
	Entries        uint64    `json:"entries"`
	CheckpointSize uint64    `json:"checkpoint_size"`
	Root           tlog.Hash `json:"root"`
}

// A Verifier checks a log's entries in order, without trusting their
// source: strict decoding, origin, sequence numbers, prev links and
// signatures (checked in parallel across cores), and builds the Merkle tree
// to check it against a checkpoint. It is not safe for concurrent use.
type Verifier struct {
	origin  Origin
	key     []byte // marshaled author key every entry must carry
	known   *knownAuthor
	pub     crypto.PubKey
	n       uint64
	prev    cid.Cid
	hashes  []tlog.Hash
	workers int
	err     *VerifyError
}

// NewVerifier returns a Verifier for the log of origin.
func NewVerifier(origin Origin) (*Verifier, error) {
	_, author, err := origin.Parse()
	if err != nil {
		return nil, err
	}
	pub, err := crypto.PubKeyFromID(author)
	if err != nil {
		return nil, err
	}
	key, err := p2pcrypto.MarshalPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("ledger: marshal key of %s: %w", author, err)
	}
	return &Verifier{origin: origin, key: key, pub: pub, known: &knownAuthor{origin: origin, key: key}, workers: runtime.GOMAXPROCS(0)}, nil
}

// A verifierMark is a point a Verifier can be rolled back to.
type verifierMark struct {
	n       uint64
	prev    cid.Cid
	nHashes int
}

func (v *Verifier) mark() verifierMark {
	return verifierMark{n: v.n, prev: v.prev, nHashes: len(v.hashes)}
}

// rollback forgets every entry added since m and any error since.
func (v *Verifier) rollback(m verifierMark) {
	v.n, v.prev, v.hashes, v.err = m.n, m.prev, v.hashes[:m.nHashes], nil
}

// Size returns the number of entries verified so far.
func (v *Verifier) Size() uint64 { return v.n }

// checked is the per-entry outcome of the parallel stage.
type checked struct {
	e    *Entry
	cid  cid.Cid
	hash tlog.Hash
	err  error
}

// Add verifies the next entries (the canonical bytes of entries Size(),
// Size()+1, ...). It returns a *VerifyError naming the first bad entry;
// after an error the Verifier is spent and returns that error again.
func (v *Verifier) Add(ctx context.Context, raw [][]byte) error {
	return v.add(ctx, raw, true)
}

// add is Add; without checkSig it skips signatures, for entries verified
// before they were stored (and protected by checksums since).
func (v *Verifier) add(ctx context.Context, raw [][]byte, checkSig bool) error {
	if v.err != nil {
		return v.err
	}
	res := make([]checked, len(raw))
	chunk := (len(raw) + v.workers - 1) / v.workers
	if chunk < 64 {
		chunk = 64
	}
	var wg sync.WaitGroup
	for lo := 0; lo < len(raw); lo += chunk {
		hi := min(lo+chunk, len(raw))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				res[i] = v.checkOne(raw[i], checkSig)
			}
		}()
	}
	wg.Wait()
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = v.hashes[x]
		}
		return out, nil
	})
	for i := range res {
		if i%4096 == 0 && ctx.Err() != nil {
			return fmt.Errorf("ledger: verify %s: %w", v.origin, ctx.Err())
		}
		seq := v.n
		r := &res[i]
		fail := func(reason string, err error) error {
			v.err = &VerifyError{Seq: int64(seq), Reason: reason, Err: err}
			return v.err
		}
		if r.err != nil {
			return fail(r.err.Error(), r.err)
		}
		e := r.e
		if e.Origin != v.origin {
			return fail(fmt.Sprintf("origin is %s, want %s", e.Origin, v.origin), nil)
		}
		if e.Seq != seq {
			return fail(fmt.Sprintf("claims seq %d", e.Seq), nil)
		}
		if seq > 0 && !e.Prev.Equals(v.prev) {
			return fail(fmt.Sprintf("prev link %s is not the CID of entry %d (%s)", e.Prev, seq-1, v.prev), nil)
		}
		hs, err := tlog.StoredHashesForRecordHash(int64(seq), r.hash, reader)
		if err != nil {
			return fail("tree hashes: "+err.Error(), err)
		}
		v.hashes = append(v.hashes, hs...)
		v.prev = r.cid
		v.n++
	}
	return nil
}

// checkOne is the parallel part: decode, key, signature, hashes.
func (v *Verifier) checkOne(data []byte, checkSig bool) checked {
	e, err := decodeEntryKnown(data, v.known)
	if err != nil {
		return checked{err: err}
	}
	if string(e.Key) != string(v.key) {
		return checked{err: fmt.Errorf("%w: key is not the key of %s", ErrMalformedEntry, v.origin)}
	}
	if checkSig {
		if err := e.checkSig(v.pub); err != nil {
			return checked{err: err}
		}
	}
	sum := sha256.Sum256(data)
	mh, _ := multihash.Encode(sum[:], multihash.SHA2_256)
	return checked{e: e, cid: cid.NewCidV1(uint64(EntryCodec), mh), hash: tlog.RecordHash(data)}
}

// Finish checks the verified entries against checkpoint cp (which must be
// of the same origin and already signature-checked by ParseCheckpoint): the
// log must hold at least cp.Size entries and the tree of that size must
// have cp's root. A nil cp checks nothing more.
func (v *Verifier) Finish(cp *Checkpoint) (*Report, error) {
	if v.err != nil {
		return nil, v.err
	}
	rep := &Report{Origin: v.origin, Entries: v.n}
	if cp == nil {
		return rep, nil
	}
	if cp.Origin != v.origin {
		return nil, &VerifyError{Seq: -1, Reason: fmt.Sprintf("checkpoint is of %s, want %s", cp.Origin, v.origin)}
	}
	if cp.Size > v.n {
		return nil, &VerifyError{Seq: int64(v.n), Reason: fmt.Sprintf("missing: checkpoint covers %d entries, the log has %d", cp.Size, v.n)}
	}
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = v.hashes[x]
		}
		return out, nil
	})
	h, err := tlog.TreeHash(int64(cp.Size), reader)
	if err != nil {
		return nil, &VerifyError{Seq: -1, Reason: "tree hash: " + err.Error(), Err: err}
	}
	if h != cp.Hash {
		return nil, &VerifyError{Seq: -1, Reason: fmt.Sprintf("tree of %d entries has root %s, checkpoint says %s", cp.Size, h, cp.Hash)}
	}
	rep.CheckpointSize = cp.Size
	rep.Root = cp.Hash
	return rep, nil
}

// TreeHash returns the root of the tree of the first size verified entries.
func (v *Verifier) TreeHash(size uint64) (tlog.Hash, error) {
	if size > v.n {
		return tlog.Hash{}, fmt.Errorf("%w: tree size %d, verified %d", ErrNotFound, size, v.n)
	}
	return tlog.TreeHash(int64(size), v.hashReader())
}

// ProveTree returns the consistency proof old→size over the verified entries.
func (v *Verifier) ProveTree(old, size uint64) (tlog.TreeProof, error) {
	if old == 0 || old > size || size > v.n {
		return nil, fmt.Errorf("%w: consistency proof %d→%d, verified %d", ErrNotFound, old, size, v.n)
	}
	return tlog.ProveTree(int64(size), int64(old), v.hashReader())
}

func (v *Verifier) hashReader() tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x < 0 || x >= int64(len(v.hashes)) {
				return nil, fmt.Errorf("ledger: stored hash %d out of range", x)
			}
			out[i] = v.hashes[x]
		}
		return out, nil
	})
}

// Export reads at most exportRun entries, of at most exportRunBytes in all
// (or a single larger one), at a time.
const (
	exportRun      = 4096
	exportRunBytes = 4 << 20
)

// Export writes the log's durable entries as an export file: ExportMagic,
// then uvarint(len) || checkpoint note, then uvarint(len) || entry for each
// entry the checkpoint covers.
func (l *Log) Export(ctx context.Context, w io.Writer) (*Checkpoint, error) {
	cp, err := l.Checkpoint()
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	bw.WriteString(ExportMagic)
	writeChunk(bw, cp.Note)
	// Runs of entries are read with one read each, as for a replicating
	// peer.
	for seq := uint64(0); seq < cp.Size; {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("ledger: export %s: %w", l.origin, err)
		}
		raws, err := l.RawEntries(seq, int(min(cp.Size-seq, exportRun)), exportRunBytes)
		if err != nil {
			return nil, err
		}
		if len(raws) == 0 {
			return nil, fmt.Errorf("ledger: export %s: entry %d is missing although checkpoint %d covers it", l.origin, seq, cp.Size)
		}
		for _, data := range raws {
			writeChunk(bw, data)
		}
		seq += uint64(len(raws))
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("ledger: export %s: %w", l.origin, err)
	}
	return cp, nil
}

func writeChunk(w *bufio.Writer, b []byte) {
	var n [binary.MaxVarintLen64]byte
	w.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))])
	w.Write(b)
}

// ExportWriter writes an export file from a checkpoint and entries
// obtained elsewhere (for example from a peer).
type ExportWriter struct {
	w *bufio.Writer
}

// NewExportWriter writes the export header and checkpoint cp to w.
func NewExportWriter(w io.Writer, cp *Checkpoint) *ExportWriter {
	bw := bufio.NewWriterSize(w, 1<<20)
	bw.WriteString(ExportMagic)
	writeChunk(bw, cp.Note)
	return &ExportWriter{w: bw}
}

// Write appends one entry's canonical bytes.
func (x *ExportWriter) Write(entry []byte) { writeChunk(x.w, entry) }

// Flush flushes buffered bytes to the underlying writer.
func (x *ExportWriter) Flush() error { return x.w.Flush() }

// errTruncated marks an export that ends inside a length prefix or chunk.
var errTruncated = errors.New("truncated")

// readChunk reads uvarint(len) || bytes with len ≤ max.
func readChunk(r *bufio.Reader, max int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("bad length prefix: %w", errTruncated)
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("length %d exceeds %d", n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("%d bytes announced: %w", n, errTruncated)
	}
	return b, nil
}

// VerifyExport verifies an export file read from r without trusting it:
// the checkpoint's signature, then every entry (see Verifier), then the tree
// against the checkpoint. If want is not empty the log must be want's.
// Failures are *VerifyError values naming the first bad sequence number.
func VerifyExport(ctx context.Context, r io.Reader, want Origin) (*Report, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic := make([]byte, len(ExportMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != ExportMagic {
		return nil, &VerifyError{Seq: -1, Reason: fmt.Sprintf("not a ledger export (first line is not %q)", ExportMagic[:len(ExportMagic)-1])}
	}
	note, err := readChunk(br, MaxCheckpointSize)
	if err != nil {
		return nil, &VerifyError{Seq: -1, Reason: "checkpoint: " + err.Error(), Err: err}
	}
	cp, err := ParseCheckpoint(note, want)
	if err != nil {
		return nil, &VerifyError{Seq: -1, Reason: "checkpoint: " + err.Error(), Err: err}
	}
	v, err := NewVerifier(cp.Origin)
	if err != nil {
		return nil, &VerifyError{Seq: -1, Reason: err.Error(), Err: err}
	}
	const batchSize = 8192
	batch := make([][]byte, 0, batchSize)
	for {
		data, err := readChunk(br, MaxEntrySize)
		if err == io.EOF {
			break
		}
		if err != nil {
			// Entries before this one may still be bad: report the first.
			if aerr := v.Add(ctx, batch); aerr != nil {
				return nil, aerr
			}
			seq := v.Size()
			return nil, &VerifyError{Seq: int64(seq), Reason: "framing: " + err.Error(), Err: err}
		}
		batch = append(batch, data)
		if len(batch) == batchSize {
			if err := v.Add(ctx, batch); err != nil {
				return nil, err
			}
			batch = batch[:0]
		}
	}
	if err := v.Add(ctx, batch); err != nil {
		return nil, err
	}
	return v.Finish(cp)
}
