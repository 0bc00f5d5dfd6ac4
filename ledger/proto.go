package ledger

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio"
	"golang.org/x/mod/sumdb/tlog"
)

// ProtocolID is the stream protocol that serves a node's own log.
const ProtocolID protocol.ID = "/shoal/ledger/1.0.0"

// Protocol bounds.
const (
	// MaxMessageSize bounds every message on the stream (its varint length prefix included).
	MaxMessageSize = 2 << 20
	// MaxEntriesPerResponse bounds the entries in one response.
	MaxEntriesPerResponse = 4096
	// maxEntriesBytes is the entry payload a server puts in one response.
	maxEntriesBytes = 1 << 20
	// maxErrorText bounds the message of an error response.
	maxErrorText = 1024
	// streamTimeout bounds one request and its response.
	streamTimeout = 30 * time.Second
)

// A RequestType names a request. Values are part of the wire format: append only.
type RequestType byte

// Request types.
const (
	ReqCheckpoint  RequestType = 1 // no arguments → the newest checkpoint note
	ReqEntries     RequestType = 2 // from, max → entries from..from+k-1 (1 ≤ k ≤ max)
	ReqInclusion   RequestType = 3 // seq, size → entry seq and its proof in tree size
	ReqConsistency RequestType = 4 // old, size → proof that tree old is a prefix of tree size
)

// A Status is the first byte of a response. Values are part of the wire
// format: do not reorder this list or remove any items.
type Status byte

// Statuses.
const (
	StatusOK         Status = 0
	StatusBadRequest Status = 1 // the request is malformed
	StatusNotFound   Status = 2 // the seq or size is beyond the log
	StatusInternal   Status = 3 // the server failed; try later
)

// A Request is one request of the ledger protocol.
type Request struct {
	Type RequestType
	A, B uint64 // arguments; see RequestType
}

// encodeRequest returns type || uvarint(A) || uvarint(B) (arguments only
// for types that take them).
func (r Request) encode() []byte {
	b := []byte{byte(r.Type)}
	if r.Type != ReqCheckpoint {
		b = binary.AppendUvarint(b, r.A)
		b = binary.AppendUvarint(b, r.B)
	}
	return b
}

// ErrMalformedMessage is returned (wrapped) for protocol messages that do
// not decode.
var ErrMalformedMessage = errors.New("ledger: malformed protocol message")

// DecodeRequest decodes an untrusted request message strictly.
func DecodeRequest(b []byte) (Request, error) {
	if len(b) == 0 || len(b) > 32 {
		return Request{}, fmt.Errorf("%w: request of %d bytes", ErrMalformedMessage, len(b))
	}
	r := Request{Type: RequestType(b[0])}
	rest := b[1:]
	switch r.Type {
	case ReqCheckpoint:
	case ReqEntries, ReqInclusion, ReqConsistency:
		var k int
		r.A, k = binary.Uvarint(rest)
		if k <= 0 {
			return Request{}, fmt.Errorf("%w: bad first argument", ErrMalformedMessage)
		}
		rest = rest[k:]
		r.B, k = binary.Uvarint(rest)
		if k <= 0 {
			return Request{}, fmt.Errorf("%w: bad second argument", ErrMalformedMessage)
		}
		rest = rest[k:]
	default:
		return Request{}, fmt.Errorf("%w: unknown request type %d", ErrMalformedMessage, b[0])
	}
	if len(rest) != 0 {
		return Request{}, fmt.Errorf("%w: %d trailing bytes", ErrMalformedMessage, len(rest))
	}
	if string(r.encode()) != string(b) {
		return Request{}, fmt.Errorf("%w: request is not canonical", ErrMalformedMessage)
	}
	return r, nil
}

// A Response is the decoded answer to a Request.
type Response struct {
	Status  Status
	Error   string   // for a status other than OK
	Note    []byte   // ReqCheckpoint
	Entries [][]byte // ReqEntries; ReqInclusion: exactly one
	Proof   []tlog.Hash
}

