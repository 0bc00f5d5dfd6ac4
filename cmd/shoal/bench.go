package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/examples"
	"github.com/shoalnet/shoal/node/client"
	"github.com/shoalnet/shoal/testnet"
)

// benchReport is what `shoal bench` measures; --json prints it.
type benchReport struct {
	Nodes          int     `json:"nodes"`
	DiscoveryMS    float64 `json:"discovery_ms"` // start → every node sees every other's capacity
	Latency1P50MS  float64 `json:"latency_1_replica_p50_ms"`
	Latency1P99MS  float64 `json:"latency_1_replica_p99_ms"`
	Latency3P50MS  float64 `json:"latency_3_replicas_p50_ms"`
	Latency3P99MS  float64 `json:"latency_3_replicas_p99_ms"`
	JobsPerSecond  float64 `json:"jobs_per_second"`
	TransferMBps   float64 `json:"transfer_mb_per_s"`
	TransferFirstB float64 `json:"transfer_first_byte_ms"`
	RSSMaxMB       float64 `json:"rss_max_mb"`
	RSSAvgMB       float64 `json:"rss_avg_mb"`
	// CPU per job in the throughput measurement, of all daemons and of
	// their sandbox worker processes: the figure that does not depend on
	// what else the machine runs. Zero when the processes cannot be read.
	DaemonCPUPerJobMS  float64 `json:"daemon_cpu_per_job_ms"`
	SandboxCPUPerJobMS float64 `json:"sandbox_cpu_per_job_ms"`
	// The benchmark's own CPU per job in the throughput measurement (its
	// API requests share the machine with the daemons), and how many jobs
	// it submitted per request.
	ClientCPUPerJobMS float64 `json:"client_cpu_per_job_ms"`
	Batch             int     `json:"batch"`
	// Gossip per job in the throughput measurement, summed over the
	// nodes: messages sent (every copy to every peer), of them the
	// copies a receiver already had, and gossipsub frames sent (messages
	// and control). Zero when the nodes' metrics cannot be read.
	GossipSentPerJob       float64 `json:"gossip_sent_per_job"`
	GossipDuplicatesPerJob float64 `json:"gossip_duplicates_per_job"`
	GossipFramesPerJob     float64 `json:"gossip_frames_per_job"`
	// Offers per job in the throughput measurement that ended without a
	// result (a worker declined, mostly because it was full, or failed)
	// and were made again elsewhere.
	FailedOffersPerJob float64 `json:"failed_offers_per_job"`
}

// nodeCounts are counters of every node, summed.
type nodeCounts struct{ sent, duplicates, frames, failedOffers float64 }

// counts sums the nodes' gossip and failed-offer counters.
func (b *bencher) counts(ctx context.Context) (nodeCounts, error) {
	var n nodeCounts
	for _, c := range b.clients {
		fams, err := c.Metrics(ctx)
		if err != nil {
			return n, err
		}
		n.sent += client.CounterSum(fams, "shoal_pubsub_sent_messages_total")
		n.duplicates += client.CounterSum(fams, "shoal_pubsub_duplicate_messages_total")
		n.frames += client.CounterSum(fams, "shoal_pubsub_sent_rpcs_total")
		n.failedOffers += client.CounterSum(fams, "shoal_jobs_net_attempt_failures_total")
	}
	return n, nil
}

