package jobs

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
)

// Canonical DAG-CBOR with fxamacker/cbor.
//
// Every record has a wire struct (wireEnvelope, wireResult, ...) whose
// fields are the record's map entries, with the map keys as cbor tags.
// Encoding a wire struct with encMode gives canonical DAG-CBOR: keys
// sorted length-first then bytewise (RFC 7049 canonical order, which is
// DAG-CBOR's), integers and lengths in their shortest form, definite
// lengths only, nil slices and maps as empty ones, links as tag 42 (see
// cidLink). The structs hold no floats, so none are ever written.
//
// decodeCanonical decodes strictly into a wire struct (no unknown or
// repeated keys, no indefinite lengths, no bignums, bounded nesting) and
// then encodes the struct again and requires the input bytes: whatever
// the struct cannot represent, a non-minimal integer or length, keys out
// of order, another type or tag where a field expects its own, a missing
// field, makes the bytes differ or the decode fail. So one value has
// exactly one encoding, and so one CID. Only once a decode has failed
// does explain look at the input again, to name the field at fault.

// The modes are built once; they are immutable and safe for concurrent
// use.
var (
	encMode = must(cbor.EncOptions{
		Sort:          cbor.SortLengthFirst,
		IndefLength:   cbor.IndefLengthForbidden,
		NilContainers: cbor.NilContainerAsEmpty,
	}.EncMode())

	decMode = must(cbor.DecOptions{
		DupMapKey:   cbor.DupMapKeyEnforcedAPF,
		IndefLength: cbor.IndefLengthForbidden,
		// The records nest four levels at most (envelope, computation,
		// inputs, link); DAG-CBOR decoding used to allow 8.
		MaxNestedLevels: 8,
		// No tighter than the size bounds: longer lists and maps than a
		// record allows are rejected by its checks, with its errors.
		MaxArrayElements:  1 << 16,
		MaxMapPairs:       1 << 16,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
		BignumTag:         cbor.BignumTagForbidden,
		BinaryUnmarshaler: cbor.BinaryUnmarshalerNone,
		// Strings are checked where they are used, with errors that name
		// them (every string field is: Validate and the decoders look at
		// each one), as they were before.
		UTF8: cbor.UTF8DecodeInvalid,
	}.DecMode())
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// encode returns the canonical DAG-CBOR encoding of v, a pointer to a
// wire struct.
func encode(what string, v any) ([]byte, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("jobs: encode %s: %w", what, err)
	}
	return b, nil
}

// decodeCanonical checks the size of data, decodes it strictly into v (a
// pointer to a wire struct) and requires that encoding v again gives the
// same bytes, so that one value has exactly one encoding (and so one
// CID). what names the record in errors about it as a whole ("job.verdict
// entry"), path names it in errors about its fields ("job.verdict").
func decodeCanonical(what, path string, data []byte, max int, v any) error {
	if len(data) == 0 {
		return fmt.Errorf("jobs: %s is empty", what)
	}
	if len(data) > max {
		return fmt.Errorf("jobs: %s is %d bytes, more than the %d allowed", what, len(data), max)
	}
	decodeErr := decMode.Unmarshal(data, v)
	if decodeErr == nil {
		// Encoding fails only for values that have no encoding, such as
		// the undefined CID of a missing link: explain names the field.
		if again, err := encMode.Marshal(v); err == nil && bytes.Equal(again, data) {
			return nil
		}
	}
	return explain(what, path, data, reflect.TypeOf(v).Elem(), decodeErr)
}

// A cidLink is a CID as DAG-CBOR writes it: tag 42 over a byte string
// holding 0x00 (the identity multibase prefix) and the binary CID.
type cidLink struct{ c cid.Cid }

// MarshalCBOR encodes l; an undefined CID is an error.
func (l cidLink) MarshalCBOR() ([]byte, error) {
	if !l.c.Defined() {
		return nil, errors.New("a link to the undefined CID")
	}
	s := l.c.KeyString() // the binary CID
	b := make([]byte, 0, 2+9+1+len(s))
	b = append(b, 0xd8, 42) // tag 42
	b = appendHead(b, 2, uint64(1+len(s)))
	b = append(b, 0)
	return append(b, s...), nil
}

