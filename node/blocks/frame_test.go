package blocks

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multicodec"

	"github.com/shoalnet/shoal/crypto"
)

// decodeAll reads frames from data until an error, returning the frames.
func decodeAll(data []byte) ([]frame, error) {
	br := bufio.NewReader(bytes.NewReader(data))
	var out []frame
	var buf []byte
	for {
		f, nb, err := readFrame(br, buf)
		buf = nb
		if err != nil {
			return out, err
		}
		f.data = append([]byte(nil), f.data...)
		out = append(out, f)
	}
}

func FuzzReadFrame(f *testing.F) {
	c := crypto.CIDOf(multicodec.Raw, []byte("x"))
	f.Add(appendEnd(append(appendBlockHeader(nil, c, 1), 'x')))
	f.Add(appendError(nil, CodeNotFound, "provider does not have block"))
	f.Add([]byte{byte(frameBlock), 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		frames, err := decodeAll(data)
		if err == nil {
			t.Fatal("decodeAll ended without an error")
		}
		// Whatever decoded must re-encode to a prefix of the input.
		var re []byte
		for _, fr := range frames {
			switch fr.kind {
			case frameBlock:
				if len(fr.data) > MaxBlockSize {
					t.Fatalf("decoded a block of %d bytes", len(fr.data))
				}
				if err := ValidateCID(fr.cid); err != nil {
					t.Fatalf("decoded an invalid CID: %v", err)
				}
				re = append(appendBlockHeader(re, fr.cid, len(fr.data)), fr.data...)
			case frameEnd:
				re = appendEnd(re)
			case frameError:
				re = appendError(re, fr.code, fr.msg)
			}
		}
		if !bytes.HasPrefix(data, re) {
			t.Fatalf("frames do not re-encode to the input")
		}
	})
}

func FuzzReadRequest(f *testing.F) {
	f.Add(appendRequest(nil, crypto.CIDOf(multicodec.DagPb, []byte("x"))))
	f.Add([]byte{requestVersion, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := readRequest(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			return
		}
		if !bytes.HasPrefix(data, appendRequest(nil, c)) {
			t.Fatalf("request %s does not re-encode to the input", c)
		}
	})
}

func TestReadFrameLimits(t *testing.T) {
	c := crypto.CIDOf(multicodec.Raw, []byte("x"))
	tests := []struct {
		name string
		in   []byte
	}{
		{"unknown kind", []byte{0x7f}},
		{"oversize block", appendBlockHeader(nil, c, MaxBlockSize+1)},
		{"cid length zero", []byte{byte(frameBlock), 0}},
		{"cid too long", []byte{byte(frameBlock), maxCIDLen + 1}},
		{"bad cid", []byte{byte(frameBlock), 2, 0xff, 0xff}},
		{"truncated data", appendBlockHeader(nil, c, 10)},
		{"long error", append([]byte{byte(frameError), 1}, 0x81, 0x04)},
		{"identity block", appendBlockHeader(nil, cid.NewCidV1(uint64(multicodec.Raw), mustIdentity(t, "x")), 1)},
	}
	for _, tt := range tests {
		_, _, err := readFrame(bufio.NewReader(bytes.NewReader(tt.in)), nil)
		if err == nil || err == io.EOF {
			t.Errorf("readFrame(%s) = %v, want a malformed-frame error", tt.name, err)
		}
	}
}

func mustIdentity(t *testing.T, s string) []byte {
	c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: 0x00, MhLength: -1}.Sum([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return c.Hash()
}

// smallDAG builds a UnixFS file of three raw leaves and returns the root,
// all blocks, and the valid DAG stream a provider sends for it.
func smallDAG(t *testing.T) (cid.Cid, map[cid.Cid][]byte, []byte) {
	t.Helper()
	blocks := make(map[cid.Cid][]byte)
	fsn := unixfs.NewFSNode(2) // File
	root := merkledag.NodeWithData(nil)
	root.SetCidBuilder(cidBuilder)
	var leaves []cid.Cid
	for _, s := range []string{"leaf one", "leaf two", "leaf one"} {
		c := crypto.CIDOf(multicodec.Raw, []byte(s))
		blocks[c] = []byte(s)
		leaves = append(leaves, c)
		if err := root.AddRawLink("", &ipld.Link{Cid: c, Size: uint64(len(s))}); err != nil {
			t.Fatal(err)
		}
		fsn.AddBlockSize(uint64(len(s)))
	}
	data, err := fsn.GetBytes()
	if err != nil {
		t.Fatal(err)
	}
	root.SetData(data)
	blocks[root.Cid()] = root.RawData()
	// Depth-first, each distinct CID once.
	b := appendBlockHeader(nil, root.Cid(), len(root.RawData()))
	b = append(b, root.RawData()...)
	for _, c := range leaves[:2] {
		b = appendBlockHeader(b, c, len(blocks[c]))
		b = append(b, blocks[c]...)
	}
	return root.Cid(), blocks, appendEnd(b)
}

func testSession(s *Service, root cid.Cid) *session {
	return &session{
		s: s, root: root, ctx: context.Background(), cancel: func(error) {},
		timer: time.NewTimer(time.Hour), arrived: make(map[cid.Cid]struct{}),
		changed: make(chan struct{}), done: make(chan struct{}),
	}
}

// TestReadDAGMangled checks that a valid stream is accepted, and that every
// single-byte change and every truncation of it is rejected and stores
// nothing that does not hash to its CID.
func TestReadDAGMangled(t *testing.T) {
	root, blocks, stream := smallDAG(t)
	s := newService(t, newHost(t), nil)
	ctx := context.Background()
	run := func(in []byte) error {
		return s.readDAG(ctx, bufio.NewReader(bytes.NewReader(in)), testSession(s, root), func() {})
	}
	if err := run(stream); err != nil {
		t.Fatalf("readDAG(valid stream) = %v", err)
	}
	rc, n, err := s.Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "leaf oneleaf twoleaf one" || n != 24 {
		t.Fatalf("file = %q (%d), want the three leaves", got, n)
	}
	clear := func() {
		for c := range blocks {
			s.bs.DeleteBlock(ctx, c)
		}
	}
	for i := range stream {
		for _, delta := range []byte{1, 0x80} {
			clear()
			m := bytes.Clone(stream)
			m[i] += delta
			if err := run(m); err == nil {
				t.Fatalf("byte %d + %#x: mangled stream accepted", i, delta)
			}
			checkStoreClean(t, s, blocks)
		}
		clear()
		if err := run(stream[:i]); err == nil {
			t.Fatalf("stream truncated to %d bytes accepted", i)
		}
		checkStoreClean(t, s, blocks)
	}
}

// checkStoreClean fails if the store holds anything but genuine blocks.
func checkStoreClean(t *testing.T, s *Service, genuine map[cid.Cid][]byte) {
	t.Helper()
	ctx := context.Background()
	keys, err := s.bs.AllKeysChan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k := range keys {
		blk, err := s.bs.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		ok := false
		for c, data := range genuine {
			if bytes.Equal(c.Hash(), k.Hash()) && bytes.Equal(data, blk.RawData()) {
				ok = true
			}
		}
		if !ok {
			t.Fatalf("store holds a block %s that is not genuine", k)
		}
	}
}

func TestRemoteErrorIs(t *testing.T) {
	var re *RemoteError
	err := error(&RemoteError{Code: CodeNotFound, Message: "x"})
	if !errors.As(err, &re) || re.Code != CodeNotFound || re.Code.String() != "not-found" {
		t.Errorf("RemoteError round trip failed: %v", err)
	}
}
