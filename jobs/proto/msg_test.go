package proto

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multicodec"
	"github.com/multiformats/go-varint"

	"github.com/shoalnet/shoal/crypto"
)

// sampleMsgs returns one valid message of every type.
func sampleMsgs(t testing.TB) []Msg {
	t.Helper()
	job := crypto.CIDOf(multicodec.DagCbor, []byte("job"))
	key, err := crypto.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	worker, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	var h [HashSize]byte
	for i := range h {
		h[i] = byte(i)
	}
	return []Msg{
		&Offer{Job: job, Spec: []byte("signed spec bytes"), Replica: 2, Commit: true, RunTimeout: 1500 * time.Millisecond},
		&Offer{Job: job, Spec: []byte{0}, Replica: 0, Commit: false, RunTimeout: time.Millisecond},
		&Accept{Job: job},
		&Decline{Job: job, Code: CodeBusy, Reason: "no free slot"},
		&Commit{Job: job, Worker: worker, Hash: h, Sig: bytes.Repeat([]byte{9}, 64)},
		&Reveal{Job: job},
		&Result{Job: job, Result: []byte("signed result bytes")},
		&Cancel{Job: job, Reason: "canceled by submitter"},
		&Error{Job: job, Code: CodeFetch, Message: "block bafy... not found"},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, m := range sampleMsgs(t) {
		b, err := Marshal(m)
		if err != nil {
			t.Fatalf("Marshal(%s) = %v", m.Type(), err)
		}
		got, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("Unmarshal(Marshal(%s)) = %v", m.Type(), err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("Unmarshal(Marshal(%s)) = %+v, want %+v", m.Type(), got, m)
		}
	}
}

// TestMangle checks that every truncation of a valid message is rejected
// and that every single-byte change is either rejected or decodes to a
// message whose encoding is exactly the changed bytes (one encoding per
// message).
func TestMangle(t *testing.T) {
	for _, m := range sampleMsgs(t) {
		b, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(b); i++ {
			if _, err := Unmarshal(b[:i]); err == nil {
				t.Errorf("Unmarshal(%s[:%d]) succeeded, want error", m.Type(), i)
			} else if !errors.Is(err, ErrMalformed) {
				t.Errorf("Unmarshal(%s[:%d]) = %v, want ErrMalformed", m.Type(), i, err)
			}
		}
		for i := range b {
			for _, delta := range []byte{1, 0x80, 0xff} {
				c := bytes.Clone(b)
				c[i] += delta
				got, err := Unmarshal(c)
				if err != nil {
					continue
				}
				again, err := Marshal(got)
				if err != nil || !bytes.Equal(again, c) {
					t.Errorf("Unmarshal(%s with byte %d +%d) accepted non-canonical bytes", m.Type(), i, delta)
				}
			}
		}
		if _, err := Unmarshal(append(bytes.Clone(b), 0)); err == nil {
			t.Errorf("Unmarshal(%s + trailing byte) succeeded, want error", m.Type())
		}
	}
}

func TestInvalid(t *testing.T) {
	job := crypto.CIDOf(multicodec.DagCbor, []byte("job"))
	bad := []Msg{
		&Offer{Spec: []byte("x"), RunTimeout: time.Second},
		&Offer{Job: job, RunTimeout: time.Second},
		&Offer{Job: job, Spec: []byte("x")},
		&Offer{Job: job, Spec: []byte("x"), RunTimeout: time.Second + 1},
		&Offer{Job: job, Spec: []byte("x"), RunTimeout: time.Second, Replica: MaxReplicas},
		&Offer{Job: job, Spec: make([]byte, MaxSpecSize+1), RunTimeout: time.Second},
		&Decline{Job: job, Code: 0},
		&Decline{Job: job, Code: codeEnd},
		&Decline{Job: job, Code: CodeBusy, Reason: strings.Repeat("x", MaxReasonSize+1)},
		&Decline{Job: job, Code: CodeBusy, Reason: "\xff"},
		&Commit{Job: job, Sig: []byte("s")},
		&Result{Job: job},
		&Result{Job: job, Result: make([]byte, MaxResultSize+1)},
		&Error{Job: job},
	}
	for _, m := range bad {
		if _, err := Marshal(m); err == nil {
			t.Errorf("Marshal(%+v) succeeded, want error", m)
		}
	}
	for _, b := range [][]byte{nil, {0}, {99}, {byte(TypeAccept)}, {byte(TypeAccept), 0}} {
		if _, err := Unmarshal(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("Unmarshal(%x) = %v, want ErrMalformed", b, err)
		}
	}
}

func TestNonMinimalVarint(t *testing.T) {
	m := &Decline{Job: crypto.CIDOf(multicodec.DagCbor, []byte("job")), Code: CodeBusy, Reason: ""}
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	// Replace the one-byte code 1 with the overlong 0x81 0x00.
	i := len(b) - 2
	if b[i] != 1 {
		t.Fatalf("layout changed: %x", b)
	}
	c := append(append(bytes.Clone(b[:i]), 0x81, 0x00), b[i+1:]...)
	if _, err := Unmarshal(c); !errors.Is(err, ErrMalformed) {
		t.Errorf("Unmarshal(overlong varint) = %v, want ErrMalformed", err)
	}
}

type pipe struct {
	io.Reader
	io.Writer
}

func TestConnFraming(t *testing.T) {
	var buf bytes.Buffer
	c := NewConn(pipe{&buf, &buf})
	for _, m := range sampleMsgs(t) {
		if err := c.Write(m, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range sampleMsgs(t) {
		got, err := c.Read(time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Read = %+v, want %+v", got, want)
		}
	}
}

func TestConnOversize(t *testing.T) {
	var buf bytes.Buffer
	buf.Write(varint.ToUvarint(MaxMessageSize + 1))
	buf.Write(make([]byte, 16))
	c := NewConn(pipe{&buf, io.Discard})
	if _, err := c.Read(time.Second); !errors.Is(err, ErrMalformed) {
		t.Errorf("Read(oversize frame) = %v, want ErrMalformed", err)
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, m := range sampleMsgs(f) {
		b, err := Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Unmarshal(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Unmarshal error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again, err := Marshal(m)
		if err != nil {
			t.Fatalf("Marshal(Unmarshal(%x)) = %v", b, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("Marshal(Unmarshal(%x)) = %x, not canonical", b, again)
		}
	})
}
