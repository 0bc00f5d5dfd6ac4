package dist

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalnet/shoal/examples"
	"github.com/shoalnet/shoal/jobs"
	"github.com/shoalnet/shoal/jobs/capacity"
	"github.com/shoalnet/shoal/jobs/jobstest"
	"github.com/shoalnet/shoal/jobs/local"
	"github.com/shoalnet/shoal/jobs/sandbox"
)

func TestMain(m *testing.M) {
	// The test binary doubles as the sandbox worker of the benchmarks below.
	if sandbox.IsWorker() {
		os.Exit(sandbox.RunWorker())
	}
	os.Exit(m.Run())
}

// sandboxCluster is five nodes on loopback whose workers run jobs in real
// sandbox pools (two warm worker processes each) through jobs/local. The
// nodes share one in-memory block store, so block transfer is not part of
// the figures (docs/performance.md, "Payload transfer", has those).
func sandboxCluster(b *testing.B) (*cluster, *jobs.Computation) {
	dir := b.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	wasm, err := examples.Build(ctx, dir, "hello", false)
	if err != nil {
		b.Fatal(err)
	}
	mod, err := os.ReadFile(wasm)
	if err != nil {
		b.Fatal(err)
	}
	var blocks jobstest.MemBlocks
	comp := &jobs.Computation{Module: blocks.AddBytes(mod), Args: []string{"world"}}
	cache := filepath.Join(dir, "cache")
	c := newCluster(b, 5, clusterOpts{workerCfg: func(i int, wc *WorkerConfig) {
		pool, err := sandbox.NewPool(ctx, sandbox.Config{Slots: 2, Dir: b.TempDir(), CacheDir: cache})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { pool.Close() })
		r, err := local.New(local.Config{Sandbox: pool, Blocks: &blocks, Key: wc.Key, Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		wc.Executor, wc.Slots, wc.Queue = r, 2, 16
	}})
	var entries []capacity.Entry
	for _, nd := range c.nodes[1:] {
		entries = append(entries, entryFor(nd.id, 2))
	}
	c.view.set(entries)
	return c, comp
}

func (c *cluster) helloSpec(b *testing.B, comp *jobs.Computation, replicas int) *jobs.SignedSpec {
	env, err := jobs.NewEnvelope(c.nodes[0].id, *comp, cryptoRand{}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	env.Replicas, env.Quorum = replicas, replicas/2+1
	env.Limits.WallTime = 10 * time.Second
	s, err := jobs.SignSpec(c.nodes[0].key, env)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

type cryptoRand struct{}

var randSeq atomic.Uint64

func (cryptoRand) Read(p []byte) (int, error) {
	n := randSeq.Add(1)
	for i := range p {
		p[i] = byte(n >> (8 * (i % 8)))
	}
	return len(p), nil
}

// BenchmarkHelloAcrossNetwork measures the hello example from submit to
// verified verdict on a 5-node loopback cluster with real sandboxes, the
// module compiled and warm in every worker.
func BenchmarkHelloAcrossNetwork(b *testing.B) {
	c, comp := sandboxCluster(b)
	// Warm every worker process of every node.
	for i := 0; i < 16; i++ {
		runOne(b, c, c.helloSpec(b, comp, 3))
	}
	// The same job run by one node's executor directly, without the network:
	// the difference to replicas=1 is the cost of distribution.
	b.Run("latency/executor-only", func(b *testing.B) {
		exec := c.nodes[1].worker.cfg.Executor
		d := make([]time.Duration, b.N)
		specs := make([]*jobs.SignedSpec, b.N)
		for i := range specs {
			specs[i] = c.helloSpec(b, comp, 1)
		}
		b.ResetTimer()
		for i := range specs {
			start := time.Now()
			if _, err := exec.Execute(context.Background(), specs[i], nil); err != nil {
				b.Fatal(err)
			}
			d[i] = time.Since(start)
		}
		b.StopTimer()
		reportLatency(b, d)
	})
	for _, replicas := range []int{1, 3} {
		b.Run(map[int]string{1: "latency/replicas=1", 3: "latency/replicas=3"}[replicas], func(b *testing.B) {
			specs := make([]*jobs.SignedSpec, b.N)
			for i := range specs {
				specs[i] = c.helloSpec(b, comp, replicas)
			}
			d := make([]time.Duration, b.N)
			b.ResetTimer()
			for i := range specs {
				start := time.Now()
				runOne(b, c, specs[i])
				d[i] = time.Since(start)
			}
			b.StopTimer()
			reportLatency(b, d)
		})
	}
	b.Run("throughput", func(b *testing.B) {
		specs := make([]*jobs.SignedSpec, b.N)
		for i := range specs {
			specs[i] = c.helloSpec(b, comp, 1)
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		b.ResetTimer()
		start := time.Now()
		for w := 0; w < 32; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= len(specs) {
						return
					}
					runOne(b, c, specs[i])
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
		b.ReportMetric(0, "ns/op")
	})
}
