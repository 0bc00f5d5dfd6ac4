package jobs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// seeds returns valid encodings of every record, used by the fuzz targets
// and written to testdata/fuzz by TestWriteFuzzSeeds.
func seeds(t testing.TB) map[string][]byte {
	key := testKey(t, 1)
	env := testEnvelope(t, key)
	eb, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	cb, err := env.Computation.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ss, err := SignSpec(key, env)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := ss.Encode()
	if err != nil {
		t.Fatal(err)
	}
	wkey := testKey(t, 3)
	res := testResult(t, wkey)
	rb, err := res.Encode()
	if err != nil {
		t.Fatal(err)
	}
	sr, err := SignResult(wkey, res)
	if err != nil {
		t.Fatal(err)
	}
	srb, err := sr.Encode()
	if err != nil {
		t.Fatal(err)
	}
	lb := ledgerSeeds(t, ss, sr)
	return map[string][]byte{
		"FuzzDecodeSubmittedEntry": lb[0],
		"FuzzDecodeExecutedEntry":  lb[1],
		"FuzzDecodeVerdictEntry":   lb[2],
		"FuzzDecodeEnvelope":       eb,
		"FuzzDecodeComputation":    cb,
		"FuzzDecodeSignedSpec":     sb,
		"FuzzDecodeResult":         rb,
		"FuzzDecodeSignedResult":   srb,
	}
}

// TestWriteFuzzSeeds rewrites the checked-in seed corpora when
// JOBS_WRITE_FUZZ_SEEDS=1; otherwise it checks that they exist.
func TestWriteFuzzSeeds(t *testing.T) {
	for name, b := range seeds(t) {
		dir := filepath.Join("testdata", "fuzz", name)
		path := filepath.Join(dir, "valid")
		if os.Getenv("JOBS_WRITE_FUZZ_SEEDS") != "1" {
			if _, err := os.Stat(path); err != nil {
				t.Errorf("seed corpus %s missing: run JOBS_WRITE_FUZZ_SEEDS=1 go test -run TestWriteFuzzSeeds ./jobs", path)
			}
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		data := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fuzzDecoder checks that decode never panics and that whatever it accepts
// re-encodes to the same bytes.
func fuzzDecoder(f *testing.F, name string, decode func([]byte) ([]byte, error)) {
	f.Add(seeds(f)[name])
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		again, err := decode(data)
		if err != nil {
			return
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("accepted %x but re-encodes to %x", data, again)
		}
	})
}

func FuzzDecodeEnvelope(f *testing.F) {
	fuzzDecoder(f, "FuzzDecodeEnvelope", func(b []byte) ([]byte, error) {
		e, err := DecodeEnvelope(b)
		if err != nil {
			return nil, err
		}
		return e.Encode()
	})
}

func FuzzDecodeComputation(f *testing.F) {
	fuzzDecoder(f, "FuzzDecodeComputation", func(b []byte) ([]byte, error) {
		c, err := DecodeComputation(b)
		if err != nil {
			return nil, err
		}
		return c.Encode()
	})
}

func FuzzDecodeSignedSpec(f *testing.F) {
	fuzzDecoder(f, "FuzzDecodeSignedSpec", func(b []byte) ([]byte, error) {
		s, err := DecodeSignedSpec(b)
		if err != nil {
			return nil, err
		}
		return s.Encode()
	})
}

func FuzzDecodeResult(f *testing.F) {
	fuzzDecoder(f, "FuzzDecodeResult", func(b []byte) ([]byte, error) {
		r, err := DecodeResult(b)
		if err != nil {
			return nil, err
		}
		return r.Encode()
	})
}

func FuzzDecodeSignedResult(f *testing.F) {
	fuzzDecoder(f, "FuzzDecodeSignedResult", func(b []byte) ([]byte, error) {
		s, err := DecodeSignedResult(b)
		if err != nil {
			return nil, err
		}
		return s.Encode()
	})
}

func FuzzDecodeSubmittedEntry(f *testing.F) {
	fuzzDecoder(f, "FuzzDecodeSubmittedEntry", func(b []byte) ([]byte, error) {
		e, err := DecodeSubmittedEntry(b)
		if err != nil {
			return nil, err
		}
		return e.Encode()
	})
}

func FuzzDecodeExecutedEntry(f *testing.F) {
	fuzzDecoder(f, "FuzzDecodeExecutedEntry", func(b []byte) ([]byte, error) {
		e, err := DecodeExecutedEntry(b)
		if err != nil {
			return nil, err
		}
		return e.Encode()
	})
}

func FuzzDecodeVerdictEntry(f *testing.F) {
	fuzzDecoder(f, "FuzzDecodeVerdictEntry", func(b []byte) ([]byte, error) {
		e, err := DecodeVerdictEntry(b)
		if err != nil {
			return nil, err
		}
		return e.Encode()
	})
}
