package ledger

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sys/unix"
)

// benchBody is a typical job.executed body: job CID, result CID and a
// signed result, about 200 bytes.
var benchBody = bytes.Repeat([]byte("r"), 200)

// BenchmarkAppend measures durable appends/s with 1, 16 and 64 concurrent
// appenders (group commit: one write and one fdatasync per batch).
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("appenders=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			l, err := Open(context.Background(), dir, testKey(b, 1), testNetwork, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for g := 0; g < n; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if _, err := l.Append(context.Background(), KindJobExecuted, benchBody); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			st, _ := os.Stat(filepath.Join(dir, LogFileName))
			b.ReportMetric(float64(st.Size())/float64(max(l.Size(), 1)), "disk-B/entry")
		})
	}
}

// benchLog builds (once per process) a log of n entries for the
// verification and proof benchmarks, appending with 64 appenders.
func benchLog(b *testing.B, n int) *Log {
	b.Helper()
	dir := b.TempDir()
	l, err := Open(context.Background(), dir, testKey(b, 1), testNetwork, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	var next atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if _, err := l.Append(context.Background(), KindJobExecuted, benchBody); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return l
}

// BenchmarkVerify measures full verification of an exported log of
// 100 000 entries (signatures in parallel on GOMAXPROCS cores).
func BenchmarkVerify(b *testing.B) {
	const n = 100_000
	l := benchLog(b, n)
	var buf bytes.Buffer
	if _, err := l.Export(context.Background(), &buf); err != nil {
		b.Fatal(err)
	}
	exp := buf.Bytes()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := VerifyExport(context.Background(), bytes.NewReader(exp), ""); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkExport measures writing an export file of 100 000 entries.
func BenchmarkExport(b *testing.B) {
	const n = 100_000
	l := benchLog(b, n)
	var buf bytes.Buffer
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf.Reset()
		if _, err := l.Export(context.Background(), &buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkProve measures inclusion and consistency proofs at 10^6 entries.
// Set SHOAL_LEDGER_BENCH_ENTRIES to change the size (building the log is
// most of the run time).
func BenchmarkProve(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("SHOAL_LEDGER_BENCH_ENTRIES"); s != "" {
		fmt.Sscan(s, &n)
	}
	l := benchLog(b, n)
	size := uint64(n)
	root, err := l.TreeHash(size)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("inclusion", func(b *testing.B) {
		var p tlog.RecordProof
		for i := 0; i < b.N; i++ {
			seq := uint64(i*7919) % size
			p, err = l.ProveEntry(seq, size)
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(p)*tlog.HashSize), "proof-bytes")
	})
	b.Run("inclusion+check", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			seq := uint64(i*7919) % size
			p, err := l.ProveEntry(seq, size)
			if err != nil {
				b.Fatal(err)
			}
			e, err := l.Entry(seq)
			if err != nil {
				b.Fatal(err)
			}
			if err := CheckInclusion(p, size, root, seq, e.Encoded()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("consistency", func(b *testing.B) {
		var p tlog.TreeProof
		for i := 0; i < b.N; i++ {
			old := 1 + uint64(i*104729)%(size-1)
			p, err = l.ProveTree(old, size)
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(p)*tlog.HashSize), "proof-bytes")
	})
	b.Run("reopen", func(b *testing.B) {
		dir := filepath.Dir(l.Path())
		l.Close()
		for i := 0; i < b.N; i++ {
			l2, err := Open(context.Background(), dir, testKey(b, 1), testNetwork, Options{})
			if err != nil {
				b.Fatal(err)
			}
			l2.Close()
		}
	})
}

// BenchmarkEd25519Verify is the baseline for BenchmarkVerify: raw ed25519
// verifications of entry-sized messages per second on all GOMAXPROCS cores.
func BenchmarkEd25519Verify(b *testing.B) {
	k := testKey(b, 1)
	msg := bytes.Repeat([]byte("m"), 400)
	sig, err := k.Sign(msg)
	if err != nil {
		b.Fatal(err)
	}
	pub := k.GetPublic()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if ok, _ := pub.Verify(msg, sig); !ok {
				b.Error("signature does not verify")
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifies/s")
}

// BenchmarkFileSync measures what one durable write of an entry-sized
// frame costs the file system, without the log: a pwrite and an
// fdatasync that append (the file grows, so each sync also commits the
// size change), against the same into space written with zeros before
// (only data to flush). It reports the wall time and the CPU time of this
// process per sync; tmp directories of the test binary decide the disk.
func BenchmarkFileSync(b *testing.B) {
	frame := bytes.Repeat([]byte("f"), 400)
	for _, zeroed := range []bool{false, true} {
		name := "append"
		if zeroed {
			name = "overwrite-zeroed"
		}
		b.Run(name, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "sync"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			if zeroed {
				if _, err := f.WriteAt(make([]byte, b.N*len(frame)), 0); err != nil {
					b.Fatal(err)
				}
				if err := unix.Fdatasync(int(f.Fd())); err != nil {
					b.Fatal(err)
				}
			}
			cpu0 := processCPU(b)
			b.ResetTimer()
			for i := range b.N {
				if _, err := f.WriteAt(frame, int64(i*len(frame))); err != nil {
					b.Fatal(err)
				}
				if err := unix.Fdatasync(int(f.Fd())); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// processCPU returns the user and system time of this process so far.
func processCPU(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
