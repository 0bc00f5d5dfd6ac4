package jobs

import "testing"

// The codec's hot paths: every node that checks a job's spec or a result
// (the worker, the submitter, every node an announcement reaches) decodes,
// re-encodes and verifies it; workers and submitters sign.

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
