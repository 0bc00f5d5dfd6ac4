package sandbox

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/shoalnet/shoal/jobs"
)

// maxMessageSize bounds one message on the pipe between pool and worker.
const maxMessageSize = 1 << 20

// Message types on the pipe. The pool sends hello once, then run; the
// worker answers hello with ready, and each run with started (module
// compiled, program about to start) and then done.
const (
	msgHello   = "hello"
	msgReady   = "ready"
	msgRun     = "run"
	msgStarted = "started"
	msgDone    = "done"
)

// A message is one frame on the pipe: a 4-byte big-endian length and that
// many bytes of JSON. Exactly the field matching Type is set.
type message struct {
	Type    string   `json:"type"`
	Hello   *hello   `json:"hello,omitempty"`
	Ready   *ready   `json:"ready,omitempty"`
	Run     *Task    `json:"run,omitempty"`
	Started *started `json:"started,omitempty"`
	Done    *Outcome `json:"done,omitempty"`
}

// hello configures a fresh worker.
type hello struct {
	CacheDir     string `json:"cache_dir"`     // compilation cache dir, "" for none
	MaxModules   int    `json:"max_modules"`   // compiled modules kept in memory
	AddressSpace uint64 `json:"address_space"` // RLIMIT_AS in bytes, 0 for none
	// ReadDirs and WriteDirs, when either is set, confine the worker with
	// Landlock to reading under both and writing under WriteDirs.
	ReadDirs  []string `json:"read_dirs"`
	WriteDirs []string `json:"write_dirs"`
}

// ready answers hello.
type ready struct {
	PID      int  `json:"pid"`
	Confined bool `json:"confined"` // Landlock is in force
}

// started says the module compiled and the program starts now; the wall
// time runs from here.
type started struct {
	Compiled bool `json:"compiled"` // compiled (from source or the disk cache), not found in memory
}

// A Task is one run of a module, as the worker sees it: host paths and
// limits, no key, no repo. All paths are absolute.
type Task struct {
	ModuleCID  string   `json:"module_cid"`  // names the module in the in-memory cache
	ModulePath string   `json:"module_path"` // where to read the module on a cache miss
	Seed       string   `json:"seed"`        // the computation CID; seeds clock and random
	Args       []string `json:"args"`        // after argv[0]
	Env        []string `json:"env"`         // KEY=VALUE, sorted
	InputsDir  string   `json:"inputs_dir"`  // mounted read-only at /inputs; "" for none
	OutputsDir string   `json:"outputs_dir"` // mounted read-write at /outputs
	StdoutPath string   `json:"stdout_path"` // captured stdout is written here (see Inline)
	StderrPath string   `json:"stderr_path"` // captured stderr is written here (see Inline)
	Memory     uint64   `json:"memory"`      // linear memory limit, bytes
	Stdout     uint64   `json:"stdout"`      // stdout limit, bytes
	Stderr     uint64   `json:"stderr"`      // stderr limit, bytes
	Outputs    uint64   `json:"outputs"`     // bytes the program may write under /outputs
	// Inline is how many bytes of stdout, and of stderr, also come back
	// in the Outcome: the file of a stream that stays within it is emptied
	// at the end, so the node need not read it. Every byte is written to
	// the files as the program writes it all the same, so that a worker
	// killed mid-run leaves them. 0 returns nothing inline. At most
	// MaxInline.
	Inline uint64 `json:"inline"`
}

// An Outcome is how one run ended.
type Outcome struct {
	ExitCode   int64        `json:"exit_code"` // -1 when Failure is set
	Failure    jobs.Failure `json:"failure"`
	Reason     string       `json:"reason"`
	PeakMemory uint64       `json:"peak_memory"` // bytes of linear memory at its largest
	Compiled   bool         `json:"compiled"`    // the worker compiled the module for this run
	Compile    int64        `json:"compile_ns"`  // time spent compiling (or loading from the disk cache)
	Run        int64        `json:"run_ns"`      // time from start to exit
	Written    uint64       `json:"written"`     // bytes written under /outputs
	// StdoutInline says Stdout holds the whole of stdout and its file is
	// empty or absent; otherwise the capture is in the file at
	// Task.StdoutPath (absent when the program wrote nothing). The same
	// for stderr.
	StdoutInline bool   `json:"stdout_inline"`
	Stdout       []byte `json:"stdout,omitempty"`
	StderrInline bool   `json:"stderr_inline"`
	Stderr       []byte `json:"stderr,omitempty"`
	// OutputsUntouched says the program created, changed and removed
	// nothing under /outputs: the directory is as the task found it.
	// False means it may have changed (always, when a worker crashed).
	OutputsUntouched bool `json:"outputs_untouched"`
}

// MaxInline bounds Task.Inline: two streams of it, in JSON, fit in one
// message on the pipe.
const MaxInline = 256 << 10

