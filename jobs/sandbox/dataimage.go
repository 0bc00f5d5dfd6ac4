package sandbox

import "errors"

// A dataImage is what a module's active data segments write into its
// memory at instantiation, laid out as one run of bytes from off.
//
// Compilers write many segments: Go splits its data at every run of
// zeros, about 30 000 segments for a hello world. The runtime evaluates
// and copies each of them at every instantiation, and that was about a
// third of a warm hello run. A module whose segments are all plain (see
// splitData) is compiled without its data section instead, and each run
// copies the image into the fresh memory in one move (memoryLimit does,
// as the memory is made), which leaves the memory exactly as the
// segments would have.
type dataImage struct {
	off   uint32
	bytes []byte
}

// WebAssembly binary format constants used by splitData.
const (
	wasmSectionMemory    = 5
	wasmSectionData      = 11
	wasmSectionDataCount = 12
	wasmOpI32Const       = 0x41
	wasmOpEnd            = 0x0b
	wasmPageSize         = 65536
)

// maxDataImage bounds the image splitData builds; a module whose segments
// span more keeps its data section.
const maxDataImage = 64 << 20

var errNotPlain = errors.New("data segments are not plain")

// splitData returns code without its data section, and the image the
// section's segments write, if every segment is plain: active, in memory
// 0, at an i32.const offset, inside the memory's initial size. The module
// must declare one memory of its own and have no data count section (so
// no instruction refers to a segment: memory.init and data.drop need that
// section). Otherwise ok is false and code should be compiled as it is;
// then the runtime also reports whatever is wrong with it.
func splitData(code []byte) (stripped []byte, img *dataImage, ok bool) {
	if len(code) < 8 || string(code[:4]) != "\x00asm" {
		return nil, nil, false
	}
	type section struct {
		id         byte
		start, end int // the whole section, header included
		body       []byte
	}
	var secs []section
	for p := 8; p < len(code); {
		start := p
		id := code[p]
		size, n := uleb32(code[p+1:])
		if n <= 0 || size > uint64(len(code)-(p+1+n)) {
			return nil, nil, false
		}
		body := code[p+1+n : p+1+n+int(size)]
		p += 1 + n + int(size)
		secs = append(secs, section{id: id, start: start, end: p, body: body})
	}
	var memMin uint64
	var data []byte
	haveMem := false
	for _, s := range secs {
		switch s.id {
		case wasmSectionDataCount:
			return nil, nil, false
		case wasmSectionMemory:
			pages, err := parseMemory(s.body)
			if err != nil {
				return nil, nil, false
			}
			memMin, haveMem = pages, true
		case wasmSectionData:
			if data != nil {
				return nil, nil, false
			}
			data = s.body
		}
	}
	if data == nil || !haveMem {
		return nil, nil, false
	}
	img, err := buildImage(data, memMin*wasmPageSize)
	if err != nil {
		return nil, nil, false
	}
	stripped = make([]byte, 0, len(code)-len(data))
	stripped = append(stripped, code[:8]...)
	for _, s := range secs {
		if s.id != wasmSectionData {
			stripped = append(stripped, code[s.start:s.end]...)
		}
	}
	return stripped, img, true
}

// parseMemory reads a memory section of one plain 32-bit memory and
// returns its initial size in pages.
func parseMemory(b []byte) (uint64, error) {
	count, n := uleb32(b)
	if n <= 0 || count != 1 || n >= len(b) {
		return 0, errNotPlain
	}
	flags := b[n]
	if flags > 1 { // shared or 64-bit memories keep their data section
		return 0, errNotPlain
	}
	pages, m := uleb32(b[n+1:])
	if m <= 0 || pages > 65536 {
		return 0, errNotPlain
	}
	return pages, nil
}

// buildImage lays the segments of data section body b out as one image,
// later segments over earlier ones as instantiation applies them. Every
// segment must end within memSize bytes.
func buildImage(b []byte, memSize uint64) (*dataImage, error) {
	count, n := uleb32(b)
	if n <= 0 {
		return nil, errNotPlain
	}
	b = b[n:]
	type seg struct {
		off  uint64
		init []byte
	}
	segs := make([]seg, 0, min(count, uint64(len(b))))
	lo, hi := uint64(1<<63), uint64(0)
	for range count {
		flags, n := uleb32(b)
		if n <= 0 || flags != 0 { // 1: passive, 2: explicit memory index
			return nil, errNotPlain
		}
		b = b[n:]
		if len(b) < 2 || b[0] != wasmOpI32Const {
			return nil, errNotPlain
		}
		v, n, err := sleb32(b[1:])
		if err != nil || len(b) < 1+n+1 || b[1+n] != wasmOpEnd {
			return nil, errNotPlain
		}
		b = b[1+n+1:]
		size, m := uleb32(b)
		if m <= 0 || size > uint64(len(b)-m) {
			return nil, errNotPlain
		}
		init := b[m : m+int(size)]
		b = b[m+int(size):]
		start := uint64(uint32(v)) // the offset is an unsigned i32 address
		if start+size > memSize {
			return nil, errNotPlain
		}
		if size == 0 {
			continue
		}
		lo, hi = min(lo, start), max(hi, start+size)
		segs = append(segs, seg{start, init})
	}
	if len(b) != 0 {
		return nil, errNotPlain
	}
	if len(segs) == 0 {
		return &dataImage{}, nil
	}
	if hi-lo > maxDataImage {
		return nil, errNotPlain
	}
	img := &dataImage{off: uint32(lo), bytes: make([]byte, hi-lo)}
	for _, s := range segs {
		copy(img.bytes[s.off-lo:], s.init)
	}
	return img, nil
}

// uleb32 decodes an unsigned LEB128 number of at most 32 bits, strictly
// (at most 5 bytes, no bits beyond 32), as the binary format requires.
// It returns the value and the bytes read, or n <= 0 if b does not hold
// one.
func uleb32(b []byte) (v uint64, n int) {
	for i := 0; i < 5 && i < len(b); i++ {
		c := b[i]
		if i == 4 && c&0xf0 != 0 {
			return 0, -1
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, -1
}

// sleb32 decodes a signed LEB128 number of at most 32 bits, strictly.
func sleb32(b []byte) (int32, int, error) {
	var v int64
	for i := 0; i < 5 && i < len(b); i++ {
		c := b[i]
		v |= int64(c&0x7f) << (7 * i)
		if c&0x80 != 0 {
			continue
		}
		if i == 4 {
			// The unused bits of the last byte must extend the sign.
			if hi := c & 0x70; hi != 0 && hi != 0x70 || (hi == 0x70) != (c&0x08 != 0) {
				return 0, 0, errNotPlain
			}
		}
		shift := 7 * (i + 1)
		if shift < 64 && c&0x40 != 0 {
			v |= -1 << shift
		}
		return int32(v), i + 1, nil
	}
	return 0, 0, errNotPlain
}
