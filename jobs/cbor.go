package jobs

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
)

// encodeNode returns the canonical DAG-CBOR bytes of n: links allowed,
// map keys in RFC 7049 canonical order (shorter keys first, then bytewise).
// sizeHint is the expected length, if known (0 if not), so that the
// buffer is allocated once.
func encodeNode(n datamodel.Node, sizeHint int) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, sizeHint))
	opts := dagcbor.EncodeOptions{AllowLinks: true, MapSortMode: codec.MapSortMode_RFC7049}
	if err := opts.Encode(n, buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// buildMap builds a map node with fn and returns its canonical bytes.
func buildMap(what string, size int64, fn func(datamodel.MapAssembler)) ([]byte, error) {
	n, err := qp.BuildMap(basicnode.Prototype.Map, size, fn)
	if err != nil {
		return nil, fmt.Errorf("jobs: build %s: %w", what, err)
	}
	b, err := encodeNode(n, 0)
	if err != nil {
		return nil, fmt.Errorf("jobs: encode %s: %w", what, err)
	}
	return b, nil
}

// decodeCanonical checks the size of data, decodes it as strict DAG-CBOR
// and requires that re-encoding gives the same bytes, so that one value has
// exactly one encoding (and so one CID).
func decodeCanonical(what string, data []byte, max int) (datamodel.Node, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("jobs: %s is empty", what)
	}
	if len(data) > max {
		return nil, fmt.Errorf("jobs: %s is %d bytes, more than the %d allowed", what, len(data), max)
	}
	nb := basicnode.Prototype.Any.NewBuilder()
	opts := dagcbor.DecodeOptions{AllowLinks: true, MaxDepth: 8, AllocationBudget: int64(max) * 8}
	if err := opts.Decode(nb, bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("jobs: %s is not valid DAG-CBOR: %w", what, err)
	}
	n := nb.Build()
	again, err := encodeNode(n, len(data))
	if err != nil {
		return nil, fmt.Errorf("jobs: re-encode %s: %w", what, err)
	}
	if !bytes.Equal(again, data) {
		return nil, fmt.Errorf("jobs: %s is not in canonical DAG-CBOR form", what)
	}
	return n, nil
}

// fields reads the entries of one DAG-CBOR map strictly: every key must be
// known, every read of a missing key or a value of the wrong kind records an
// error naming the field. The first error sticks.
type fields struct {
	what string // "envelope", "envelope.limits", ...
	n    datamodel.Node
	err  error
}

// readFields checks that n is a map with string keys, all of them in known.
func readFields(what string, n datamodel.Node, known ...string) *fields {
	f := &fields{what: what, n: n}
	if n.Kind() != datamodel.Kind_Map {
		f.err = fmt.Errorf("jobs: %s is a %s, want a map", what, n.Kind())
		return f
	}
	it := n.MapIterator()
	for !it.Done() {
		k, _, err := it.Next()
		if err != nil {
			f.err = fmt.Errorf("jobs: %s: %w", what, err)
			return f
		}
		ks, err := k.AsString()
		if err != nil {
			f.err = fmt.Errorf("jobs: %s has a non-string key", what)
			return f
		}
		ok := false
		for _, name := range known {
			if ks == name {
				ok = true
				break
			}
		}
		if !ok {
			f.err = fmt.Errorf("jobs: %s has unknown field %q", what, ks)
			return f
		}
	}
	return f
}

func (f *fields) fail(key, format string, args ...any) {
	if f.err == nil {
		f.err = fmt.Errorf("jobs: %s.%s: %s", f.what, key, fmt.Sprintf(format, args...))
	}
}

// get returns the value at key, or nil (recording an error) if it is missing.
func (f *fields) get(key string) datamodel.Node {
	if f.err != nil {
		return nil
	}
	v, err := f.n.LookupByString(key)
	if err != nil || v == nil {
		f.fail(key, "missing field")
		return nil
	}
	return v
}