// Validate checks t and returns an error naming the first bad field.
func (t *Task) Validate() error {
	if t.ModuleCID == "" || t.Seed == "" {
		return errors.New("sandbox: task needs module_cid and seed")
	}
	for name, p := range map[string]string{"module_path": t.ModulePath, "outputs_dir": t.OutputsDir,
		"stdout_path": t.StdoutPath, "stderr_path": t.StderrPath} {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("sandbox: task.%s %q must be an absolute path", name, p)
		}
	}
	if t.InputsDir != "" && !filepath.IsAbs(t.InputsDir) {
		return fmt.Errorf("sandbox: task.inputs_dir %q must be an absolute path", t.InputsDir)
	}
	for i, kv := range t.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("sandbox: task.env[%d] %q is not KEY=VALUE", i, kv)
		}
	}
	if t.Memory < jobs.MinMemory || t.Memory > jobs.MaxMemory {
		return fmt.Errorf("sandbox: task.memory %d is outside [%d, %d]", t.Memory, jobs.MinMemory, uint64(jobs.MaxMemory))
	}
	if t.Stdout > jobs.MaxStreamBytes || t.Stderr > jobs.MaxStreamBytes || t.Outputs > jobs.MaxOutputBytes {
		return errors.New("sandbox: task stdout, stderr or outputs limit is out of range")
	}
	if t.Inline > MaxInline {
		return fmt.Errorf("sandbox: task.inline %d is more than %d", t.Inline, MaxInline)
	}
	return nil
}

// validate checks that m carries exactly the body its type names, and that
// the body is valid.
func (m *message) validate() error {
	set := 0
	for _, p := range []bool{m.Hello != nil, m.Ready != nil, m.Run != nil, m.Started != nil, m.Done != nil} {
		if p {
			set++
		}
	}
	if set != 1 {
		return fmt.Errorf("sandbox: %q message has %d bodies, want 1", m.Type, set)
	}
	ok := false
	switch m.Type {
	case msgHello:
		ok = m.Hello != nil && m.Hello.MaxModules > 0 && (m.Hello.CacheDir == "" || filepath.IsAbs(m.Hello.CacheDir)) &&
			allAbs(m.Hello.ReadDirs) && allAbs(m.Hello.WriteDirs)
	case msgReady:
		ok = m.Ready != nil && m.Ready.PID > 0
	case msgRun:
		if m.Run != nil {
			return m.Run.Validate()
		}
	case msgStarted:
		ok = m.Started != nil
	case msgDone:
		ok = m.Done != nil && m.Done.Failure.Valid() && (m.Done.Failure == jobs.FailureNone || m.Done.ExitCode == -1) &&
			m.Done.ExitCode >= -1 && m.Done.ExitCode <= 1<<32-1 && len(m.Done.Reason) <= jobs.MaxReasonSize &&
			m.Done.inlineValid()
	default:
		return fmt.Errorf("sandbox: unknown message type %q", m.Type)
	}
	if !ok {
		return fmt.Errorf("sandbox: malformed %q message", m.Type)
	}
	return nil
}

// inlineValid reports whether o's inline captures are within MaxInline and
// present only when marked inline.
func (o *Outcome) inlineValid() bool {
	return len(o.Stdout) <= MaxInline && len(o.Stderr) <= MaxInline &&
		(o.StdoutInline || len(o.Stdout) == 0) && (o.StderrInline || len(o.Stderr) == 0)
}

// writeMessage frames and writes m.
func writeMessage(w io.Writer, m *message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("sandbox: encode %s message: %w", m.Type, err)
	}
	if len(b) > maxMessageSize {
		return fmt.Errorf("sandbox: %s message is %d bytes, more than %d", m.Type, len(b), maxMessageSize)
	}
	frame := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(frame, uint32(len(b)))
	copy(frame[4:], b)
	if _, err := w.Write(frame); err != nil {
		return fmt.Errorf("sandbox: write %s message: %w", m.Type, err)
	}
	return nil
}

// readMessage reads one frame, checking its length before reading the
// body, and decodes it strictly.
func readMessage(r io.Reader) (*message, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("sandbox: read message header: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > maxMessageSize {
		return nil, fmt.Errorf("sandbox: message length %d is outside [1, %d]", n, maxMessageSize)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("sandbox: read %d-byte message: %w", n, err)
	}
	return decodeMessage(b)
}

// decodeMessage decodes one message body strictly: unknown fields,
// trailing data and invalid bodies are errors.
func decodeMessage(b []byte) (*message, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m message
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("sandbox: message does not decode: %w", err)
	}
	if dec.More() {
		return nil, errors.New("sandbox: message has trailing data")
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

func allAbs(paths []string) bool {
	for _, p := range paths {
		if !filepath.IsAbs(p) {
			return false
		}
	}
	return true
}
