package blocks

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multicodec"
	"github.com/multiformats/go-multihash"
	"github.com/multiformats/go-varint"
)

// ProtocolDAG is the libp2p protocol ID of the DAG stream protocol: a fetcher
// names a root CID and the provider streams every block of that DAG in
// depth-first order over one stream. The framing is specified in
// docs/protocol.md, section "Payloads".
const ProtocolDAG = "/shoal/dag/1.0.0"

// MaxBlockSize is the largest block Shoal stores or accepts from a peer,
// the bitswap limit of 2 MiB.
const MaxBlockSize = 2 << 20

const (
	// requestVersion is the first byte of a DAG stream request.
	requestVersion = 0x01
	// maxCIDLen bounds the binary form of a CID on the wire.
	maxCIDLen = 128
	// maxErrorMsgLen bounds the message of an error frame.
	maxErrorMsgLen = 512
)

// frameKind is the first byte of a DAG stream response frame.
type frameKind byte

// Frame kinds. Do not renumber: they are on the wire.
const (
	frameBlock frameKind = 0x01 // uvarint(cidLen) cid uvarint(dataLen) data
	frameEnd   frameKind = 0x02 // no payload: the DAG is complete
	frameError frameKind = 0x03 // uvarint(code) uvarint(msgLen) msg
)

// ErrorCode is the code carried by an error frame of the DAG stream protocol.
// The list is append-only: do not reorder or remove codes.
type ErrorCode uint64

const (
	// CodeInternal means the provider failed for its own reasons.
	CodeInternal ErrorCode = 1
	// CodeNotFound means the provider lacks a block of the DAG.
	CodeNotFound ErrorCode = 2
	// CodeBadRequest means the request was malformed or named an unsupported CID.
	CodeBadRequest ErrorCode = 3
	// CodeBusy means the provider serves too many DAG streams already.
	CodeBusy ErrorCode = 4
)

// String returns the code's name.
func (c ErrorCode) String() string {
	switch c {
	case CodeInternal:
		return "internal"
	case CodeNotFound:
		return "not-found"
	case CodeBadRequest:
		return "bad-request"
	case CodeBusy:
		return "busy"
	}
	return fmt.Sprintf("code-%d", uint64(c))
}

// A RemoteError is an error frame received from a provider.
type RemoteError struct {
	Code    ErrorCode
	Message string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("provider answered %s: %s", e.Code, e.Message)
}

var (
	errMalformedFrame   = errors.New("blocks: malformed DAG stream frame")
	errMalformedRequest = errors.New("blocks: malformed DAG stream request")
)

// frame is one decoded DAG stream response frame.
type frame struct {
	kind frameKind
	cid  cid.Cid // frameBlock
	data []byte  // frameBlock; aliases the buffer given to readFrame
	code ErrorCode
	msg  string
}

// ValidateCID reports whether c names a block Shoal can store and check: a
// CIDv0 or CIDv1 with codec raw, dag-pb or dag-cbor and a sha2-256 hash of 32
// bytes (or an identity hash of at most 128 bytes, which carries its data
// inline). Its error names the CID and what is supported.
func ValidateCID(c cid.Cid) error {
	if !c.Defined() {
		return errors.New("blocks: undefined CID")
	}
	p := c.Prefix()
	switch multicodec.Code(p.Codec) {
	case multicodec.Raw, multicodec.DagPb, multicodec.DagCbor:
	default:
		return fmt.Errorf("blocks: CID %s uses codec %s; supported codecs are raw, dag-pb and dag-cbor", c, multicodec.Code(p.Codec))
	}
	switch p.MhType {
	case multihash.SHA2_256:
		if p.MhLength != 32 {
			return fmt.Errorf("blocks: CID %s has a sha2-256 digest of %d bytes, want 32", c, p.MhLength)
		}
	case multihash.IDENTITY:
		if p.MhLength > maxCIDLen {
			return fmt.Errorf("blocks: CID %s has an identity digest of %d bytes, limit %d", c, p.MhLength, maxCIDLen)
		}
	default:
		return fmt.Errorf("blocks: CID %s uses hash %s; only sha2-256 is supported", c, multicodec.Code(p.MhType))
	}
	return nil
}

// appendRequest appends the DAG stream request for root to b.
func appendRequest(b []byte, root cid.Cid) []byte {
	cb := root.Bytes()
	b = append(b, requestVersion)
	b = binary.AppendUvarint(b, uint64(len(cb)))
	return append(b, cb...)
}

// readRequest reads and validates one DAG stream request.
func readRequest(r *bufio.Reader) (cid.Cid, error) {
	v, err := r.ReadByte()
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: reading version: %w", errMalformedRequest, err)
	}
	if v != requestVersion {
		return cid.Undef, fmt.Errorf("%w: version %#x, want %#x", errMalformedRequest, v, requestVersion)
	}
	c, err := readCID(r)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: %w", errMalformedRequest, err)
	}
	if c.Prefix().MhType == multihash.IDENTITY {
		return cid.Undef, fmt.Errorf("%w: identity CID %s needs no fetching", errMalformedRequest, c)
	}
	return c, nil
}

