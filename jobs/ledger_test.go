package jobs

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// ledgerResult returns a result of spec signed by the worker of seed.
func ledgerResult(t testing.TB, spec *SignedSpec, seed int64, stdout string) *SignedResult {
	t.Helper()
	key := testKey(t, seed)
	r := testResult(t, key)
	r.Job, r.Computation, r.Stdout = spec.ID, spec.CompCID, rawCID(stdout)
	sr, err := SignResult(key, r)
	if err != nil {
		t.Fatal(err)
	}
	return sr
}

// ledgerSeeds returns valid job.submitted, job.executed and job.verdict
// bodies.
func ledgerSeeds(t testing.TB, spec *SignedSpec, _ *SignedResult) [3][]byte {
	t.Helper()
	sub, err := NewSubmittedEntry(spec).Encode()
	if err != nil {
		t.Fatal(err)
	}
	r1, r2 := ledgerResult(t, spec, 11, "out"), ledgerResult(t, spec, 12, "wrong")
	exe, err := (&ExecutedEntry{Job: spec.ID, Submitter: spec.Envelope.Submitter, Result: r1}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	_, ver, err := NewVerdictEntry(spec.ID, StateFailed, "mismatch", "no 2 results agree", 2, 2,
		[]*SignedResult{r1, r2}, []peer.ID{r2.Result.Worker})
	if err != nil {
		t.Fatal(err)
	}
	return [3][]byte{sub, exe, ver}
}

func TestLedgerEntriesRoundTrip(t *testing.T) {
	key := testKey(t, 1)
	spec, err := SignSpec(key, testEnvelope(t, key))
	if err != nil {
		t.Fatal(err)
	}
	b := ledgerSeeds(t, spec, nil)

	sub, err := DecodeSubmittedEntry(b[0])
	if err != nil || sub.Job != spec.ID || sub.Spec == nil || !bytes.Equal(sub.Spec.Sig, spec.Sig) {
		t.Fatalf("DecodeSubmittedEntry = %+v, %v; want job %s with its spec", sub, err, spec.ID)
	}
	exe, err := DecodeExecutedEntry(b[1])
	if err != nil || exe.Job != spec.ID || exe.Submitter != spec.Envelope.Submitter || exe.Result.Result.Stdout != rawCID("out") {
		t.Fatalf("DecodeExecutedEntry = %+v, %v", exe, err)
	}
	ver, err := DecodeVerdictEntry(b[2])
	if err != nil {
		t.Fatal(err)
	}
	if ver.State != StateFailed || ver.Verdict != "mismatch" || len(ver.Results) != 2 || ver.Results[0].Signed == nil ||
		len(ver.Disagreeing) != 1 || ver.Disagreeing[0] != ver.Results[1].Worker {
		t.Fatalf("DecodeVerdictEntry = %+v", ver)
	}
	// The executed entry's signed result is the one in the verdict.
	if !bytes.Equal(ver.Results[0].Signed.Sig, exe.Result.Sig) || ver.Results[0].CID != exe.Result.CID {
		t.Errorf("verdict result 0 = %s, executed result = %s", ver.Results[0].CID, exe.Result.CID)
	}
	for kind, body := range map[string][]byte{LedgerKindSubmitted: b[0], LedgerKindExecuted: b[1], LedgerKindVerdict: b[2]} {
		s, ok := DescribeLedgerEntry(kind, body)
		if !ok || !strings.Contains(s, spec.ID.String()) || strings.Contains(s, "undecodable") {
			t.Errorf("DescribeLedgerEntry(%s) = %q, %v; want a summary naming the job", kind, s, ok)
		}
	}
	if _, ok := DescribeLedgerEntry("note", []byte("hi")); ok {
		t.Errorf("DescribeLedgerEntry(note) claims the kind")
	}
}

// Mangling: every truncation is rejected, and every single-byte change is
// rejected or decodes to a value that re-encodes to exactly the changed
// bytes (one value, one encoding); a change inside a signed record never
// verifies.
func TestLedgerEntriesMangled(t *testing.T) {
	key := testKey(t, 1)
	spec, err := SignSpec(key, testEnvelope(t, key))
	if err != nil {
		t.Fatal(err)
	}
	b := ledgerSeeds(t, spec, nil)
	decoders := []func([]byte) ([]byte, error){
		func(d []byte) ([]byte, error) {
			e, err := DecodeSubmittedEntry(d)
			if err != nil {
				return nil, err
			}
			return e.Encode()
		},
		func(d []byte) ([]byte, error) {
			e, err := DecodeExecutedEntry(d)
			if err != nil {
				return nil, err
			}
			return e.Encode()
		},
		func(d []byte) ([]byte, error) {
			e, err := DecodeVerdictEntry(d)
			if err != nil {
				return nil, err
			}
			return e.Encode()
		},
	}
	for k, dec := range decoders {
		valid := b[k]
		for n := 0; n < len(valid); n++ {
			if _, err := dec(valid[:n]); err == nil {
				t.Fatalf("body %d truncated to %d of %d bytes decodes", k, n, len(valid))
			}
		}
		accepted := 0
		for i := range valid {
			m := bytes.Clone(valid)
			m[i]++
			again, err := dec(m)
			if err != nil {
				continue
			}
			accepted++
			if !bytes.Equal(again, m) {
				t.Fatalf("body %d with byte %d bumped decodes but re-encodes differently", k, i)
			}
		}
		// Only bumps of free text (the reason) and of bytes outside any
		// signed record may survive; the bodies are mostly signed bytes.
		if accepted > len(valid)/4 {
			t.Errorf("body %d: %d of %d single-byte bumps accepted", k, accepted, len(valid))
		}
	}
}

func TestLedgerEntriesInconsistent(t *testing.T) {
	key := testKey(t, 1)
	spec, err := SignSpec(key, testEnvelope(t, key))
	if err != nil {
		t.Fatal(err)
	}
	other := testEnvelope(t, key)
	other.Replicas, other.Quorum = 2, 2
	spec2, err := SignSpec(key, other)
	if err != nil {
		t.Fatal(err)
	}
	r := ledgerResult(t, spec, 11, "out")
	if _, err := (&SubmittedEntry{Job: spec2.ID, Spec: spec}).Encode(); err == nil {
		t.Error("a submitted entry naming another job's spec encodes")
	}
	if _, err := (&ExecutedEntry{Job: spec2.ID, Submitter: spec.Envelope.Submitter, Result: r}).Encode(); err == nil {
		t.Error("an executed entry with another job's result encodes")
	}
	bad := []*VerdictEntry{
		{Job: spec.ID, State: StateDone, Verdict: "", Replicas: 1, Quorum: 1},
		{Job: spec.ID, State: StateCancelled, Verdict: "verified", Replicas: 1, Quorum: 1},
		{Job: spec.ID, State: StateDone, Verdict: "maybe", Replicas: 1, Quorum: 1},
		{Job: spec.ID, State: StateRunning, Verdict: "verified", Replicas: 1, Quorum: 1},
		{Job: spec.ID, State: StateDone, Verdict: "verified", Replicas: 1, Quorum: 2},
		{Job: spec2.ID, State: StateDone, Verdict: "verified", Replicas: 1, Quorum: 1,
			Results: []VerdictResult{{Worker: r.Result.Worker, CID: r.CID, Signed: r}}},
	}
	for i, e := range bad {
		if _, err := e.Encode(); err == nil {
			t.Errorf("bad verdict entry %d encodes", i)
		}
	}
}

func TestVerdictEntryDropsSignedResultsToFit(t *testing.T) {
	key := testKey(t, 1)
	env := testEnvelope(t, key)
	env.Replicas, env.Quorum = MaxReplicas, 1
	spec, err := SignSpec(key, env)
	if err != nil {
		t.Fatal(err)
	}
	var results []*SignedResult
	for i := 0; i < MaxVerdictResults; i++ {
		wkey := testKey(t, int64(100+i))
		r := testResult(t, wkey)
		r.Job, r.Computation = spec.ID, spec.CompCID
		r.ExitCode, r.Failure, r.Reason = -1, FailureTrap, strings.Repeat("x", MaxReasonSize)
		sr, err := SignResult(wkey, r)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, sr)
	}
	e, b, err := NewVerdictEntry(spec.ID, StateFailed, "failed", strings.Repeat("é", MaxVerdictReasonSize), MaxReplicas, 1, results, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxLedgerBodySize {
		t.Fatalf("verdict body is %d bytes, over %d", len(b), MaxLedgerBodySize)
	}
	if e.Results[0].Signed == nil || e.Results[len(e.Results)-1].Signed != nil {
		t.Errorf("want the first results in full and the last by CID only")
	}
	got, err := DecodeVerdictEntry(b)
	if err != nil || len(got.Results) != MaxVerdictResults {
		t.Fatalf("DecodeVerdictEntry = %d results, %v", len(got.Results), err)
	}
}

func TestRecorderFunc(t *testing.T) {
	var got string
	var r Recorder = RecorderFunc(func(_ context.Context, kind string, body []byte) (uint64, error) {
		got = kind + ":" + string(body)
		return 7, nil
	})
	seq, err := r.Record(context.Background(), LedgerKindSubmitted, []byte("x"))
	if seq != 7 || err != nil || got != "job.submitted:x" {
		t.Fatalf("Record = %d, %v (%q)", seq, err, got)
	}
}
