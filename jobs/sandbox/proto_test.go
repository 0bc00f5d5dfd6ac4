package sandbox

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func validTask() *Task {
	return &Task{ModuleCID: "bafk", ModulePath: "/m.wasm", Seed: "bafy", Args: []string{"a"}, Env: []string{"K=V"},
		InputsDir: "/in", OutputsDir: "/out", StdoutPath: "/o", StderrPath: "/e",
		Memory: 1 << 20, Stdout: 10, Stderr: 10, Outputs: 10}
}

func protoSeeds() [][]byte {
	var out [][]byte
	for _, m := range []*message{
		{Type: msgHello, Hello: &hello{CacheDir: "/c", MaxModules: 4, AddressSpace: 1 << 30}},
		{Type: msgReady, Ready: &ready{PID: 7}},
		{Type: msgRun, Run: validTask()},
		{Type: msgStarted, Started: &started{Compiled: true}},
		{Type: msgDone, Done: &Outcome{ExitCode: 3, PeakMemory: 1 << 20, Run: 5}},
		{Type: msgDone, Done: &Outcome{ExitCode: -1, Failure: "wall_time", Reason: "too slow"}},
		{Type: msgDone, Done: &Outcome{StdoutInline: true, Stdout: []byte("hi\n"), StderrInline: true, OutputsUntouched: true}},
	} {
		b, _ := json.Marshal(m)
		out = append(out, b)
	}
	return out
}

func TestMessageRoundTrip(t *testing.T) {
	for _, b := range protoSeeds() {
		m, err := decodeMessage(b)
		if err != nil {
			t.Fatalf("decodeMessage(%s) = %v", b, err)
		}
		var buf bytes.Buffer
		if err := writeMessage(&buf, m); err != nil {
			t.Fatal(err)
		}
		m2, err := readMessage(&buf)
		if err != nil || m2.Type != m.Type {
			t.Fatalf("readMessage(writeMessage(%s)) = %v, %v", m.Type, m2, err)
		}
	}
}

func TestMessageRejects(t *testing.T) {
	bad := []string{
		`{}`,
		`{"type":"run"}`,
		`{"type":"bogus","ready":{"pid":1}}`,
		`{"type":"ready","ready":{"pid":0}}`,
		`{"type":"ready","ready":{"pid":1},"started":{"compiled":false}}`,
		`{"type":"ready","ready":{"pid":1},"extra":1}`,
		`{"type":"ready","ready":{"pid":1}} {}`,
		`{"type":"done","done":{"exit_code":0,"failure":"bogus"}}`,
		`{"type":"done","done":{"exit_code":2,"failure":"trap"}}`,
		`{"type":"done","done":{"exit_code":-7}}`,
		`{"type":"done","done":{"exit_code":0,"stdout":"aGk="}}`,
		`{"type":"done","done":{"exit_code":0,"stderr_inline":false,"stderr":"aGk="}}`,
		`{"type":"hello","hello":{"cache_dir":"relative","max_modules":1,"address_space":0}}`,
	}
	for _, s := range bad {
		if _, err := decodeMessage([]byte(s)); err == nil {
			t.Errorf("decodeMessage(%s) = nil error", s)
		}
	}
	tasks := map[string]func(*Task){
		"relative module":  func(t *Task) { t.ModulePath = "m.wasm" },
		"relative outputs": func(t *Task) { t.OutputsDir = "out" },
		"relative inputs":  func(t *Task) { t.InputsDir = "in" },
		"env":              func(t *Task) { t.Env = []string{"NOEQUALS"} },
		"memory":           func(t *Task) { t.Memory = 1 },
		"stdout":           func(t *Task) { t.Stdout = 1 << 40 },
		"seed":             func(t *Task) { t.Seed = "" },
		"inline":           func(t *Task) { t.Inline = MaxInline + 1 },
	}
	for name, mutate := range tasks {
		task := validTask()
		mutate(task)
		if err := task.Validate(); err == nil {
			t.Errorf("%s: Validate() = nil error", name)
		}
	}
	// Frame lengths are checked before the body is read.
	for _, n := range []uint32{0, maxMessageSize + 1, 1 << 31} {
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], n)
		if _, err := readMessage(bytes.NewReader(hdr[:])); err == nil || !strings.Contains(err.Error(), "length") {
			t.Errorf("readMessage(length %d) = %v, want a length error", n, err)
		}
	}
}

// TestMessageMangled bumps every byte and cuts every prefix of valid
// frames: decoding must fail or give a valid message, never panic.
func TestMessageMangled(t *testing.T) {
	for _, b := range protoSeeds() {
		for i := range b {
			m := append([]byte(nil), b...)
			m[i]++
			if msg, err := decodeMessage(m); err == nil {
				if err := msg.validate(); err != nil {
					t.Errorf("decodeMessage accepted an invalid message: %s", m)
				}
			}
			if _, err := decodeMessage(b[:i]); err == nil {
				t.Errorf("decodeMessage(%q) (a prefix) = nil error", b[:i])
			}
		}
	}
}

// TestWriteProtoSeeds rewrites the fuzz seed corpus when
// JOBS_WRITE_FUZZ_SEEDS=1; otherwise it checks that it exists.
func TestWriteProtoSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeMessage")
	for i, b := range protoSeeds() {
		path := filepath.Join(dir, fmt.Sprintf("seed%d", i))
		if os.Getenv("JOBS_WRITE_FUZZ_SEEDS") != "1" {
			if _, err := os.Stat(path); err != nil {
				t.Errorf("seed %s missing: run JOBS_WRITE_FUZZ_SEEDS=1 go test -run TestWriteProtoSeeds ./jobs/sandbox", path)
			}
			continue
		}
		os.MkdirAll(dir, 0o755)
		if err := os.WriteFile(path, []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func FuzzDecodeMessage(f *testing.F) {
	for _, b := range protoSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMessage(b)
		if err != nil {
			return
		}
		if err := m.validate(); err != nil {
			t.Fatalf("accepted invalid message %q: %v", b, err)
		}
		var buf bytes.Buffer
		if err := writeMessage(&buf, m); err != nil {
			t.Fatal(err)
		}
		if _, err := readMessage(&buf); err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
	})
}