// UnmarshalCBOR decodes one well-formed data item into l. It accepts any
// head widths: decodeCanonical's comparison rejects all but the shortest.
// Its errors are wrapped with the field's name (see explain).
func (l *cidLink) UnmarshalCBOR(data []byte) error {
	major, tag, n, ok := cborHead(data)
	if !ok || major != 6 || tag != 42 {
		return fmt.Errorf("a %s, not a link (tag 42)", kindOf(data))
	}
	data = data[n:]
	major, size, n, ok := cborHead(data)
	if !ok || major != 2 || uint64(len(data)-n) != size {
		return fmt.Errorf("a link (tag 42) over a %s, want bytes", kindOf(data))
	}
	b := data[n:]
	if len(b) == 0 || b[0] != 0 {
		return errors.New("a link whose bytes do not start with 0x00")
	}
	c, err := cid.Cast(b[1:])
	if err != nil {
		return fmt.Errorf("a link to an invalid CID: %w", err)
	}
	l.c = c
	return nil
}

// appendHead appends the shortest head of major type major with argument
// arg.
func appendHead(b []byte, major byte, arg uint64) []byte {
	m := major << 5
	switch {
	case arg < 24:
		return append(b, m|byte(arg))
	case arg <= 0xff:
		return append(b, m|24, byte(arg))
	case arg <= 0xffff:
		return append(b, m|25, byte(arg>>8), byte(arg))
	case arg <= 0xffffffff:
		return append(b, m|26, byte(arg>>24), byte(arg>>16), byte(arg>>8), byte(arg))
	}
	return append(b, m|27, byte(arg>>56), byte(arg>>48), byte(arg>>40), byte(arg>>32),
		byte(arg>>24), byte(arg>>16), byte(arg>>8), byte(arg))
}

// cborHead reads the head at the start of b: its major type, its
// argument (a length, a value, a tag number, or a float's bits) and its
// length in bytes. ok is false unless b starts with a complete head of
// definite length.
func cborHead(b []byte) (major byte, arg uint64, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, 0, false
	}
	major, ai := b[0]>>5, b[0]&31
	switch {
	case ai < 24:
		return major, uint64(ai), 1, true
	case ai <= 27:
		n = 1 + 1<<(ai-24)
		if len(b) < n {
			return 0, 0, 0, false
		}
		for _, c := range b[1:n] {
			arg = arg<<8 | uint64(c)
		}
		return major, arg, n, true
	}
	return 0, 0, 0, false
}

// itemLen returns the length of the data item at the start of b (well
// formed, definite lengths), or -1.
func itemLen(b []byte) int {
	major, arg, n, ok := cborHead(b)
	if !ok {
		return -1
	}
	switch major {
	case 2, 3:
		if arg > uint64(len(b)-n) {
			return -1
		}
		return n + int(arg)
	case 4, 5, 6:
		items := arg
		switch major {
		case 5:
			items *= 2
		case 6:
			items = 1
		}
		for i := uint64(0); i < items; i++ {
			l := itemLen(b[n:])
			if l < 0 {
				return -1
			}
			n += l
		}
	}
	return n
}

// items splits the array or map raw into its elements, or its keys and
// values in turn, in encoded order.
func items(raw []byte) ([][]byte, bool) {
	major, arg, n, ok := cborHead(raw)
	if !ok || major != 4 && major != 5 {
		return nil, false
	}
	if major == 5 {
		arg *= 2
	}
	if arg > uint64(len(raw)) {
		return nil, false
	}
	out := make([][]byte, 0, arg)
	rest := raw[n:]
	for i := uint64(0); i < arg; i++ {
		l := itemLen(rest)
		if l < 0 {
			return nil, false
		}
		out = append(out, rest[:l])
		rest = rest[l:]
	}
	return out, true
}

// kindOf names the kind of the data item at the start of b as IPLD does
// ("map", "link", "int", ...).
func kindOf(b []byte) string {
	major, arg, _, ok := cborHead(b)
	switch {
	case len(b) == 0:
		return "nothing"
	case major == 6 && ok && arg == 42:
		return "link"
	case major < 7:
		return [...]string{"int", "int", "bytes", "string", "list", "map", "tag"}[major]
	}
	switch b[0] {
	case 0xf4, 0xf5:
		return "bool"
	case 0xf6:
		return "null"
	case 0xf7:
		return "undefined"
	case 0xf9, 0xfa, 0xfb:
		return "float"
	}
	return "simple value"
}

