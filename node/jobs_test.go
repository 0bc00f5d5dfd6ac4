package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalnet/shoal/examples"
	"github.com/shoalnet/shoal/jobs/sandbox"
	"github.com/shoalnet/shoal/node/client"
)

// TestMain lets the test binary act as the sandbox worker the job service
// starts (it runs os.Executable()).
func TestMain(m *testing.M) {
	if sandbox.IsWorker() {
		os.Exit(sandbox.RunWorker())
	}
	code := m.Run()
	if wasmDir != "" {
		os.RemoveAll(wasmDir)
	}
	os.Exit(code)
}

var (
	wasmOnce sync.Once
	wasmDir  string
	wasmErr  error
)

// helloWasm builds the hello example once per test binary run.
func helloWasm(t *testing.T) []byte {
	t.Helper()
	b, err := buildHello()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func waitJob(t *testing.T, c *client.Client, id string) client.JobInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	j, err := c.Job(ctx, id)
	for err == nil && !j.Terminal() {
		j, err = c.WaitJob(ctx, id, j.Version, 10*time.Second)
	}
	if err != nil {
		t.Fatalf("wait for job %s: %v", id, err)
	}
	return j
}

// helloNode starts a node with one job slot and uploads the hello module
// to it; it returns the repo, the node, a client, a context for the test
// and the module's CID.
func helloNode(t *testing.T) (string, *Node, *client.Client, context.Context, string) {
	t.Helper()
	dir := testRepo(t, func(c *Config) { c.Jobs.Slots = 1 })
	n := startNode(t, dir)
	c, err := client.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	mod, err := c.UploadJobPayload(ctx, bytes.NewReader(helloWasm(t)), false)
	if err != nil {
		t.Fatal(err)
	}
	return dir, n, c, ctx, mod
}

