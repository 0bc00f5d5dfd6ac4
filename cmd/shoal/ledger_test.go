package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/multiformats/go-multicodec"

	"github.com/shoalnet/shoal/crypto"
	"github.com/shoalnet/shoal/jobs"
)

func TestLedgerBodySummary(t *testing.T) {
	key, err := crypto.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := crypto.PeerID(key)
	env, err := jobs.NewEnvelope(id, jobs.Computation{Module: crypto.CIDOf(multicodec.Raw, []byte("m"))}, bytes.NewReader(make([]byte, 16)), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	spec, err := jobs.SignSpec(key, env)
	if err != nil {
		t.Fatal(err)
	}
	body, err := jobs.NewSubmittedEntry(spec).Encode()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		kind string
		body []byte
		want string
	}{
		{jobs.LedgerKindSubmitted, body, "job " + spec.ID.String() + " module"},
		{jobs.LedgerKindVerdict, []byte{0xa0}, "undecodable: "},
		{"evidence", []byte(`{"evidence":"bafk"}`), `{"evidence":"bafk"}`},
		{"note", []byte{0, 1, 2}, "(3 bytes)"},
	}
	for _, tt := range tests {
		if got := bodySummary(tt.kind, tt.body); !strings.HasPrefix(got, tt.want) {
			t.Errorf("bodySummary(%s, %x) = %q, want it to start with %q", tt.kind, tt.body, got, tt.want)
		}
	}
}
