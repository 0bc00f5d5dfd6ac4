package capacity

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"

	"github.com/shoalnet/shoal/crypto"
)

// PayloadType is the payload type of the envelope that carries an advert.
const PayloadType = "shoal/capacity-advert/1"

// RuntimeWasm is the runtime name of the WebAssembly (WASI preview 1) sandbox.
const RuntimeWasm = "wasm"

// Limits on an advert. A sealed advert (the whole gossipsub message data)
// is at most MaxAdvertSize bytes; every field has its own bound so that a
// valid advert always fits.
const (
	MaxAdvertSize    = 4096
	MaxNetworkLen    = 64
	MaxVersionLen    = 64
	MaxRuntimes      = 8
	MaxRuntimeLen    = 32
	MaxLabels        = 16
	MaxLabelKeyLen   = 63
	MaxLabelValueLen = 127
	MaxSlots         = 1 << 16
	MaxCores         = 1 << 20
)

// An Advert is one node's offer of compute, as it travels on the capacity
// topic. It is a plain value: build it, [Advert.Seal] it, and read it back
// with [OpenAdvert]. The wire format is specified in doc.go and in
// docs/protocol.md, "Capacity adverts".
type Advert struct {
	Peer        peer.ID           // the node offering the capacity; it signs the advert
	Network     string            // network name; adverts of another network are rejected
	Seq         uint64            // strictly increasing per peer, at most math.MaxInt64
	Expiry      time.Time         // the advert is void after this instant (millisecond precision)
	SlotsTotal  int               // job slots the node offers
	SlotsFree   int               // job slots free now, 0 ≤ SlotsFree ≤ SlotsTotal
	Cores       int               // logical CPUs of the node
	MemoryBytes int64             // physical memory of the node
	Runtimes    []string          // runtimes offered, e.g. [RuntimeWasm]; unique
	Version     string            // software version of the node
	Labels      map[string]string // free-form operator labels, e.g. region=eu
}

// Offers reports whether the advert offers runtime.
func (a *Advert) Offers(runtime string) bool {
	return slices.Contains(a.Runtimes, runtime)
}

// Field names of the DAG-CBOR map. Their order on the wire is DAG-CBOR's
// canonical one (shorter keys first, then bytewise), chosen by the encoder.
const (
	keyPeer     = "peer"
	keyNetwork  = "network"
	keySeq      = "seq"
	keyExpiry   = "expiry"
	keySlots    = "slots"
	keyFree     = "free"
	keyCores    = "cores"
	keyMemory   = "memory"
	keyRuntimes = "runtimes"
	keyVersion  = "version"
	keyLabels   = "labels"
)

// A Reason names why an advert was rejected. Reasons label the rejection
// counters, so the list is append-only.
type Reason string

// The reasons an advert is rejected.
const (
	ReasonSize      Reason = "size"       // sealed advert larger than MaxAdvertSize
	ReasonEnvelope  Reason = "envelope"   // the envelope does not decode or is not canonical
	ReasonSignature Reason = "signature"  // the envelope signature does not verify
	ReasonDecode    Reason = "decode"     // the payload is not canonical DAG-CBOR of a map
	ReasonField     Reason = "field"      // a field is missing, of the wrong type or out of bounds
	ReasonSigner    Reason = "signer"     // the envelope signer is not the advert's peer
	ReasonNetwork   Reason = "network"    // the advert names another network
	ReasonExpired   Reason = "expired"    // the expiry has passed
	ReasonFarExpiry Reason = "far-expiry" // the expiry is further ahead than MaxTTL allows
	ReasonReplay    Reason = "replay"     // another advert with the seq of the one in the view (a peer signed two)
	ReasonDuplicate Reason = "duplicate"  // another copy of the message that delivered the advert in the view
	ReasonStale     Reason = "stale"      // an older seq than the advert in the view
)

// Ignored reports whether adverts turned down for r are ignored rather than
// rejected: they do not enter the view, but the peer that relayed them is
// not scored down, because honest gossip delivers them. A duplicate is a
// copy that arrived while the first one was being validated; a stale advert
// is an older message of the author that a peer fetched by gossip (IHAVE /
// IWANT) after a newer one had arrived by the mesh.
func (r Reason) Ignored() bool {
	return r == ReasonDuplicate || r == ReasonStale
}