func TestJobRunLocal(t *testing.T) {
	dir, n, c, ctx, mod := helloNode(t)
	j, err := c.SubmitJob(ctx, client.JobRequest{Module: mod, Args: []string{"node"}, TimeoutMS: 60_000})
	if err != nil {
		t.Fatal(err)
	}
	j = waitJob(t, c, j.Job)
	if j.State != "done" || j.ExitCode == nil || *j.ExitCode != 0 || len(j.Results) != 1 || j.Results[0].Worker != n.PeerID().String() {
		t.Fatalf("job = %+v", j)
	}
	rc, err := c.JobLog(ctx, j.Job, "stdout")
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(rc)
	rc.Close()
	if string(out) != "hello from shoal\narg 1: node\n" {
		t.Fatalf("stdout = %q", out)
	}
	tr, err := c.JobOutputs(ctx, j.Job)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, tr)
	tr.Close()

	// A bad module fails the job with a reason; the node keeps serving.
	bad, err := c.UploadJobPayload(ctx, strings.NewReader("not wasm"), false)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := c.SubmitJob(ctx, client.JobRequest{Module: bad})
	if err != nil {
		t.Fatal(err)
	}
	// until=end answers once, with the ended job.
	if jb, err = c.WaitJobEnd(ctx, jb.Job, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if jb.State != "failed" || jb.Failure != "invalid_module" || jb.Reason == "" {
		t.Fatalf("bad module job = %+v", jb)
	}
	var ignored client.JobInfo
	if err := c.Do(ctx, "GET", "/v1/jobs/"+jb.Job+"?after=0&wait=1s&until=soon", nil, &ignored); err == nil || !strings.Contains(err.Error(), "until") {
		t.Fatalf("until=soon: %v, want an error naming until", err)
	}
	// Submitted with ?wait, the answer is the ended job.
	jw, err := c.SubmitJobWait(ctx, client.JobRequest{Module: mod, Args: []string{"wait"}, TimeoutMS: 60_000}, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if jw.State != "done" || jw.Stdout == "" {
		t.Fatalf("SubmitJobWait = %+v, want a done job with stdout", jw)
	}
	if err := c.Do(ctx, "POST", "/v1/jobs?wait=soon", client.JobRequest{Module: mod}, &ignored); err == nil || !strings.Contains(err.Error(), "wait") {
		t.Fatalf("POST /v1/jobs?wait=soon: %v, want an error naming wait", err)
	}
	list, err := c.Jobs(ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("Jobs = %d jobs, %v", len(list), err)
	}
	if _, err := c.SubmitJob(ctx, client.JobRequest{Module: "not-a-cid"}); err == nil {
		t.Fatal("SubmitJob with a bad CID succeeded")
	}

	// The records survive a restart.
	n.Close()
	startNode(t, dir)
	c2, err := client.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c2.Job(ctx, j.Job)
	if err != nil || again.State != "done" {
		t.Fatalf("after restart: %+v, %v", again, err)
	}
}

// TestEndedJobsLeaveMemory checks that ended jobs past the few kept in
// memory are read back from the datastore: state, logs and the list, also
// after a restart.
func TestEndedJobsLeaveMemory(t *testing.T) {
	dir, n, c, ctx, mod := helloNode(t)
	n.jobs.mu.Lock()
	n.jobs.keepEnded = 1
	n.jobs.mu.Unlock()
	var ids []string
	for i := range 3 {
		j, err := c.SubmitJobWait(ctx, client.JobRequest{Module: mod, Args: []string{fmt.Sprint(i)}, TimeoutMS: 60_000}, 30*time.Second)
		if err != nil || j.State != "done" {
			t.Fatalf("job %d = %+v, %v", i, j, err)
		}
		ids = append(ids, j.Job)
	}
	// The newest ended job only (its end is stored just after it is
	// answered).
	waitFor(ctx, t, "one job left in memory", func() bool {
		n.jobs.mu.Lock()
		defer n.jobs.mu.Unlock()
		return len(n.jobs.recs) == 1
	})
	check := func(c *client.Client) {
		t.Helper()
		first, err := c.Job(ctx, ids[0])
		if err != nil || first.State != "done" || len(first.Results) != 1 {
			t.Fatalf("the oldest job, read back: %+v, %v", first, err)
		}
		rc, err := c.JobLog(ctx, ids[0], "stdout")
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(rc)
		rc.Close()
		if string(out) != "hello from shoal\narg 1: 0\n" {
			t.Fatalf("the oldest job's stdout = %q", out)
		}
		list, err := c.Jobs(ctx)
		if err != nil || len(list) != 3 || list[0].Job != ids[2] || list[2].Job != ids[0] {
			t.Fatalf("Jobs = %+v, %v; want the 3, newest first", list, err)
		}
		if newest, err := c.JobsNewest(ctx, 2); err != nil || len(newest) != 2 || newest[0].Job != ids[2] {
			t.Fatalf("JobsNewest(2) = %+v, %v; want the 2 newest", newest, err)
		}
		var all []client.JobInfo
		if err := c.Do(ctx, "GET", "/v1/jobs?limit=-1", nil, &all); err == nil || !strings.Contains(err.Error(), "limit") {
			t.Fatalf("limit=-1: %v, want an error naming limit", err)
		}
		var ignored client.JobInfo
		if err := c.Do(ctx, "POST", "/v1/jobs/"+ids[0]+"/cancel", nil, &ignored); err == nil || !strings.Contains(err.Error(), "ended") {
			t.Fatalf("cancel of an ended job: %v, want it named ended", err)
		}
	}
	check(c)
	n.Close()
	n = startNode(t, dir)
	n.jobs.mu.Lock()
	inMemory := len(n.jobs.recs)
	n.jobs.mu.Unlock()
	if inMemory != 0 {
		t.Fatalf("%d jobs in memory after a restart, want 0 (all ended)", inMemory)
	}
	c2, err := client.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	check(c2)
}

// BenchmarkJobHelloLocal measures a hello job submitted through the API and
// run on this node, from submit to a finished result, with the module
// compiled and warm. It reports p50 and p99.
func BenchmarkJobHelloLocal(b *testing.B) {
	dir := benchRepo(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	n, err := New(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	c, err := client.New(dir)
	if err != nil {
		b.Fatal(err)
	}
	code, err := buildHello()
	if err != nil {
		b.Fatal(err)
	}
	mod, err := c.UploadJobPayload(ctx, bytes.NewReader(code), false)
	if err != nil {
		b.Fatal(err)
	}
	runOne := func() time.Duration {
		t0 := time.Now()
		j, err := c.SubmitJob(ctx, client.JobRequest{Module: mod, Args: []string{"bench"}})
		if err != nil {
			b.Fatal(err)
		}
		for !j.Terminal() {
			if j, err = c.WaitJob(ctx, j.Job, j.Version, 30*time.Second); err != nil {
				b.Fatal(err)
			}
		}
		if j.State != "done" {
			b.Fatalf("job %+v", j)
		}
		return time.Since(t0)
	}
	runOne() // compile
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lat = append(lat, runOne())
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

func benchRepo(b *testing.B) string {
	dir := filepath.Join(b.TempDir(), "repo")
	cfg := DefaultConfig()
	cfg.Network.Name = "bench"
	cfg.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.API.Address = "127.0.0.1:0"
	cfg.Jobs.Slots = 1
	if err := Init(dir, cfg, nil); err != nil {
		b.Fatal(err)
	}
	return dir
}

func buildHello() ([]byte, error) {
	wasmOnce.Do(func() {
		wasmDir, wasmErr = os.MkdirTemp("", "shoal-node-wasm-")
		if wasmErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		_, wasmErr = examples.Build(ctx, wasmDir, "hello", false)
	})
	if wasmErr != nil {
		return nil, wasmErr
	}
	return os.ReadFile(filepath.Join(wasmDir, "hello.wasm"))
}

// TestJobBatch submits jobs in one request: all run and come back in the
// order asked; a batch with one bad job submits none.
func TestJobBatch(t *testing.T) {
	_, _, c, ctx, mod := helloNode(t)
	reqs := []client.JobRequest{
		{Module: mod, Args: []string{"a"}, TimeoutMS: 60_000},
		{Module: mod, Args: []string{"b"}, TimeoutMS: 60_000},
		{Module: mod, Args: []string{"c"}, TimeoutMS: 60_000},
	}
	got, err := c.SubmitJobs(ctx, reqs, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, j := range got {
		if j.State != "done" || len(j.Args) != 1 || j.Args[0] != reqs[i].Args[0] || seen[j.Job] {
			t.Fatalf("job %d of the batch = %+v, want done with args %v", i, j, reqs[i].Args)
		}
		seen[j.Job] = true
	}
	// Without a wait, the jobs come back as submitted.
	queued, err := c.SubmitJobs(ctx, reqs[:1], 0)
	if err != nil || len(queued) != 1 || queued[0].Job == "" {
		t.Fatalf("SubmitJobs without wait = %+v, %v", queued, err)
	}
	waitJob(t, c, queued[0].Job)

	bad := append(append([]client.JobRequest{}, reqs...), client.JobRequest{Module: "not-a-cid"})
	if _, err := c.SubmitJobs(ctx, bad, 0); err == nil || !strings.Contains(err.Error(), "job 3 of the batch") {
		t.Fatalf("a batch with a bad job: %v, want an error naming job 3", err)
	}
	for _, tc := range []struct {
		name string
		reqs []client.JobRequest
		want string
	}{
		{"empty", nil, "no jobs"},
		{"too many", make([]client.JobRequest, client.MaxBatchJobs+1), "split it"},
	} {
		if _, err := c.SubmitJobs(ctx, tc.reqs, 0); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s batch: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	var ignored client.BatchInfo
	if err := c.Do(ctx, "POST", "/v1/jobs/batch?wait=soon", client.BatchRequest{Jobs: reqs[:1]}, &ignored); err == nil || !strings.Contains(err.Error(), "wait") {
		t.Fatalf("wait=soon: %v, want an error naming wait", err)
	}
	list, err := c.Jobs(ctx)
	if err != nil || len(list) != 4 {
		t.Fatalf("Jobs = %d jobs, %v; want the 4 good ones only", len(list), err)
	}
}