// readCID reads uvarint(len) and a binary CID of that length, strictly.
func readCID(r *bufio.Reader) (cid.Cid, error) {
	n, err := varint.ReadUvarint(r)
	if err != nil {
		return cid.Undef, fmt.Errorf("reading CID length: %w", noEOF(err))
	}
	if n == 0 || n > maxCIDLen {
		return cid.Undef, fmt.Errorf("CID length %d out of range 1..%d", n, maxCIDLen)
	}
	var buf [maxCIDLen]byte
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		return cid.Undef, fmt.Errorf("reading CID: %w", noEOF(err))
	}
	c, err := cid.Cast(buf[:n])
	if err != nil {
		return cid.Undef, fmt.Errorf("decoding CID: %w", err)
	}
	if err := ValidateCID(c); err != nil {
		return cid.Undef, err
	}
	return c, nil
}

// appendBlockHeader appends the header of a block frame (kind, CID, data
// length) to b; the data follows it on the wire.
func appendBlockHeader(b []byte, c cid.Cid, dataLen int) []byte {
	cb := c.Bytes()
	b = append(b, byte(frameBlock))
	b = binary.AppendUvarint(b, uint64(len(cb)))
	b = append(b, cb...)
	return binary.AppendUvarint(b, uint64(dataLen))
}

// appendEnd appends an end frame to b.
func appendEnd(b []byte) []byte { return append(b, byte(frameEnd)) }

// appendError appends an error frame to b, truncating msg to the limit.
func appendError(b []byte, code ErrorCode, msg string) []byte {
	if len(msg) > maxErrorMsgLen {
		msg = msg[:maxErrorMsgLen]
	}
	b = append(b, byte(frameError))
	b = binary.AppendUvarint(b, uint64(code))
	b = binary.AppendUvarint(b, uint64(len(msg)))
	return append(b, msg...)
}

// readFrame reads one response frame. A block's data is read into buf
// (grown as needed, never past MaxBlockSize) and the frame's data aliases
// it; readFrame returns the possibly grown buffer for reuse. Sizes are
// checked before anything is allocated. At a clean end of input before a
// frame it returns io.EOF; a frame cut short is io.ErrUnexpectedEOF.
func readFrame(r *bufio.Reader, buf []byte) (frame, []byte, error) {
	k, err := r.ReadByte()
	if err != nil {
		return frame{}, buf, err
	}
	switch frameKind(k) {
	case frameBlock:
		c, err := readCID(r)
		if err != nil {
			return frame{}, buf, fmt.Errorf("%w: block: %w", errMalformedFrame, err)
		}
		if c.Prefix().MhType == multihash.IDENTITY {
			return frame{}, buf, fmt.Errorf("%w: block frame for identity CID %s", errMalformedFrame, c)
		}
		n, err := varint.ReadUvarint(r)
		if err != nil {
			return frame{}, buf, fmt.Errorf("%w: block %s: reading length: %w", errMalformedFrame, c, noEOF(err))
		}
		if n > MaxBlockSize {
			return frame{}, buf, fmt.Errorf("%w: block %s is %d bytes, limit %d", errMalformedFrame, c, n, MaxBlockSize)
		}
		if uint64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		data := buf[:n]
		if _, err := io.ReadFull(r, data); err != nil {
			return frame{}, buf, fmt.Errorf("%w: block %s: reading %d bytes: %w", errMalformedFrame, c, n, noEOF(err))
		}
		return frame{kind: frameBlock, cid: c, data: data}, buf, nil
	case frameEnd:
		return frame{kind: frameEnd}, buf, nil
	case frameError:
		code, err := varint.ReadUvarint(r)
		if err != nil {
			return frame{}, buf, fmt.Errorf("%w: error code: %w", errMalformedFrame, noEOF(err))
		}
		n, err := varint.ReadUvarint(r)
		if err != nil {
			return frame{}, buf, fmt.Errorf("%w: error message length: %w", errMalformedFrame, noEOF(err))
		}
		if n > maxErrorMsgLen {
			return frame{}, buf, fmt.Errorf("%w: error message of %d bytes, limit %d", errMalformedFrame, n, maxErrorMsgLen)
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(r, msg); err != nil {
			return frame{}, buf, fmt.Errorf("%w: error message: %w", errMalformedFrame, noEOF(err))
		}
		return frame{kind: frameError, code: ErrorCode(code), msg: string(msg)}, buf, nil
	}
	return frame{}, buf, fmt.Errorf("%w: unknown kind %#x", errMalformedFrame, k)
}

// noEOF turns io.EOF inside a frame into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