func (f *fields) str(key string) string {
	v := f.get(key)
	if v == nil {
		return ""
	}
	s, err := v.AsString()
	if err != nil {
		f.fail(key, "is a %s, want a string", v.Kind())
	}
	return s
}

func (f *fields) int(key string) int64 {
	v := f.get(key)
	if v == nil {
		return 0
	}
	i, err := v.AsInt()
	if err != nil {
		f.fail(key, "is a %s, want an integer", v.Kind())
	}
	return i
}

func (f *fields) bytes(key string) []byte {
	v := f.get(key)
	if v == nil {
		return nil
	}
	b, err := v.AsBytes()
	if err != nil {
		f.fail(key, "is a %s, want bytes", v.Kind())
	}
	return b
}

func (f *fields) link(key string) cid.Cid {
	return f.linkOf(key, f.get(key))
}

func (f *fields) linkOf(key string, v datamodel.Node) cid.Cid {
	if v == nil {
		return cid.Undef
	}
	l, err := v.AsLink()
	if err != nil {
		f.fail(key, "is a %s, want a link (CID)", v.Kind())
		return cid.Undef
	}
	cl, ok := l.(cidlink.Link)
	if !ok || !cl.Cid.Defined() {
		f.fail(key, "is not a CID link")
		return cid.Undef
	}
	return cl.Cid
}

// strings reads a list of strings.
func (f *fields) strings(key string) []string {
	v := f.get(key)
	if v == nil {
		return nil
	}
	if v.Kind() != datamodel.Kind_List {
		f.fail(key, "is a %s, want a list", v.Kind())
		return nil
	}
	out := make([]string, 0, v.Length())
	it := v.ListIterator()
	for !it.Done() {
		i, e, err := it.Next()
		if err != nil {
			f.fail(key, "%v", err)
			return nil
		}
		s, err := e.AsString()
		if err != nil {
			f.fail(fmt.Sprintf("%s[%d]", key, i), "is a %s, want a string", e.Kind())
			return nil
		}
		out = append(out, s)
	}
	return out
}

// entries reads a map with string keys; each value is handed to fn.
func (f *fields) entries(key string, fn func(k string, v datamodel.Node)) {
	v := f.get(key)
	if v == nil {
		return
	}
	if v.Kind() != datamodel.Kind_Map {
		f.fail(key, "is a %s, want a map", v.Kind())
		return
	}
	it := v.MapIterator()
	for !it.Done() && f.err == nil {
		k, e, err := it.Next()
		if err != nil {
			f.fail(key, "%v", err)
			return
		}
		ks, err := k.AsString()
		if err != nil {
			f.fail(key, "has a non-string key")
			return
		}
		fn(ks, e)
	}
}

// stringMap reads a map of strings to strings.
func (f *fields) stringMap(key string) map[string]string {
	out := map[string]string{}
	f.entries(key, func(k string, v datamodel.Node) {
		s, err := v.AsString()
		if err != nil {
			f.fail(key+"["+k+"]", "is a %s, want a string", v.Kind())
			return
		}
		out[k] = s
	})
	return out
}

// assembleStringMap writes m with keys in sorted order (the encoder sorts
// again canonically; sorting here only makes building deterministic).
func assembleStringMap(m map[string]string) qp.Assemble {
	keys := sortedKeys(m)
	return qp.Map(int64(len(keys)), func(ma datamodel.MapAssembler) {
		for _, k := range keys {
			qp.MapEntry(ma, k, qp.String(m[k]))
		}
	})
}

func assembleStrings(s []string) qp.Assemble {
	return qp.List(int64(len(s)), func(la datamodel.ListAssembler) {
		for _, e := range s {
			qp.ListEntry(la, qp.String(e))
		}
	})
}

func link(c cid.Cid) qp.Assemble { return qp.Link(cidlink.Link{Cid: c}) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