func (r *Response) encode(t RequestType) []byte {
	b := []byte{byte(r.Status)}
	if r.Status != StatusOK {
		return appendBytes(b, []byte(r.Error))
	}
	switch t {
	case ReqCheckpoint:
		b = appendBytes(b, r.Note)
	case ReqEntries:
		size := len(b) + binary.MaxVarintLen64
		for _, e := range r.Entries {
			size += binary.MaxVarintLen64 + len(e)
		}
		b = slices.Grow(b, size-len(b))
		b = binary.AppendUvarint(b, uint64(len(r.Entries)))
		for _, e := range r.Entries {
			b = appendBytes(b, e)
		}
	case ReqInclusion, ReqConsistency:
		if t == ReqInclusion {
			b = appendBytes(b, r.Entries[0])
		}
		b = binary.AppendUvarint(b, uint64(len(r.Proof)))
		for _, h := range r.Proof {
			b = append(b, h[:]...)
		}
	}
	return b
}

// DecodeResponse decodes an untrusted response to a request of type t
// strictly (sizes first, no trailing bytes, canonical). It checks the
// framing only: the caller checks entries, notes and proofs.
func DecodeResponse(t RequestType, b []byte) (*Response, error) {
	if len(b) == 0 || len(b) > MaxMessageSize {
		return nil, fmt.Errorf("%w: response of %d bytes", ErrMalformedMessage, len(b))
	}
	rd := &reader{b: b[1:]}
	r := &Response{Status: Status(b[0])}
	if r.Status != StatusOK {
		if r.Status > StatusInternal {
			return nil, fmt.Errorf("%w: unknown status %d", ErrMalformedMessage, b[0])
		}
		r.Error = string(rd.bytes("error", maxErrorText))
	} else {
		switch t {
		case ReqCheckpoint:
			r.Note = rd.bytes("checkpoint", MaxCheckpointSize)
		case ReqEntries:
			n, k := binary.Uvarint(rd.b)
			if k <= 0 || n > MaxEntriesPerResponse {
				return nil, fmt.Errorf("%w: bad entry count", ErrMalformedMessage)
			}
			rd.b = rd.b[k:]
			for i := uint64(0); i < n && rd.err == nil; i++ {
				r.Entries = append(r.Entries, rd.bytes("entry", MaxEntrySize))
			}
		case ReqInclusion, ReqConsistency:
			if t == ReqInclusion {
				r.Entries = [][]byte{rd.bytes("entry", MaxEntrySize)}
			}
			if rd.err == nil {
				n, k := binary.Uvarint(rd.b)
				if k <= 0 || n > maxProofHashes {
					return nil, fmt.Errorf("%w: bad proof length", ErrMalformedMessage)
				}
				rd.b = rd.b[k:]
				if uint64(len(rd.b)) < n*tlog.HashSize {
					return nil, fmt.Errorf("%w: proof truncated", ErrMalformedMessage)
				}
				r.Proof = make([]tlog.Hash, n)
				for i := range r.Proof {
					copy(r.Proof[i][:], rd.b)
					rd.b = rd.b[tlog.HashSize:]
				}
			}
		default:
			return nil, fmt.Errorf("%w: unknown request type %d", ErrMalformedMessage, t)
		}
	}
	if rd.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedMessage, rd.err)
	}
	if len(rd.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformedMessage, len(rd.b))
	}
	if string(r.encode(t)) != string(b) {
		return nil, fmt.Errorf("%w: response is not canonical", ErrMalformedMessage)
	}
	return r, nil
}

// A Server serves a Log over ProtocolID. Register it with
// host.SetStreamHandler(ProtocolID, srv.Handle). It only ever serves
// durable entries and checkpoints of them.
type Server struct {
	log *Log
}

// NewServer returns a Server for l.
func NewServer(l *Log) *Server { return &Server{log: l} }

// Handle serves requests on s until the peer closes it, a request is
// malformed, or a request takes longer than the stream timeout.
func (srv *Server) Handle(s network.Stream) {
	defer s.Close()
	rd := msgio.NewVarintReaderSize(s, 64)
	wr := msgio.NewVarintWriter(s)
	for {
		_ = s.SetDeadline(time.Now().Add(streamTimeout))
		msg, err := rd.ReadMsg()
		if err != nil {
			return
		}
		req, err := DecodeRequest(msg)
		rd.ReleaseMsg(msg)
		var resp *Response
		if err != nil {
			resp = &Response{Status: StatusBadRequest, Error: err.Error()}
		} else {
			resp = srv.answer(req)
		}
		if len(resp.Error) > maxErrorText {
			resp.Error = resp.Error[:maxErrorText]
		}
		if err := wr.WriteMsg(resp.encode(req.Type)); err != nil {
			s.Reset()
			return
		}
		if resp.Status == StatusBadRequest {
			return
		}
	}
}