// Reasons returns every Reason, in the order they were added.
func Reasons() []Reason {
	return []Reason{ReasonSize, ReasonEnvelope, ReasonSignature, ReasonDecode, ReasonField,
		ReasonSigner, ReasonNetwork, ReasonExpired, ReasonFarExpiry, ReasonReplay,
		ReasonDuplicate, ReasonStale}
}

// A RejectError reports why an advert is not acceptable.
type RejectError struct {
	Reason Reason
	Err    error
}

func (e *RejectError) Error() string {
	return fmt.Sprintf("capacity: advert rejected (%s): %v", e.Reason, e.Err)
}

func (e *RejectError) Unwrap() error { return e.Err }

func reject(r Reason, format string, args ...any) error {
	return &RejectError{Reason: r, Err: fmt.Errorf(format, args...)}
}

// ReasonOf returns the Reason of a RejectError in err's chain, or "" if there is none.
func ReasonOf(err error) Reason {
	var re *RejectError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ""
}

// Validate checks every field of a against the format's bounds. It does
// not look at the clock: expiry and replay are the receiver's checks. The
// error is a *RejectError with ReasonField and names the field.
func (a *Advert) Validate() error {
	if a.Peer == "" {
		return reject(ReasonField, "field %s is empty", keyPeer)
	}
	if err := a.Peer.Validate(); err != nil {
		return reject(ReasonField, "field %s: %v", keyPeer, err)
	}
	if a.Network == "" || len(a.Network) > MaxNetworkLen || !printable(a.Network) {
		return reject(ReasonField, "field %s = %q: want 1..%d printable ASCII bytes", keyNetwork, a.Network, MaxNetworkLen)
	}
	if a.Seq == 0 || a.Seq > math.MaxInt64 {
		return reject(ReasonField, "field %s = %d: want 1..2^63-1", keySeq, a.Seq)
	}
	if ms := a.Expiry.UnixMilli(); a.Expiry.IsZero() || ms <= 0 {
		return reject(ReasonField, "field %s = %d: want a positive unix time in milliseconds", keyExpiry, ms)
	}
	if a.SlotsTotal < 0 || a.SlotsTotal > MaxSlots {
		return reject(ReasonField, "field %s = %d: want 0..%d", keySlots, a.SlotsTotal, MaxSlots)
	}
	if a.SlotsFree < 0 || a.SlotsFree > a.SlotsTotal {
		return reject(ReasonField, "field %s = %d: want 0..%s (%d)", keyFree, a.SlotsFree, keySlots, a.SlotsTotal)
	}
	if a.Cores < 0 || a.Cores > MaxCores {
		return reject(ReasonField, "field %s = %d: want 0..%d", keyCores, a.Cores, MaxCores)
	}
	if a.MemoryBytes < 0 {
		return reject(ReasonField, "field %s = %d: want ≥ 0", keyMemory, a.MemoryBytes)
	}
	if len(a.Runtimes) > MaxRuntimes {
		return reject(ReasonField, "field %s has %d entries, want at most %d", keyRuntimes, len(a.Runtimes), MaxRuntimes)
	}
	for i, r := range a.Runtimes {
		if err := ValidRuntime(r); err != nil {
			return reject(ReasonField, "field %s[%d]: %v", keyRuntimes, i, err)
		}
		if slices.Contains(a.Runtimes[:i], r) {
			return reject(ReasonField, "field %s[%d] = %q repeats an earlier entry", keyRuntimes, i, r)
		}
	}
	if len(a.Version) > MaxVersionLen || !printable(a.Version) {
		return reject(ReasonField, "field %s = %q: want at most %d printable ASCII bytes", keyVersion, a.Version, MaxVersionLen)
	}
	if len(a.Labels) > MaxLabels {
		return reject(ReasonField, "field %s has %d entries, want at most %d", keyLabels, len(a.Labels), MaxLabels)
	}
	for k, v := range a.Labels {
		if err := ValidLabel(k, v); err != nil {
			return reject(ReasonField, "field %s: %v", keyLabels, err)
		}
	}
	return nil
}

