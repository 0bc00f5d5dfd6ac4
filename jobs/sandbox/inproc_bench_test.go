package sandbox

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkHelloInProcess measures a warm hello run in the executor the
// workers use, in the benchmark's own process: the cost of the run without
// the pipe round trip and the second process, and the one to profile with
// -cpuprofile. It reports p50, p99 and the CPU time per run.
func BenchmarkHelloInProcess(b *testing.B) {
	ctx := context.Background()
	ex, err := newExecutor(ctx, &hello{CacheDir: filepath.Join(builtDir, "cache"), MaxModules: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer ex.close(ctx)
	mod := example(b, "hello")
	noop := func(bool) error { return nil }
	if o := ex.run(ctx, newJob(b, mod, "world").task, noop); o.Failure != "" {
		b.Fatal(o.Reason)
	}
	lat := make([]time.Duration, 0, b.N)
	var cpu time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		j := newJob(b, mod, "world")
		b.StartTimer()
		t0, c0 := time.Now(), cpuTime(b, nil)
		if o := ex.run(ctx, j.task, noop); o.Failure != "" {
			b.Fatal(o.Reason)
		}
		lat = append(lat, time.Since(t0))
		cpu += cpuTime(b, nil) - c0
	}
	b.StopTimer()
	reportPercentiles(b, lat)
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}
