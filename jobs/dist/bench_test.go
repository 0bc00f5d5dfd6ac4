package dist

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalnet/shoal/jobs"
	"github.com/shoalnet/shoal/jobs/capacity"
	"github.com/shoalnet/shoal/jobs/quorum"
)

// benchCluster is five nodes on loopback; every node is a worker with four
// slots and node 0 submits. The executor is the fake one (no sandbox), so
// the figures are the cost of distribution: scheduling, streams, offers,
// commit-reveal, signatures and persistence.
func benchCluster(b *testing.B) *cluster {
	c := newCluster(b, 5, clusterOpts{workerCfg: func(i int, wc *WorkerConfig) {
		wc.Slots, wc.Queue = 4, 16
	}})
	var entries []capacity.Entry
	for _, nd := range c.nodes[1:] {
		entries = append(entries, entryFor(nd.id, 4))
	}
	c.view.set(entries)
	return c
}

func runOne(b *testing.B, c *cluster, spec *jobs.SignedSpec) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.mgr.Submit(ctx, spec); err != nil {
		b.Fatal(err)
	}
	st, err := c.mgr.Wait(ctx, spec.ID)
	if err != nil || st.Verdict != quorum.Verified {
		b.Fatalf("job %s: %s (%s), %v", spec.ID, st.Verdict, st.Reason, err)
	}
}

func reportLatency(b *testing.B, d []time.Duration) {
	slices.Sort(d)
	q := func(p float64) float64 {
		return float64(d[min(len(d)-1, int(p*float64(len(d))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkJobLatency measures submit → verified verdict, one job at a time.
func BenchmarkJobLatency(b *testing.B) {
	for _, replicas := range []int{1, 3} {
		b.Run(map[int]string{1: "replicas=1", 3: "replicas=3"}[replicas], func(b *testing.B) {
			c := benchCluster(b)
			q := replicas/2 + 1
			specs := make([]*jobs.SignedSpec, b.N)
			for i := range specs {
				specs[i] = c.spec(replicas, q)
			}
			runOne(b, c, c.spec(replicas, q)) // warm connections
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
}

// BenchmarkJobThroughput keeps 64 single-replica jobs in flight and reports
// jobs/s.
func BenchmarkJobThroughput(b *testing.B) {
	c := benchCluster(b)
	specs := make([]*jobs.SignedSpec, b.N)
	for i := range specs {
		specs[i] = c.spec(1, 1)
	}
	runOne(b, c, c.spec(1, 1))
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < 64; w++ {
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
}

// BenchmarkCheckAnnouncements is what every node's results-topic validator
// does with each envelope: a batch of 10 two-result announcements, the
// envelope's signature checked, the bodies decoded and their verdicts
// recomputed (not their embedded signatures). Reported per announcement.
func BenchmarkCheckAnnouncements(b *testing.B) {
	_, data := sealedBatch(b, testKey(b, 1), 10)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CheckAnnouncements(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*10), "µs/announcement")
}