func errorResponse(err error) *Response {
	st := StatusInternal
	if errors.Is(err, ErrNotFound) {
		st = StatusNotFound
	}
	return &Response{Status: st, Error: err.Error()}
}

func (srv *Server) answer(req Request) *Response {
	l := srv.log
	switch req.Type {
	case ReqCheckpoint:
		cp, err := l.Checkpoint()
		if err != nil {
			return errorResponse(err)
		}
		return &Response{Note: cp.Note}
	case ReqEntries:
		max := int(min(req.B, MaxEntriesPerResponse))
		if max == 0 {
			return &Response{Status: StatusBadRequest, Error: "ledger: entries request for 0 entries"}
		}
		if req.A >= l.Size() {
			return errorResponse(l.notFound(req.A))
		}
		es, err := l.RawEntries(req.A, max, maxEntriesBytes)
		if err != nil {
			return errorResponse(err)
		}
		return &Response{Entries: es}
	case ReqInclusion:
		p, err := l.ProveEntry(req.A, req.B)
		if err != nil {
			return errorResponse(err)
		}
		data, err := l.readRaw(req.A)
		if err != nil {
			return errorResponse(err)
		}
		return &Response{Entries: [][]byte{data}, Proof: p}
	case ReqConsistency:
		p, err := l.ProveTree(req.A, req.B)
		if err != nil {
			return errorResponse(err)
		}
		return &Response{Proof: p}
	}
	return &Response{Status: StatusBadRequest, Error: "ledger: unknown request"}
}

// A Remote is the client side of ProtocolID for one peer's log. Every
// answer is checked before it is returned: notes are signature-checked
// against the peer's origin, entry counts and proof sizes are bounded.
// Entries are returned as bytes for the caller to verify (see Verifier).
type Remote struct {
	h      host.Host
	peer   peer.ID
	origin Origin
}

// NewRemote returns a client for the log of p in network, over h.
func NewRemote(h host.Host, p peer.ID, network string) *Remote {
	return &Remote{h: h, peer: p, origin: OriginOf(network, p)}
}

// Origin returns the origin of the remote log.
func (r *Remote) Origin() Origin { return r.origin }

// ErrRemote is returned (wrapped) when the peer answers with an error status.
var ErrRemote = errors.New("ledger: peer refused")

func (r *Remote) do(ctx context.Context, req Request) (*Response, error) {
	s, err := r.h.NewStream(ctx, r.peer, ProtocolID)
	if err != nil {
		return nil, fmt.Errorf("ledger: open %s stream to %s: %w", ProtocolID, r.peer, err)
	}
	defer s.Close()
	deadline := time.Now().Add(streamTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = s.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	if err := msgio.NewVarintWriter(s).WriteMsg(req.encode()); err != nil {
		s.Reset()
		return nil, fmt.Errorf("ledger: send request to %s: %w", r.peer, err)
	}
	rd := msgio.NewVarintReaderSize(s, MaxMessageSize)
	msg, err := rd.ReadMsg()
	if err != nil {
		s.Reset()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ledger: read answer of %s: %w", r.peer, ctx.Err())
		}
		return nil, fmt.Errorf("ledger: read answer of %s: %w", r.peer, err)
	}
	resp, err := DecodeResponse(req.Type, msg)
	if err != nil {
		return nil, fmt.Errorf("ledger: answer of %s: %w", r.peer, err)
	}
	if resp.Status != StatusOK {
		err := fmt.Errorf("%w: %s (status %d)", ErrRemote, resp.Error, resp.Status)
		if resp.Status == StatusNotFound {
			err = fmt.Errorf("%w: %w", err, ErrNotFound)
		}
		return nil, err
	}
	return resp, nil
}

// Checkpoint fetches and verifies the peer's newest checkpoint.
func (r *Remote) Checkpoint(ctx context.Context) (*Checkpoint, error) {
	resp, err := r.do(ctx, Request{Type: ReqCheckpoint})
	if err != nil {
		return nil, err
	}
	cp, err := ParseCheckpoint(resp.Note, r.origin)
	if err != nil {
		return nil, fmt.Errorf("ledger: checkpoint of %s: %w", r.peer, err)
	}
	return cp, nil
}

