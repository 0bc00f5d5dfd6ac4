package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// WorkerEnv is the environment variable that turns a Shoal binary into a
// sandbox worker: when it is "1", main must call RunWorker before anything
// else and exit with its result. The pool sets it, and nothing else, in
// the environment of the workers it starts.
const WorkerEnv = "SHOAL_SANDBOX_WORKER"

// IsWorker reports whether this process was started as a sandbox worker.
func IsWorker() bool { return os.Getenv(WorkerEnv) == "1" }

// RunWorker runs the sandbox worker loop: it reads tasks from stdin, runs
// each in wazero and writes the outcomes to stdout, until stdin closes. It
// returns the process exit code (0 after a clean shutdown). Diagnostics go
// to stderr, which the pool keeps the tail of.
func RunWorker() int {
	// A worker runs one job at a time, on one thread (see serve), and its
	// programs are single-threaded: a second P only adds idle threads to
	// wake and a garbage collector that spreads to another core, which
	// measured about 10 % more CPU per hello job in a testnet.
	runtime.GOMAXPROCS(1)
	in := bufio.NewReader(os.Stdin)
	out := os.Stdout
	// Nothing else may write to the protocol pipe.
	os.Stdout = os.Stderr
	if err := serve(context.Background(), in, out); err != nil {
		fmt.Fprintf(os.Stderr, "shoal sandbox worker: %v\n", err)
		return 1
	}
	return 0
}

// serve speaks the worker side of the pipe protocol. It keeps one OS
// thread for itself, so that the Landlock confinement of that thread
// covers every file the worker opens for a job.
func serve(ctx context.Context, in io.Reader, out io.Writer) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	m, err := readMessage(in)
	if err != nil {
		return err
	}
	if m.Type != msgHello {
		return fmt.Errorf("first message is %q, want hello", m.Type)
	}
	if as := m.Hello.AddressSpace; as > 0 {
		lim := unix.Rlimit{Cur: as, Max: as}
		if err := unix.Setrlimit(unix.RLIMIT_AS, &lim); err != nil {
			return fmt.Errorf("set address-space limit %d: %w", as, err)
		}
	}
	ex, err := newExecutor(ctx, m.Hello)
	if err != nil {
		return err
	}
	defer ex.close(ctx)
	confined := false
	if len(m.Hello.ReadDirs)+len(m.Hello.WriteDirs) > 0 {
		if confined, err = confine(m.Hello.ReadDirs, m.Hello.WriteDirs); err != nil {
			return fmt.Errorf("confine worker: %w", err)
		}
	}
	if err := writeMessage(out, &message{Type: msgReady, Ready: &ready{PID: os.Getpid(), Confined: confined}}); err != nil {
		return err
	}
	for {
		m, err := readMessage(in)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if m.Type != msgRun {
			return fmt.Errorf("got %q message, want run", m.Type)
		}
		o := ex.run(ctx, m.Run, func(compiled bool) error {
			return writeMessage(out, &message{Type: msgStarted, Started: &started{Compiled: compiled}})
		})
		if err := writeMessage(out, &message{Type: msgDone, Done: o}); err != nil {
			return err
		}
	}
}