var (
	typeCIDLink    = reflect.TypeFor[cidLink]()
	typeRawMessage = reflect.TypeFor[cbor.RawMessage]()
)

// explain returns the error for data, which did not decode into a value of
// type t (decodeErr) or did not encode back to the same bytes (decodeErr
// nil): the first field at fault, in the order the decoders read them,
// as "jobs: envelope.limits.memory: missing field"; or else what is wrong
// with the record as a whole.
func explain(what, path string, data []byte, t reflect.Type, decodeErr error) error {
	if err := decMode.Wellformed(data); err != nil {
		return fmt.Errorf("jobs: %s is not valid DAG-CBOR: %w", what, err)
	}
	if err := explainValue(path, data, t); err != nil {
		return err
	}
	if decodeErr != nil {
		return fmt.Errorf("jobs: %s is not valid DAG-CBOR: %w", what, decodeErr)
	}
	return fmt.Errorf("jobs: %s is not in canonical DAG-CBOR form", what)
}

// explainValue checks that raw, a well-formed data item, has the shape of
// t: the kind of every value, the keys of every map. It returns nil if it
// finds nothing wrong.
func explainValue(path string, raw []byte, t reflect.Type) error {
	kind := kindOf(raw)
	want := func(w string) error {
		if kind == w {
			return nil
		}
		article := "a "
		switch w {
		case "bytes":
			article = ""
		case "int":
			w, article = "integer", "an "
		case "link":
			w = "link (CID)"
		}
		return fmt.Errorf("jobs: %s: is a %s, want %s%s", path, kind, article, w)
	}
	switch {
	case t == typeCIDLink:
		if err := want("link"); err != nil {
			return err
		}
		var l cidLink
		if err := l.UnmarshalCBOR(raw); err != nil {
			return fmt.Errorf("jobs: %s: %w", path, err)
		}
	case t == typeRawMessage:
		// An embedded record, checked where it is decoded.
	case t.Kind() == reflect.Struct:
		if kind != "map" {
			return fmt.Errorf("jobs: %s is a %s, want a map", path, kind)
		}
		return explainStruct(path, raw, t)
	case t.Kind() == reflect.Map:
		if err := want("map"); err != nil {
			return err
		}
		kv, ok := items(raw)
		if !ok {
			return nil
		}
		for i := 0; i < len(kv); i += 2 {
			if kindOf(kv[i]) != "string" {
				return fmt.Errorf("jobs: %s: has a non-string key", path)
			}
			if err := explainValue(path+"["+textOf(kv[i])+"]", kv[i+1], t.Elem()); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		return want("bytes")
	case t.Kind() == reflect.Slice:
		if err := want("list"); err != nil {
			return err
		}
		elems, _ := items(raw)
		for i, e := range elems {
			if err := explainValue(fmt.Sprintf("%s[%d]", path, i), e, t.Elem()); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.String:
		return want("string")
	case t.Kind() == reflect.Int64:
		if err := want("int"); err != nil {
			return err
		}
		var v int64
		if err := decMode.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("jobs: %s: %w", path, err)
		}
	}
	return nil
}

// explainStruct checks the map raw against the wire struct t: string keys,
// all of them fields of t, then each field in turn.
func explainStruct(path string, raw []byte, t reflect.Type) error {
	kv, ok := items(raw)
	if !ok {
		return nil
	}
	values := make(map[string][]byte, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		if kindOf(kv[i]) != "string" {
			return fmt.Errorf("jobs: %s has a non-string key", path)
		}
		k := textOf(kv[i])
		if _, ok := fieldByKey(t, k); !ok {
			return fmt.Errorf("jobs: %s has unknown field %q", path, k)
		}
		values[k] = kv[i+1]
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key := f.Tag.Get("cbor")
		v, ok := values[key]
		if !ok {
			return fmt.Errorf("jobs: %s.%s: missing field", path, key)
		}
		if err := explainValue(path+"."+key, v, f.Type); err != nil {
			return err
		}
	}
	return nil
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.Tag.Get("cbor") == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// textOf returns the contents of the text string at the start of b.
func textOf(b []byte) string {
	_, size, n, _ := cborHead(b)
	return string(b[n : n+int(size)])
}
