package testnet

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoalnet/shoal/examples"
	"github.com/shoalnet/shoal/jobs"
	"github.com/shoalnet/shoal/jobs/dist"
	"github.com/shoalnet/shoal/jobs/proto"
	"github.com/shoalnet/shoal/jobs/quorum"
	"github.com/shoalnet/shoal/node/client"
)

// TestE2EJobsInLedgers runs jobs on a 5-node testnet of real daemons and
// checks the ledgers: each submitter recorded job.submitted and
// job.verdict, each worker recorded job.executed with the very signed
// result the submitter's verdict holds, and every node verifies every
// other node's ledger. It builds the shoal binary and an example; -short
// skips it. Alone:
//
//	go test -run E2E -v ./testnet/
func TestE2EJobsInLedgers(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with real daemons; skipped under -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir := t.TempDir()
	hello, err := examples.Build(ctx, dir, "hello", false)
	if err != nil {
		t.Fatal(err)
	}
	tn, err := Setup(Options{N: 5, Dir: filepath.Join(dir, "tn"), Binary: binary(t), Network: "t", Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tn.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	if err := tn.Start(ctx); err != nil {
		t.Fatal(err)
	}
	err = tn.WaitFor(ctx, 50*time.Millisecond, func(ctx context.Context) (bool, string, error) {
		for _, nd := range tn.Nodes() {
			view, err := nd.Client().Capacity(ctx)
			if err != nil || len(view) < tn.N() {
				return false, fmt.Sprintf("%s sees %d capacity adverts", nd.Name, len(view)), nil
			}
		}
		return true, "", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[peer.ID]*Node{}
	for _, nd := range tn.Nodes() {
		byID[nd.PeerID] = nd
	}

	// A few jobs from different nodes, one of them with 3 replicas.
	type run struct {
		from     *Node
		replicas int
		job      string
	}
	runs := []*run{{from: tn.Node(0), replicas: 3}, {from: tn.Node(1), replicas: 1}, {from: tn.Node(2), replicas: 1}, {from: tn.Node(0), replicas: 1}}
	for _, r := range runs {
		c := r.from.Client()
		f, err := os.Open(hello)
		if err != nil {
			t.Fatal(err)
		}
		mod, err := c.UploadJobPayload(ctx, f, false)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		j, err := c.SubmitJob(ctx, client.JobRequest{Module: mod, Args: []string{"ledger", r.from.Name},
			Replicas: r.replicas, Quorum: r.replicas/2 + 1, TimeoutMS: 30_000})
		if err != nil {
			t.Fatal(err)
		}
		r.job = j.Job
	}
	for _, r := range runs {
		c := r.from.Client()
		st := waitNetJob(ctx, t, c, r.job)
		if st.Verdict != quorum.Verified || len(st.Results) != r.replicas {
			t.Fatalf("job %s from %s ended %s with %d results (%s), want verified with %d", r.job, r.from.Name, st.Verdict, len(st.Results), st.Reason, r.replicas)
		}
		if st.Ledger == nil || st.Ledger.Submitted == nil || st.Ledger.Verdict == nil || st.Ledger.Error != "" {
			t.Fatalf("job %s: ledger status %+v, want both entries recorded", r.job, st.Ledger)
		}
		// The submitter's log holds job.submitted and job.verdict.
		sub := entryAt(ctx, t, c, *st.Ledger.Submitted, jobs.LedgerKindSubmitted)
		se, err := jobs.DecodeSubmittedEntry(sub.Body)
		if err != nil || se.Job.String() != r.job || se.Spec == nil {
			t.Fatalf("job %s: job.submitted body %+v, %v", r.job, se, err)
		}
		ver := entryAt(ctx, t, c, *st.Ledger.Verdict, jobs.LedgerKindVerdict)
		ve, err := jobs.DecodeVerdictEntry(ver.Body)
		if err != nil || ve.Job.String() != r.job || ve.Verdict != string(quorum.Verified) || len(ve.Results) != r.replicas {
			t.Fatalf("job %s: job.verdict body %+v, %v", r.job, ve, err)
		}
		// Each worker's log holds job.executed with the signed result the
		// verdict holds.
		for _, vr := range ve.Results {
			w := byID[vr.Worker]
			if w == nil || vr.Signed == nil {
				t.Fatalf("job %s: verdict names unknown worker %s or lacks its signed result", r.job, vr.Worker)
			}
			want, _ := vr.Signed.Encode()
			if !hasExecuted(ctx, t, w.Client(), r.job, want) {
				t.Errorf("job %s: %s's ledger has no job.executed with the result in the verdict", r.job, w.Name)
			}
		}
	}

	// `shoal job list` over the network lists CIDs as plain strings.
	var raw bytes.Buffer
	resp, err := tn.Node(0).Client().Stream(ctx, "GET", "/v1/net/jobs", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	raw.ReadFrom(resp.Body)
	resp.Body.Close()
	if bytes.Contains(raw.Bytes(), []byte(`{"/"`)) || !bytes.Contains(raw.Bytes(), []byte(`"job":"`+runs[0].job+`"`)) {
		t.Errorf("GET /v1/net/jobs = %.300s; want CIDs as plain strings", raw.Bytes())
	}

	// Every node verifies every other node's ledger.
	for _, nd := range tn.Nodes() {
		for _, other := range tn.Nodes() {
			if other == nd {
				continue
			}
			rep, err := nd.Client().LedgerVerify(ctx, other.PeerID.String())
			if err != nil {
				t.Fatalf("%s: ledger verify --peer %s: %v", nd.Name, other.Name, err)
			}
			if !rep.OK {
				t.Errorf("%s: ledger verify --peer %s failed: %+v", nd.Name, other.Name, rep)
			}
		}
		evs, err := nd.Client().LedgerEvidence(ctx)
		if err != nil || len(evs) != 0 {
			t.Errorf("%s holds evidence %v, %v; want none", nd.Name, evs, err)
		}
	}

	// Results announcements (a few KiB each) reached every node, and no
	// node answered one with IDONTWANTs to its mesh (node.gossipSubParams:
	// only messages from 16 KiB on are worth one).
	// A node publishes its verdicts after up to dist.AnnounceWindow, and a
	// message may travel by gossip before the mesh has formed: wait for
	// them.
	topic := proto.ResultsTopic("t")
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	err = tn.WaitFor(wctx, 50*time.Millisecond, func(ctx context.Context) (bool, string, error) {
		for _, nd := range tn.Nodes() {
			fams, err := nd.Client().Metrics(ctx)
			if err != nil {
				return false, "", err
			}
			if n := client.CounterWith(fams, "shoal_pubsub_received_messages_total", "topic", topic); n < 1 {
				return false, fmt.Sprintf("%s received %v messages on %s, want results announcements", nd.Name, n, topic), nil
			}
		}
		return true, "", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, nd := range tn.Nodes() {
		fams, err := nd.Client().Metrics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n := client.CounterWith(fams, "shoal_pubsub_sent_control_total", "kind", "idontwant"); n != 0 {
			t.Errorf("%s sent %v IDONTWANTs, want none for messages of a few KiB", nd.Name, n)
		}
	}
}

// waitNetJob waits for job's end through c's distributed status.
func waitNetJob(ctx context.Context, t *testing.T, c *client.Client, job string) dist.Status {
	t.Helper()
	for {
		var st dist.Status
		err := c.Do(ctx, "GET", "/v1/net/jobs/"+url.PathEscape(job)+"?wait=10s", nil, &st)
		if err == nil && st.Terminal() {
			return st
		}
		if ctx.Err() != nil {
			t.Fatalf("job %s did not end: last status %+v, %v", job, st, err)
		}
	}
}

// entryAt returns entry seq of c's own ledger and checks its kind.
func entryAt(ctx context.Context, t *testing.T, c *client.Client, seq uint64, kind string) client.LedgerEntry {
	t.Helper()
	es, err := c.LedgerEntries(ctx, "", seq, 1)
	if err != nil || len(es) != 1 {
		t.Fatalf("ledger entry %d: %v, %v", seq, es, err)
	}
	if es[0].Kind != kind {
		t.Fatalf("ledger entry %d is %s, want %s", seq, es[0].Kind, kind)
	}
	return es[0]
}

// hasExecuted reports whether c's own ledger holds a job.executed entry of
// job whose signed result is signed.
func hasExecuted(ctx context.Context, t *testing.T, c *client.Client, job string, signed []byte) bool {
	t.Helper()
	for from := uint64(0); ; {
		es, err := c.LedgerEntries(ctx, "", from, 100)
		if err != nil {
			if strings.Contains(err.Error(), "no entry") {
				return false
			}
			t.Fatal(err)
		}
		if len(es) == 0 {
			return false
		}
		for _, e := range es {
			if e.Kind != jobs.LedgerKindExecuted {
				continue
			}
			ee, err := jobs.DecodeExecutedEntry(e.Body)
			if err != nil {
				t.Fatalf("entry %d: %v", e.Seq, err)
			}
			got, _ := ee.Result.Encode()
			if ee.Job.String() == job && bytes.Equal(got, signed) {
				return true
			}
		}
		from = es[len(es)-1].Seq + 1
	}
}