func newBenchCmd(rf *rootFlags) *cobra.Command {
	var (
		n           int
		dir         string
		module      string
		jobs        int
		throughput  int
		concurrency int
		batch       int
		sizeMB      int
		asJSON      bool
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Start a local testnet and measure jobs, discovery, transfer and memory",
		Long: `Start a local testnet of N nodes (or use the running one in --dir) and measure,
end to end through the nodes' APIs: hello-world job latency (p50/p99, 1 and 3
replicas, submitted from every node in turn), sustained jobs per second,
discovery time (start until every node sees every other's capacity), payload
transfer node0 → node1 (MB/s, first byte) and the daemons' resident memory.
The CPU time per job of the daemons and of their sandbox processes during the
throughput measurement does not depend on what else runs on the machine: compare
it between runs when the wall-clock figures vary.`,
		Example: `  shoal bench
  shoal bench -n 5 --jobs 500 --throughput 3000 --json
  shoal bench --dir /tmp/tn     # a testnet started with: shoal testnet up --dir /tmp/tn --detach`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			if concurrency < 1 || batch < 1 || batch > client.MaxBatchJobs {
				return fmt.Errorf("--concurrency %d and --batch %d: want at least 1 of each, and a batch of at most %d", concurrency, batch, client.MaxBatchJobs)
			}
			b := &bencher{out: cmd.ErrOrStderr(), module: module, jobs: jobs, throughput: throughput,
				concurrency: concurrency, batch: batch, size: sizeMB << 20}
			if err := b.start(ctx, n, dir); err != nil {
				return err
			}
			defer b.stop()
			rep, err := b.run(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			printBench(cmd.OutOrStdout(), rep)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVarP(&n, "nodes", "n", 5, "testnet size when starting one")
	f.StringVar(&dir, "dir", "", "use the running testnet in this dir instead of starting one")
	f.StringVar(&module, "module", "", "hello-world module (default: build examples/hello from the source tree)")
	f.IntVar(&jobs, "jobs", 200, "jobs per latency measurement")
	f.IntVar(&throughput, "throughput", 1000, "jobs in the throughput measurement")
	f.IntVar(&concurrency, "concurrency", 64, "jobs in flight in the throughput measurement")
	f.IntVar(&batch, "batch", 16, "jobs submitted per API request in the throughput measurement (1: one request per job)")
	f.IntVar(&sizeMB, "size", 64, "MiB moved in the transfer measurement")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

type bencher struct {
	out                           io.Writer
	module                        string
	jobs, throughput, concurrency int
	batch                         int
	size                          int

	tn      *testnet.Testnet // nil when measuring an existing testnet
	clients []*client.Client
	pids    []int
	disc    time.Duration
}

func (b *bencher) logf(format string, args ...any) { fmt.Fprintf(b.out, format+"\n", args...) }

// start starts a testnet of n nodes, or connects to the one in dir.
func (b *bencher) start(ctx context.Context, n int, dir string) error {
	if dir != "" {
		m, err := testnet.ReadManifest(dir)
		if err != nil {
			return err
		}
		for _, mn := range m.Nodes {
			c, err := client.New(mn.Repo)
			if err != nil {
				return fmt.Errorf("node %s of %s: %w (is the testnet up?)", mn.Name, dir, err)
			}
			b.clients = append(b.clients, c)
			b.pids = append(b.pids, mn.PID)
		}
		return b.waitCapacity(ctx, time.Now())
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: find the shoal binary: %w", err)
	}
	tn, err := testnet.Setup(testnet.Options{N: n, Binary: bin, Network: "bench", LogLevel: "warn"})
	if err != nil {
		return err
	}
	b.tn = tn
	b.logf("testnet dir: %s; starting %d nodes...", tn.Dir(), n)
	start := time.Now()
	if err := tn.Start(ctx); err != nil {
		return err
	}
	for _, nd := range tn.Nodes() {
		b.clients = append(b.clients, nd.Client())
		b.pids = append(b.pids, nd.PID())
	}
	return b.waitCapacity(ctx, start)
}

func (b *bencher) stop() {
	if b.tn != nil {
		b.tn.Stop()
		os.RemoveAll(b.tn.Dir())
	}
}

// waitCapacity waits until every node's capacity view holds every node.
func (b *bencher) waitCapacity(ctx context.Context, start time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok := true
		for _, c := range b.clients {
			view, err := c.Capacity(ctx)
			if err != nil || len(view) < len(b.clients) {
				ok = false
				break
			}
		}
		if ok {
			b.disc = time.Since(start)
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("bench: the nodes did not all see each other's capacity: %w", ctx.Err())
		}
	}
}

func (b *bencher) run(ctx context.Context) (*benchReport, error) {
	rep := &benchReport{Nodes: len(b.clients), DiscoveryMS: ms(b.disc)}
	mod, err := b.moduleCIDs(ctx)
	if err != nil {
		return nil, err
	}
	// A job's replicas run on distinct peers: with fewer than 3 nodes a
	// 3-replica job would wait for a peer until its deadline.
	warm := min(3, len(b.clients))
	b.logf("warming up (compiling the module on every node)...")
	for i := 0; i < 4*len(b.clients); i++ {
		if _, err := b.job(ctx, i, mod[i%len(mod)], warm); err != nil {
			return nil, err
		}
	}
	for _, replicas := range []int{1, 3} {
		if replicas > len(b.clients) {
			b.logf("latency, %d replicas: skipped, the testnet has %d node(s)", replicas, len(b.clients))
			continue
		}
		b.logf("latency, %d replica(s), %d jobs...", replicas, b.jobs)
		lat := make([]time.Duration, 0, b.jobs)
		for i := 0; i < b.jobs; i++ {
			d, err := b.job(ctx, i, mod[i%len(mod)], replicas)
			if err != nil {
				return nil, err
			}
			lat = append(lat, d)
		}
		p50, p99 := percentiles(lat)
		if replicas == 1 {
			rep.Latency1P50MS, rep.Latency1P99MS = p50, p99
		} else {
			rep.Latency3P50MS, rep.Latency3P99MS = p50, p99
		}
	}
	rep.Batch = b.batch
	b.logf("throughput, %d jobs, %d in flight, submitted %d per request...", b.throughput, b.concurrency, b.batch)
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	counts0, countsErr := b.counts(ctx) // before cpu0: reading metrics costs the daemons CPU
	cpu0, cpuErr := testnet.ProcessCPU(b.pids...)
	self0, selfErr := testnet.ProcessCPU(os.Getpid())
	start := time.Now()
	for w := 0; w < max(1, b.concurrency/b.batch); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				last := int(next.Add(int64(b.batch)))
				first := last - b.batch
				if first >= b.throughput || ctx.Err() != nil {
					return
				}
				if err := b.batchJobs(ctx, first, min(last, b.throughput), mod); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	rep.JobsPerSecond = float64(b.throughput) / time.Since(start).Seconds()
	if cpu1, err := testnet.ProcessCPU(b.pids...); err == nil && cpuErr == nil && b.throughput > 0 {
		rep.DaemonCPUPerJobMS = ms((cpu1.Procs - cpu0.Procs) / time.Duration(b.throughput))
		rep.SandboxCPUPerJobMS = ms((cpu1.Children - cpu0.Children) / time.Duration(b.throughput))
	}
	if self1, err := testnet.ProcessCPU(os.Getpid()); err == nil && selfErr == nil && b.throughput > 0 {
		rep.ClientCPUPerJobMS = ms((self1.Procs - self0.Procs) / time.Duration(b.throughput))
	}
	if counts1, err := b.counts(ctx); err == nil && countsErr == nil && b.throughput > 0 {
		n := float64(b.throughput)
		rep.GossipSentPerJob = (counts1.sent - counts0.sent) / n
		rep.GossipDuplicatesPerJob = (counts1.duplicates - counts0.duplicates) / n
		rep.GossipFramesPerJob = (counts1.frames - counts0.frames) / n
		rep.FailedOffersPerJob = (counts1.failedOffers - counts0.failedOffers) / n
	}
	if len(b.clients) > 1 && b.size > 0 {
		b.logf("transfer, %d MiB node0 → node1...", b.size>>20)
		if rep.TransferMBps, rep.TransferFirstB, err = b.transfer(ctx); err != nil {
			return nil, err
		}
	}
	var sum float64
	for _, pid := range b.pids {
		if pid == 0 {
			continue
		}
		if mem, err := testnet.ProcessMemory(pid); err == nil {
			mb := float64(mem.RSS) / (1 << 20)
			sum += mb
			rep.RSSMaxMB = max(rep.RSSMaxMB, mb)
		}
	}
	rep.RSSAvgMB = sum / float64(len(b.pids))
	return rep, nil
}

// moduleCIDs uploads the hello module to every node and returns its CID
// per node (the same CID).
func (b *bencher) moduleCIDs(ctx context.Context) ([]string, error) {
	path := b.module
	if path == "" {
		dir, err := os.MkdirTemp("", "shoal-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		b.logf("building examples/hello...")
		if path, err = examples.Build(ctx, dir, "hello", false); err != nil {
			return nil, fmt.Errorf("bench: %w (pass --module hello.wasm)", err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bench: module: %w", err)
	}
	out := make([]string, len(b.clients))
	for i, c := range b.clients {
		if out[i], err = c.UploadJobPayload(ctx, bytes.NewReader(data), false); err != nil {
			return nil, fmt.Errorf("bench: upload the module to node%d: %w", i, err)
		}
	}
	return out, nil
}

// job submits a hello job on node i mod N and waits for its end.
func (b *bencher) job(ctx context.Context, i int, module string, replicas int) (time.Duration, error) {
	c := b.clients[i%len(b.clients)]
	start := time.Now()
	j, err := c.SubmitJobWait(ctx, client.JobRequest{Module: module, Args: []string{"bench"},
		Replicas: replicas, Quorum: replicas/2 + 1, TimeoutMS: 10_000}, 30*time.Second)
	if err != nil {
		return 0, fmt.Errorf("bench: submit on node%d: %w", i%len(b.clients), err)
	}
	for !j.Terminal() {
		if j, err = c.WaitJobEnd(ctx, j.Job, 30*time.Second); err != nil {
			return 0, fmt.Errorf("bench: job %s: %w", j.Job, err)
		}
	}
	d := time.Since(start)
	if j.State != "done" {
		return 0, fmt.Errorf("bench: job %s ended %s: %s %s", j.Job, j.State, j.Failure, j.Reason)
	}
	return d, nil
}

// batchJobs submits hello jobs first..last-1 (1 replica) in one request
// to node first/batch mod N and waits for them all to end. With a batch
// of 1 it submits the one job as job does.
func (b *bencher) batchJobs(ctx context.Context, first, last int, mod []string) error {
	if last-first == 1 {
		_, err := b.job(ctx, first, mod[first%len(mod)], 1)
		return err
	}
	i := (first / b.batch) % len(b.clients)
	c := b.clients[i]
	reqs := make([]client.JobRequest, 0, last-first)
	for range last - first {
		reqs = append(reqs, client.JobRequest{Module: mod[i], Args: []string{"bench"}, Replicas: 1, Quorum: 1, TimeoutMS: 10_000})
	}
	infos, err := c.SubmitJobs(ctx, reqs, 30*time.Second)
	if err != nil {
		return fmt.Errorf("bench: submit %d jobs on node%d: %w", len(reqs), i, err)
	}
	for _, j := range infos {
		for !j.Terminal() {
			if j, err = c.WaitJobEnd(ctx, j.Job, 30*time.Second); err != nil {
				return fmt.Errorf("bench: job %s: %w", j.Job, err)
			}
		}
		if j.State != "done" {
			return fmt.Errorf("bench: job %s ended %s: %s %s", j.Job, j.State, j.Failure, j.Reason)
		}
	}
	return nil
}

// transfer adds random bytes on node0 and reads them from node1.
func (b *bencher) transfer(ctx context.Context) (mbps, firstMS float64, err error) {
	data := make([]byte, b.size)
	rand.Read(data)
	add, err := b.clients[0].Add(ctx, bytes.NewReader(data), "bench.bin")
	if err != nil {
		return 0, 0, fmt.Errorf("bench: add on node0: %w", err)
	}
	start := time.Now()
	r, _, err := b.clients[1].Cat(ctx, add.CID)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: cat on node1: %w", err)
	}
	defer r.Close()
	var first time.Duration
	buf := make([]byte, 256<<10)
	total := 0
	for {
		k, err := r.Read(buf)
		if k > 0 && first == 0 {
			first = time.Since(start)
		}
		total += k
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, 0, fmt.Errorf("bench: read from node1: %w", err)
		}
	}
	el := time.Since(start)
	if total != len(data) {
		return 0, 0, fmt.Errorf("bench: node1 returned %d bytes, want %d", total, len(data))
	}
	return float64(total) / (1 << 20) / el.Seconds(), ms(first), nil
}

func percentiles(d []time.Duration) (p50, p99 float64) {
	slices.Sort(d)
	at := func(q float64) float64 { return ms(d[min(len(d)-1, int(q*float64(len(d))))]) }
	return at(0.50), at(0.99)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func printBench(w io.Writer, r *benchReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "nodes\t%d\n", r.Nodes)
	fmt.Fprintf(tw, "discovery (all capacity seen)\t%.0f ms\n", r.DiscoveryMS)
	fmt.Fprintf(tw, "job latency, 1 replica\tp50 %.1f ms\tp99 %.1f ms\n", r.Latency1P50MS, r.Latency1P99MS)
	if r.Nodes >= 3 {
		fmt.Fprintf(tw, "job latency, 3 replicas\tp50 %.1f ms\tp99 %.1f ms\n", r.Latency3P50MS, r.Latency3P99MS)
	} else {
		fmt.Fprintf(tw, "job latency, 3 replicas\tskipped: needs 3 nodes\n")
	}
	fmt.Fprintf(tw, "throughput, 1 replica\t%.0f jobs/s\t%d per request\n", r.JobsPerSecond, r.Batch)
	if r.ClientCPUPerJobMS > 0 {
		fmt.Fprintf(tw, "bench client CPU per job\t%.2f ms\n", r.ClientCPUPerJobMS)
	}
	if r.DaemonCPUPerJobMS > 0 {
		fmt.Fprintf(tw, "CPU per job (throughput)\tdaemons %.1f ms\tsandboxes %.1f ms\n", r.DaemonCPUPerJobMS, r.SandboxCPUPerJobMS)
	}
	if r.SandboxCPUPerJobMS > 0 {
		// The sandboxes' work per job is fixed, so this compares the
		// daemons' cost between runs made while the machine ran at
		// different speeds.
		fmt.Fprintf(tw, "daemon CPU / sandbox CPU\t%.2f\n", r.DaemonCPUPerJobMS/r.SandboxCPUPerJobMS)
	}
	if r.GossipFramesPerJob > 0 {
		fmt.Fprintf(tw, "gossip per job (throughput)\t%.1f messages sent\t%.1f of them copies\t%.1f frames\n", r.GossipSentPerJob, r.GossipDuplicatesPerJob, r.GossipFramesPerJob)
		fmt.Fprintf(tw, "offers made again per job\t%.2f\n", r.FailedOffersPerJob)
	}
	fmt.Fprintf(tw, "transfer node0 → node1\t%.0f MiB/s\tfirst byte %.1f ms\n", r.TransferMBps, r.TransferFirstB)
	fmt.Fprintf(tw, "daemon RSS\tmax %.0f MiB\tavg %.0f MiB\n", r.RSSMaxMB, r.RSSAvgMB)
	tw.Flush()
}