// printable reports whether s is printable ASCII (0x20..0x7e).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// ValidRuntime reports, as an error, whether name is a valid runtime name:
// 1..MaxRuntimeLen bytes of [a-z0-9._-], starting with a letter or digit.
func ValidRuntime(name string) error {
	if name == "" || len(name) > MaxRuntimeLen {
		return fmt.Errorf("runtime %q: want 1..%d bytes", name, MaxRuntimeLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '.' || c == '_' || c == '-')
		if !ok {
			return fmt.Errorf("runtime %q: want lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", name)
		}
	}
	return nil
}

// ValidLabel reports, as an error, whether key=value is a valid label. A key
// is 1..MaxLabelKeyLen bytes of [A-Za-z0-9._/-] starting with a letter or
// digit; a value is 0..MaxLabelValueLen bytes of printable ASCII without spaces.
func ValidLabel(key, value string) error {
	if key == "" || len(key) > MaxLabelKeyLen {
		return fmt.Errorf("label key %q: want 1..%d bytes", key, MaxLabelKeyLen)
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-' && c != '/') {
			return fmt.Errorf("label key %q: want letters, digits, '.', '_', '-' or '/', starting with a letter or digit", key)
		}
	}
	if len(value) > MaxLabelValueLen {
		return fmt.Errorf("label %s: value is %d bytes, want at most %d", key, len(value), MaxLabelValueLen)
	}
	for i := 0; i < len(value); i++ {
		if value[i] <= 0x20 || value[i] > 0x7e {
			return fmt.Errorf("label %s: value %q: want printable ASCII without spaces", key, value)
		}
	}
	return nil
}

// ParseLabels parses labels written as "key=value" (as in the config file's
// [jobs] labels) into a map. It rejects a malformed or repeated key, and more
// than MaxLabels labels, with an error naming the label.
func ParseLabels(kvs []string) (map[string]string, error) {
	if len(kvs) > MaxLabels {
		return nil, fmt.Errorf("%d labels, want at most %d", len(kvs), MaxLabels)
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("label %q: want key=value", kv)
		}
		if err := ValidLabel(k, v); err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("label key %q appears twice", k)
		}
		m[k] = v
	}
	return m, nil
}

// FormatLabels returns labels as sorted "key=value" strings, the inverse of ParseLabels.
func FormatLabels(labels map[string]string) []string {
	out := make([]string, 0, len(labels))
	for k, v := range labels {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// MarshalPayload returns the canonical DAG-CBOR encoding of a, the payload
// that Seal signs. It validates a first.
func (a *Advert) MarshalPayload() ([]byte, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	n, err := qp.BuildMap(basicnode.Prototype.Any, 11, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, keyPeer, qp.Bytes([]byte(a.Peer)))
		qp.MapEntry(ma, keyNetwork, qp.String(a.Network))
		qp.MapEntry(ma, keySeq, qp.Int(int64(a.Seq)))
		qp.MapEntry(ma, keyExpiry, qp.Int(a.Expiry.UnixMilli()))
		qp.MapEntry(ma, keySlots, qp.Int(int64(a.SlotsTotal)))
		qp.MapEntry(ma, keyFree, qp.Int(int64(a.SlotsFree)))
		qp.MapEntry(ma, keyCores, qp.Int(int64(a.Cores)))
		qp.MapEntry(ma, keyMemory, qp.Int(a.MemoryBytes))
		qp.MapEntry(ma, keyRuntimes, qp.List(int64(len(a.Runtimes)), func(la datamodel.ListAssembler) {
			for _, r := range a.Runtimes {
				qp.ListEntry(la, qp.String(r))
			}
		}))
		qp.MapEntry(ma, keyVersion, qp.String(a.Version))
		qp.MapEntry(ma, keyLabels, qp.Map(int64(len(a.Labels)), func(ma datamodel.MapAssembler) {
			for k, v := range a.Labels {
				qp.MapEntry(ma, k, qp.String(v))
			}
		}))
	})
	if err != nil {
		return nil, fmt.Errorf("capacity: build advert: %w", err)
	}
	var buf bytes.Buffer
	if err := dagcbor.Encode(n, &buf); err != nil {
		return nil, fmt.Errorf("capacity: encode advert: %w", err)
	}
	return buf.Bytes(), nil
}

