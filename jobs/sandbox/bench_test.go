package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/shoalnet/shoal/examples"
)

// BenchmarkHelloWarm measures a hello job from Run to outcome with the
// module compiled and in the worker's memory. It reports p50, p99 and the
// CPU time per job of pool and worker together.
func BenchmarkHelloWarm(b *testing.B) {
	p := newPool(b, Config{Slots: 1})
	mod := example(b, "hello")
	run(b, p, newJob(b, mod), time.Minute) // compile
	lat := make([]time.Duration, 0, b.N)
	pids := p.workerPIDs()
	c0 := cpuTime(b, pids)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := newJob(b, mod, "world")
		t0 := time.Now()
		o := run(b, p, j, time.Minute)
		lat = append(lat, time.Since(t0))
		if o.Failure != "" {
			b.Fatal(o.Reason)
		}
	}
	b.StopTimer()
	reportPercentiles(b, lat)
	// CPU of pool and worker together (the job setup in newJob included).
	b.ReportMetric(float64((cpuTime(b, pids)-c0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// BenchmarkColdCompile measures compiling each example from source (no
// disk cache), as a fresh module in a fresh worker sees it.
func BenchmarkColdCompile(b *testing.B) {
	for _, name := range examples.Names() {
		b.Run(name, func(b *testing.B) {
			mod := example(b, name)
			p := newPool(b, Config{Slots: 1, CacheDir: b.TempDir(), MaxModules: 1})
			var total time.Duration
			for i := 0; i < b.N; i++ {
				// A distinct module CID per iteration defeats the memory cache;
				// a fresh cache dir per pool and distinct bytes defeat the disk cache.
				path := filepath.Join(b.TempDir(), "m.wasm")
				code, err := os.ReadFile(mod)
				if err != nil {
					b.Fatal(err)
				}
				code = append(code, customSection(fmt.Sprint(i))...)
				if err := os.WriteFile(path, code, 0o600); err != nil {
					b.Fatal(err)
				}
				j := newJob(b, path, "-h")
				j.task.ModuleCID = fmt.Sprintf("%s-%d", name, i)
				o := run(b, p, j, time.Minute)
				if !o.Compiled {
					b.Fatal("module was not compiled")
				}
				total += time.Duration(o.Compile)
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "compile-ms")
		})
	}
}

// customSection returns a WebAssembly custom section named "shoal-bench"
// holding s; appending it changes a module's bytes but not its meaning.
func customSection(s string) []byte {
	name := "shoal-bench"
	body := append([]byte{byte(len(name))}, name...)
	body = append(body, s...)
	return append([]byte{0, byte(len(body))}, body...)
}

// BenchmarkPiSandboxVsNative runs the CPU-bound pi example (20M samples)
// under the sandbox (warm) and natively, and reports the ratio.
func BenchmarkPiSandboxVsNative(b *testing.B) {
	args := []string{"-seed", "3", "-n", "20000000"}
	p := newPool(b, Config{Slots: 1})
	mod := example(b, "pi")
	run(b, p, newJob(b, mod, "-n", "1"), time.Minute) // compile
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	native, err := examples.Build(ctx, b.TempDir(), "pi", true)
	if err != nil {
		b.Fatal(err)
	}
	var wasmTime, nativeTime time.Duration
	for i := 0; i < b.N; i++ {
		o := run(b, p, newJob(b, mod, args...), 10*time.Minute)
		if o.Failure != "" {
			b.Fatal(o.Reason)
		}
		wasmTime += time.Duration(o.Run)
		t0 := time.Now()
		if out, err := exec.CommandContext(ctx, native, args...).CombinedOutput(); err != nil {
			b.Fatalf("native pi: %v\n%s", err, out)
		}
		nativeTime += time.Since(t0)
	}
	b.ReportMetric(float64(wasmTime.Milliseconds())/float64(b.N), "sandbox-ms")
	b.ReportMetric(float64(nativeTime.Milliseconds())/float64(b.N), "native-ms")
	b.ReportMetric(float64(wasmTime)/float64(nativeTime), "ratio")
}
