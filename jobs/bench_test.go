package jobs

import "testing"

// The codec's hot paths: every node that checks a job's spec or a result
// (the worker, the submitter, every node an announcement reaches) decodes,
// re-encodes and verifies it; workers and submitters sign.
//
// The benchmarks named Decode* without "Unverified" include one ed25519
// verification; the Unverified ones and the Encode* ones measure the codec
// alone.

func BenchmarkDecodeSignedSpec(b *testing.B) {
	_, data := signedSpec(b, testKey(b, 1))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeSignedSpec(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSignedSpecUnverified(b *testing.B) {
	_, data := signedSpec(b, testKey(b, 1))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeSignedSpecUnverified(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeSignedSpec encodes a spec as a submitter does before
// signing it: the envelope, then the signed spec around it.
func BenchmarkEncodeSignedSpec(b *testing.B) {
	s, _ := signedSpec(b, testKey(b, 1))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Envelope.Encode(); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignResult(b *testing.B) {
	key := testKey(b, 3)
	r := testResult(b, key)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SignResult(key, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSignedResult(b *testing.B) {
	_, data := signedResult(b, testKey(b, 3))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeSignedResult(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSignedResultUnverified(b *testing.B) {
	_, data := signedResult(b, testKey(b, 3))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeSignedResultUnverified(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeSignedResult encodes a result and the signed result
// around it, as a worker does.
func BenchmarkEncodeSignedResult(b *testing.B) {
	s, _ := signedResult(b, testKey(b, 3))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Result.Encode(); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

// executedEntry returns a job.executed entry and its body.
func executedEntry(b *testing.B) (*ExecutedEntry, []byte) {
	key := testKey(b, 1)
	spec, err := SignSpec(key, testEnvelope(b, key))
	if err != nil {
		b.Fatal(err)
	}
	e := &ExecutedEntry{Job: spec.ID, Submitter: spec.Envelope.Submitter, Result: ledgerResult(b, spec, 11, "out")}
	body, err := e.Encode()
	if err != nil {
		b.Fatal(err)
	}
	return e, body
}

func BenchmarkEncodeExecutedEntry(b *testing.B) {
	e, _ := executedEntry(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeExecutedEntry includes the ed25519 verification of the
// signed result inside.
func BenchmarkDecodeExecutedEntry(b *testing.B) {
	_, body := executedEntry(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeExecutedEntry(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExecutedRef(b *testing.B) {
	_, body := executedEntry(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := ExecutedRef(body); err != nil {
			b.Fatal(err)
		}
	}
}
