package dist

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/shoalnet/shoal/jobs/proto"
	"github.com/shoalnet/shoal/jobs/quorum"
)

// idleStreamsAfter waits until the submitter holds n idle streams to
// worker 1 (the attempt puts its stream back just after its result is
// handed on) and returns them.
func (c *cluster) idleStreamsAfter(t *testing.T, n int) []*jobStream {
	t.Helper()
	waitFor(t, "idle streams", func() bool { return len(c.idleStreams()) == n })
	return c.idleStreams()
}

// idleStreams returns the submitter's idle streams to the cluster's
// worker 1.
func (c *cluster) idleStreams() []*jobStream {
	c.mgr.streams.mu.Lock()
	defer c.mgr.streams.mu.Unlock()
	var out []*jobStream
	for _, is := range c.mgr.streams.idle[c.nodes[1].id] {
		out = append(out, is.js)
	}
	return out
}

// TestStreamsCarryExchanges checks that jobs offered one after another to
// the same worker go over one stream.
func TestStreamsCarryExchanges(t *testing.T) {
	c := newCluster(t, 2, clusterOpts{})
	var first *jobStream
	for i := range 3 {
		if st := c.run(c.spec(1, 1)); st.Verdict != quorum.Verified {
			t.Fatalf("job %d: %s (%s)", i, st.Verdict, st.Reason)
		}
		idle := c.idleStreamsAfter(t, 1)
		if first == nil {
			first = idle[0]
		} else if idle[0] != first || !idle[0].reused {
			t.Fatalf("job %d went over a new stream, want the first one again", i)
		}
	}
	if n := c.nodes[1].runner.runs.Load(); n != 3 {
		t.Fatalf("the worker ran %d jobs, want 3", n)
	}
	// Closing the manager closes its idle streams.
	c.mgr.Close()
	if got := c.idleStreams(); len(got) != 0 {
		t.Fatalf("%d idle streams after Close", len(got))
	}
}

// TestIdleStreamClosedByWorker checks that an offer made on a stream the
// worker has closed as idle is made again on a new stream, and the job
// runs once.
func TestIdleStreamClosedByWorker(t *testing.T) {
	c := newCluster(t, 2, clusterOpts{workerCfg: func(_ int, wc *WorkerConfig) { wc.idleTimeout = 20 * time.Millisecond }})
	if st := c.run(c.spec(1, 1)); st.Verdict != quorum.Verified {
		t.Fatalf("first job: %s (%s)", st.Verdict, st.Reason)
	}
	old := c.idleStreamsAfter(t, 1)
	time.Sleep(200 * time.Millisecond) // the worker closes its end
	st := c.run(c.spec(1, 1))
	if st.Verdict != quorum.Verified || len(st.Results) != 1 {
		t.Fatalf("second job: %s (%s), %d results", st.Verdict, st.Reason, len(st.Results))
	}
	if idle := c.idleStreamsAfter(t, 1); idle[0] == old[0] {
		t.Fatal("the stream the worker closed is still kept")
	}
	if n := c.nodes[1].runner.runs.Load(); n != 2 {
		t.Fatalf("the worker ran %d jobs, want 2", n)
	}
}

// TestWorkerStreamByHand speaks to a worker by hand: a stream of
// /shoal/job/1.1.0 carries exchanges one after another and ignores a late
// Cancel; anything else between exchanges ends it; a stream of
// /shoal/job/1.0.0 ends after one exchange.
func TestWorkerStreamByHand(t *testing.T) {
	c := newCluster(t, 2, clusterOpts{})
	open := func(id protocol.ID) (network.Stream, *proto.Conn) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := c.nodes[0].h.NewStream(ctx, c.nodes[1].id, id)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Reset() })
		return s, proto.NewConn(s)
	}
	exchange := func(conn *proto.Conn) {
		t.Helper()
		spec := c.spec(1, 1)
		b, _ := spec.Encode()
		if err := conn.Write(&proto.Offer{Job: spec.ID, Spec: b, RunTimeout: 5 * time.Second}, time.Second); err != nil {
			t.Fatal(err)
		}
		for _, want := range []proto.Type{proto.TypeAccept, proto.TypeResult} {
			m, err := conn.Read(5 * time.Second)
			if err != nil || m.Type() != want || m.JobCID() != spec.ID {
				t.Fatalf("got %v, %v; want %s for job %s", m, err, want, spec.ID)
			}
		}
		// A late cancel of the ended exchange is ignored.
		if err := conn.Write(&proto.Cancel{Job: spec.ID, Reason: "late"}, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	_, conn := open(proto.ID)
	exchange(conn)
	exchange(conn)
	if err := conn.Write(&proto.Reveal{Job: testCID("x")}, time.Second); err != nil {
		t.Fatal(err)
	}
	if m, err := conn.Read(5 * time.Second); err == nil && m.Type() != proto.TypeError {
		t.Fatalf("reveal between exchanges: worker answered %s, want an error or the stream dropped", m.Type())
	}
	if _, err := conn.Read(5 * time.Second); err == nil || errors.Is(err, proto.ErrTimeout) {
		t.Fatalf("after a reveal between exchanges the stream is still open: %v", err)
	}

	_, conn10 := open(proto.ID10)
	spec := c.spec(1, 1)
	b, _ := spec.Encode()
	if err := conn10.Write(&proto.Offer{Job: spec.ID, Spec: b, RunTimeout: 5 * time.Second}, time.Second); err != nil {
		t.Fatal(err)
	}
	for range 2 { // accept, result
		if _, err := conn10.Read(5 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn10.Read(5 * time.Second); !errors.Is(err, io.EOF) {
		t.Fatalf("a %s stream after one exchange: %v, want EOF", proto.ID10, err)
	}
	if n := c.nodes[1].runner.runs.Load(); n != 3 {
		t.Fatalf("the worker ran %d jobs, want 3", n)
	}
}
