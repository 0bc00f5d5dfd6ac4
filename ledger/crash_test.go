package ledger

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// crashChildEnv, when set to a directory, makes the test binary act as the
// crash-test child: it appends to the log in that directory from several
// goroutines and prints each sequence number once Append has returned it.
const crashChildEnv = "SHOAL_LEDGER_CRASH_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	os.Exit(m.Run())
}

func crashChild(dir string) {
	k, err := keyForSeed(1)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	l, err := Open(context.Background(), dir, k, testNetwork, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				e, err := l.Append(context.Background(), KindNote, fmt.Appendf(nil, "crash %d/%d %s", g, i, strings.Repeat("x", i%300)))
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				// One write(2) per line, after durability: the parent
				// treats every line it reads as acknowledged.
				os.Stdout.WriteString(strconv.FormatUint(e.Seq, 10) + " " + e.CID().String() + "\n")
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestCrashSafety runs the child and SIGKILLs it at random moments, then
// reopens the log and checks that every entry the child acknowledged is
// there with the same CID and that the log verifies. It runs 200 times by
// default (20 under -short); set SHOAL_LEDGER_CRASH_ITERATIONS for more.
func TestCrashSafety(t *testing.T) {
	iterations := 200
	if testing.Short() {
		iterations = 20
	}
	if s := os.Getenv("SHOAL_LEDGER_CRASH_ITERATIONS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("SHOAL_LEDGER_CRASH_ITERATIONS=%q: %v", s, err)
		}
		iterations = n
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	acked := map[uint64]string{} // seq → CID, over all iterations
	for it := 0; it < iterations; it++ {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		// Kill after a random number of acknowledged entries, or a random
		// short time after the first one (which may be mid-batch).
		wantLines := rng.Intn(25)
		delay := time.Duration(rng.Intn(8000)) * time.Microsecond
		useDelay := rng.Intn(2) == 0
		deadline := time.After(20 * time.Second)
		read := 0
		record := func(line string) {
			seqText, c, ok := strings.Cut(line, " ")
			seq, err := strconv.ParseUint(seqText, 10, 64)
			if !ok || err != nil {
				t.Fatalf("iteration %d: child printed %q", it, line)
			}
			if prev, ok := acked[seq]; ok && prev != c {
				t.Fatalf("iteration %d: seq %d acknowledged as %s and %s", it, seq, prev, c)
			}
			acked[seq] = c
			read++
		}
	wait:
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("iteration %d: child exited early: %s", it, stderr.String())
				}
				record(line)
				if useDelay && read == 1 {
					time.Sleep(delay)
					break wait
				}
				if !useDelay && read >= wantLines {
					break wait
				}
			case <-deadline:
				t.Fatalf("iteration %d: no output from child within 20s: %s", it, stderr.String())
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		for line := range lines {
			record(line)
		}
		cmd.Wait()

		l, err := Open(context.Background(), dir, testKey(t, 1), testNetwork, Options{})
		if err != nil {
			t.Fatalf("iteration %d: reopen after SIGKILL: %v", it, err)
		}
		size := l.Size()
		for seq, c := range acked {
			if seq >= size {
				l.Close()
				t.Fatalf("iteration %d: acknowledged entry %d lost (log has %d)", it, seq, size)
			}
			e, err := l.Entry(seq)
			if err != nil || e.CID().String() != c {
				l.Close()
				t.Fatalf("iteration %d: entry %d is %v (%v), acknowledged as %s", it, seq, e, err, c)
			}
		}
		if it%25 == 0 || it == iterations-1 {
			var buf bytes.Buffer
			if _, err := l.Export(context.Background(), &buf); err != nil {
				t.Fatal(err)
			}
			if _, err := VerifyExport(context.Background(), &buf, l.Origin()); err != nil {
				l.Close()
				t.Fatalf("iteration %d: log does not verify: %v", it, err)
			}
		}
		l.Close()
	}
	t.Logf("%d kills, %d acknowledged entries, all present", iterations, len(acked))
}