// Seal validates a, checks that key is a.Peer's key, and returns the signed
// envelope that travels on the capacity topic: crypto.Seal of the canonical
// payload in domain crypto.DomainCapacityAdvert with type PayloadType.
func (a *Advert) Seal(key crypto.PrivKey) ([]byte, error) {
	id, err := crypto.PeerID(key)
	if err != nil {
		return nil, err
	}
	if id != a.Peer {
		return nil, fmt.Errorf("capacity: seal advert of peer %s with the key of %s: the advert's Peer must be the signer", a.Peer, id)
	}
	payload, err := a.MarshalPayload()
	if err != nil {
		return nil, err
	}
	data, err := crypto.Seal(key, crypto.DomainCapacityAdvert, PayloadType, payload)
	if err != nil {
		return nil, err
	}
	if len(data) > MaxAdvertSize {
		return nil, reject(ReasonSize, "sealed advert is %d bytes, over the %d-byte bound; use fewer or shorter labels", len(data), MaxAdvertSize)
	}
	return data, nil
}

// OpenAdvert checks and decodes a sealed advert: size first, then the
// envelope (which must be canonical protobuf), its signature in domain
// crypto.DomainCapacityAdvert, the payload (canonical DAG-CBOR with every
// known field present and of its type), the field bounds, and that the
// signer is the advert's peer. It does not look at the clock or at earlier
// adverts. Every error is a *RejectError; use ReasonOf to get its reason.
func OpenAdvert(data []byte) (Advert, error) {
	if len(data) > MaxAdvertSize {
		return Advert{}, reject(ReasonSize, "sealed advert is %d bytes, over the %d-byte bound", len(data), MaxAdvertSize)
	}
	env, err := record.UnmarshalEnvelope(data)
	if err != nil {
		return Advert{}, reject(ReasonEnvelope, "envelope does not decode: %v", err)
	}
	again, err := env.Marshal()
	if err != nil || !bytes.Equal(again, data) {
		return Advert{}, reject(ReasonEnvelope, "envelope is not in canonical form")
	}
	opened, err := crypto.Open(data, crypto.DomainCapacityAdvert, PayloadType)
	if err != nil {
		if errors.Is(err, crypto.ErrBadSignature) {
			return Advert{}, reject(ReasonSignature, "%v", err)
		}
		return Advert{}, reject(ReasonEnvelope, "%v", err)
	}
	a, err := unmarshalPayload(opened.Payload)
	if err != nil {
		return Advert{}, err
	}
	if opened.Signer != a.Peer {
		return Advert{}, reject(ReasonSigner, "advert of peer %s is signed by %s", a.Peer, opened.Signer)
	}
	return a, nil
}