// Entries fetches up to max entries starting at from, as canonical bytes
// (unverified: feed them to a Verifier). It returns at least one entry or
// an error.
func (r *Remote) Entries(ctx context.Context, from uint64, max int) ([][]byte, error) {
	resp, err := r.do(ctx, Request{Type: ReqEntries, A: from, B: uint64(max)})
	if err != nil {
		return nil, err
	}
	if len(resp.Entries) == 0 || len(resp.Entries) > max {
		return nil, fmt.Errorf("ledger: %s answered %d entries for at most %d", r.peer, len(resp.Entries), max)
	}
	return resp.Entries, nil
}

// ProveEntry fetches entry seq and its inclusion proof in the tree of size
// entries. The entry is decoded and signature-checked; the proof is
// returned unchecked (check it with CheckInclusion against a checkpoint).
func (r *Remote) ProveEntry(ctx context.Context, seq, size uint64) (*Entry, tlog.RecordProof, error) {
	resp, err := r.do(ctx, Request{Type: ReqInclusion, A: seq, B: size})
	if err != nil {
		return nil, nil, err
	}
	e, err := DecodeEntry(resp.Entries[0])
	if err != nil {
		return nil, nil, fmt.Errorf("ledger: entry %d from %s: %w", seq, r.peer, err)
	}
	if e.Origin != r.origin || e.Seq != seq {
		return nil, nil, fmt.Errorf("ledger: %s answered entry %d of %s for entry %d of %s", r.peer, e.Seq, e.Origin, seq, r.origin)
	}
	return e, tlog.RecordProof(resp.Proof), nil
}

// ProveTree fetches the consistency proof old→size, unchecked (check it
// with CheckConsistency).
func (r *Remote) ProveTree(ctx context.Context, old, size uint64) (tlog.TreeProof, error) {
	resp, err := r.do(ctx, Request{Type: ReqConsistency, A: old, B: size})
	if err != nil {
		return nil, err
	}
	return tlog.TreeProof(resp.Proof), nil
}

// A Source serves one log's checkpoint, entries and consistency proofs;
// *Remote is one, over the network. Implementations must be safe for
// concurrent use.
type Source interface {
	// Origin returns the origin of the log.
	Origin() Origin
	// Checkpoint returns the newest signature-checked checkpoint.
	Checkpoint(ctx context.Context) (*Checkpoint, error)
	// Entries returns 1..max entries from from, unverified.
	Entries(ctx context.Context, from uint64, max int) ([][]byte, error)
	// ProveTree returns the consistency proof old→size, unchecked.
	ProveTree(ctx context.Context, old, size uint64) (tlog.TreeProof, error)
}

var _ Source = (*Remote)(nil)

// Fetch fetches and verifies a whole log from src: its newest checkpoint,
// then every entry up to it, checked by a Verifier. Each verified entry's
// bytes are passed to each (if not nil) in order. It returns the
// checkpoint and the Verifier (for tree hashes and proofs over the
// fetched entries). Failures in the log are *VerifyError values.
func Fetch(ctx context.Context, src Source, each func(entry []byte) error) (*Checkpoint, *Verifier, error) {
	cp, err := src.Checkpoint(ctx)
	if err != nil {
		return nil, nil, err
	}
	v, err := NewVerifier(src.Origin())
	if err != nil {
		return nil, nil, err
	}
	for v.Size() < cp.Size {
		es, err := src.Entries(ctx, v.Size(), int(min(cp.Size-v.Size(), MaxEntriesPerResponse)))
		if err != nil {
			return nil, nil, fmt.Errorf("ledger: fetch entries from %d of %s: %w", v.Size(), src.Origin(), err)
		}
		if uint64(len(es)) > cp.Size-v.Size() {
			es = es[:cp.Size-v.Size()]
		}
		if err := v.Add(ctx, es); err != nil {
			return nil, nil, err
		}
		if each != nil {
			for _, e := range es {
				if err := each(e); err != nil {
					return nil, nil, err
				}
			}
		}
	}
	if _, err := v.Finish(cp); err != nil {
		return nil, nil, err
	}
	return cp, v, nil
}