// unmarshalPayload decodes the canonical DAG-CBOR payload of an advert and
// validates its fields. Unknown fields are allowed (newer nodes may add
// optional fields) but count towards the size bound.
func unmarshalPayload(payload []byte) (Advert, error) {
	if len(payload) > MaxAdvertSize {
		return Advert{}, reject(ReasonSize, "payload is %d bytes, over the %d-byte bound", len(payload), MaxAdvertSize)
	}
	nb := basicnode.Prototype.Any.NewBuilder()
	opts := dagcbor.DecodeOptions{AllowLinks: false, AllocationBudget: 8 * MaxAdvertSize}
	if err := opts.Decode(nb, bytes.NewReader(payload)); err != nil {
		return Advert{}, reject(ReasonDecode, "payload is not DAG-CBOR: %v", err)
	}
	n := nb.Build()
	var again bytes.Buffer
	if err := dagcbor.Encode(n, &again); err != nil || !bytes.Equal(again.Bytes(), payload) {
		return Advert{}, reject(ReasonDecode, "payload is not canonical DAG-CBOR")
	}
	if n.Kind() != datamodel.Kind_Map {
		return Advert{}, reject(ReasonDecode, "payload is a %s, want a map", n.Kind())
	}
	var a Advert
	peerBytes, err := fieldBytes(n, keyPeer)
	if err != nil {
		return Advert{}, err
	}
	if a.Peer, err = peer.IDFromBytes(peerBytes); err != nil {
		return Advert{}, reject(ReasonField, "field %s is not a peer ID: %v", keyPeer, err)
	}
	if a.Network, err = fieldString(n, keyNetwork); err != nil {
		return Advert{}, err
	}
	seq, err := fieldInt(n, keySeq)
	if err != nil {
		return Advert{}, err
	}
	a.Seq = uint64(seq)
	expiry, err := fieldInt(n, keyExpiry)
	if err != nil {
		return Advert{}, err
	}
	a.Expiry = time.UnixMilli(expiry)
	ints := []struct {
		key string
		dst *int
	}{{keySlots, &a.SlotsTotal}, {keyFree, &a.SlotsFree}, {keyCores, &a.Cores}}
	for _, f := range ints {
		v, err := fieldInt(n, f.key)
		if err != nil {
			return Advert{}, err
		}
		if v > math.MaxInt32 {
			return Advert{}, reject(ReasonField, "field %s = %d is out of range", f.key, v)
		}
		*f.dst = int(v)
	}
	if a.MemoryBytes, err = fieldInt(n, keyMemory); err != nil {
		return Advert{}, err
	}
	if a.Version, err = fieldString(n, keyVersion); err != nil {
		return Advert{}, err
	}
	rt, err := field(n, keyRuntimes, datamodel.Kind_List)
	if err != nil {
		return Advert{}, err
	}
	if rt.Length() > MaxRuntimes {
		return Advert{}, reject(ReasonField, "field %s has %d entries, want at most %d", keyRuntimes, rt.Length(), MaxRuntimes)
	}
	a.Runtimes = make([]string, 0, rt.Length())
	for it := rt.ListIterator(); !it.Done(); {
		_, v, err := it.Next()
		if err != nil {
			return Advert{}, reject(ReasonField, "field %s: %v", keyRuntimes, err)
		}
		s, err := v.AsString()
		if err != nil {
			return Advert{}, reject(ReasonField, "field %s holds a %s, want strings", keyRuntimes, v.Kind())
		}
		a.Runtimes = append(a.Runtimes, s)
	}
	lm, err := field(n, keyLabels, datamodel.Kind_Map)
	if err != nil {
		return Advert{}, err
	}
	if lm.Length() > MaxLabels {
		return Advert{}, reject(ReasonField, "field %s has %d entries, want at most %d", keyLabels, lm.Length(), MaxLabels)
	}
	a.Labels = make(map[string]string, lm.Length())
	for it := lm.MapIterator(); !it.Done(); {
		k, v, err := it.Next()
		if err != nil {
			return Advert{}, reject(ReasonField, "field %s: %v", keyLabels, err)
		}
		ks, _ := k.AsString() // DAG-CBOR map keys are always strings
		vs, err := v.AsString()
		if err != nil {
			return Advert{}, reject(ReasonField, "field %s: label %q holds a %s, want a string", keyLabels, ks, v.Kind())
		}
		a.Labels[ks] = vs
	}
	if err := a.Validate(); err != nil {
		return Advert{}, err
	}
	return a, nil
}

func field(n datamodel.Node, key string, kind datamodel.Kind) (datamodel.Node, error) {
	v, err := n.LookupByString(key)
	if err != nil {
		return nil, reject(ReasonField, "field %s is missing", key)
	}
	if v.Kind() != kind {
		return nil, reject(ReasonField, "field %s is a %s, want a %s", key, v.Kind(), kind)
	}
	return v, nil
}

func fieldInt(n datamodel.Node, key string) (int64, error) {
	v, err := field(n, key, datamodel.Kind_Int)
	if err != nil {
		return 0, err
	}
	i, err := v.AsInt()
	if err != nil || i < 0 {
		return 0, reject(ReasonField, "field %s is not a non-negative 64-bit integer", key)
	}
	return i, nil
}

func fieldString(n datamodel.Node, key string) (string, error) {
	v, err := field(n, key, datamodel.Kind_String)
	if err != nil {
		return "", err
	}
	s, _ := v.AsString()
	return s, nil
}

func fieldBytes(n datamodel.Node, key string) ([]byte, error) {
	v, err := field(n, key, datamodel.Kind_Bytes)
	if err != nil {
		return nil, err
	}
	b, _ := v.AsBytes()
	return b, nil
}
