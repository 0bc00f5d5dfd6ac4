package dist

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/multiformats/go-multicodec"
	"github.com/multiformats/go-varint"

	"github.com/shoalnet/shoal/crypto"
	"github.com/shoalnet/shoal/jobs"
	"github.com/shoalnet/shoal/jobs/capacity"
	"github.com/shoalnet/shoal/jobs/proto"
	"github.com/shoalnet/shoal/jobs/quorum"
)

// A lie is how a misbehaving worker answers after accepting an offer.
type lie func(t *testing.T, key crypto.PrivKey, spec *jobs.SignedSpec, s network.Stream, conn *proto.Conn)

func signedBytes(t *testing.T, r *jobs.SignedResult) []byte {
	b, err := r.Encode()
	if err != nil {
		t.Error(err)
	}
	return b
}

// sendResult commits to good (if the offer asks for it), waits for the
// reveal, then sends reveal's bytes.
func sendResult(t *testing.T, conn *proto.Conn, key crypto.PrivKey, job cid.Cid, commit bool, good *jobs.SignedResult, reveal []byte) {
	if commit {
		c, err := quorum.Commit(key, job, good.CID)
		if err != nil {
			t.Error(err)
			return
		}
		conn.Write(&proto.Commit{Job: job, Worker: c.Worker, Hash: c.Hash, Sig: c.Sig}, time.Second)
		if m, err := conn.Read(10 * time.Second); err != nil || m.Type() != proto.TypeReveal {
			return
		}
	}
	conn.Write(&proto.Result{Job: job, Result: reveal}, time.Second)
}

func liar(t *testing.T, key crypto.PrivKey, l lie) network.StreamHandler {
	return func(s network.Stream) {
		defer s.Close()
		conn := proto.NewConn(s)
		m, err := conn.Read(5 * time.Second)
		if err != nil {
			return
		}
		offer := m.(*proto.Offer)
		spec, err := jobs.DecodeSignedSpec(offer.Spec)
		if err != nil {
			t.Error(err)
			return
		}
		conn.Write(&proto.Accept{Job: offer.Job}, time.Second)
		l(t, key, spec, s, conn)
	}
}

func TestLyingWorkersRejected(t *testing.T) {
	withStdout := func(t *testing.T, key crypto.PrivKey, spec *jobs.SignedSpec, stdout string) *jobs.SignedResult {
		good, _ := fakeResult(key, spec, jobs.FailureNone)
		r := *good.Result
		r.Stdout = crypto.CIDOf(multicodec.Raw, []byte(stdout))
		bad, err := jobs.SignResult(key, &r)
		if err != nil {
			t.Fatal(err)
		}
		return bad
	}
	tests := []struct {
		name     string
		replicas int
		lie      lie
		want     string // in the replaced replica's error
	}{
		{"reveal differs from commitment", 2, func(t *testing.T, key crypto.PrivKey, spec *jobs.SignedSpec, s network.Stream, conn *proto.Conn) {
			good, _ := fakeResult(key, spec, jobs.FailureNone)
			sendResult(t, conn, key, spec.ID, true, good, signedBytes(t, withStdout(t, key, spec, "changed my mind")))
		}, "does not match its commitment"},
		{"forged signature", 1, func(t *testing.T, key crypto.PrivKey, spec *jobs.SignedSpec, s network.Stream, conn *proto.Conn) {
			good, _ := fakeResult(key, spec, jobs.FailureNone)
			forged := *good
			forged.Sig = append([]byte(nil), good.Sig...)
			forged.Sig[3] ^= 0x40
			sendResult(t, conn, key, spec.ID, false, good, signedBytes(t, &forged))
		}, "signature does not verify"},
		{"result of another worker", 1, func(t *testing.T, key crypto.PrivKey, spec *jobs.SignedSpec, s network.Stream, conn *proto.Conn) {
			other, _ := fakeResult(testKey(t, 99999), spec, jobs.FailureNone)
			sendResult(t, conn, key, spec.ID, false, other, signedBytes(t, other))
		}, "is signed as"},
		{"result for a job never offered", 1, func(t *testing.T, key crypto.PrivKey, spec *jobs.SignedSpec, s network.Stream, conn *proto.Conn) {
			env := *spec.Envelope
			env.Nonce = []byte("another nonce!!!")
			otherSpec, err := jobs.SignSpec(testKey(t, 0), &env)
			if err != nil {
				// The test's submitter key differs; sign under the liar's own key instead.
				env.Submitter, _ = crypto.PeerID(key)
				otherSpec, err = jobs.SignSpec(key, &env)
				if err != nil {
					t.Error(err)
					return
				}
			}
			r, _ := fakeResult(key, otherSpec, jobs.FailureNone)
			sendResult(t, conn, key, spec.ID, false, r, signedBytes(t, r))
		}, "which was not offered"},
		{"malformed message", 1, func(t *testing.T, key crypto.PrivKey, spec *jobs.SignedSpec, s network.Stream, conn *proto.Conn) {
			s.Write(append(varint.ToUvarint(5), 0x06, 0xff, 0xff, 0xff, 0xff))
		}, "malformed"},
		{"oversize message", 1, func(t *testing.T, key crypto.PrivKey, spec *jobs.SignedSpec, s network.Stream, conn *proto.Conn) {
			s.Write(varint.ToUvarint(proto.MaxMessageSize + 1))
			s.Write(make([]byte, 4096))
		}, "malformed"},
		{"wrong message", 1, func(t *testing.T, key crypto.PrivKey, spec *jobs.SignedSpec, s network.Stream, conn *proto.Conn) {
			conn.Write(&proto.Reveal{Job: spec.ID}, time.Second)
		}, "where a result was due"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t, 4, clusterOpts{workerCfg: func(i int, wc *WorkerConfig) {
				if i == 1 {
					wc.Executor = nil // node 1 speaks the protocol by hand
				}
			}})
			bad := c.nodes[1]
			bad.h.SetStreamHandler(proto.ID, liar(t, bad.key, tt.lie))
			c.view.set([]capacity.Entry{entryFor(bad.id, 4), entryFor(c.nodes[2].id, 2), entryFor(c.nodes[3].id, 1)})
			st := c.run(c.spec(tt.replicas, tt.replicas))
			if st.Verdict != quorum.Verified {
				t.Fatalf("verdict %s (%s), want verified without the liar", st.Verdict, st.Reason)
			}
			if workersOf(st)[bad.id] {
				t.Fatalf("the liar's result was kept: %+v", st.Results)
			}
			found := false
			for _, w := range st.Workers {
				if w.Attempts > 1 {
					found = true
				}
			}
			if !found {
				t.Errorf("no replica was replaced: %+v", st.Workers)
			}
			// The reason the liar was dropped is logged per replica until replaced;
			// check it through a fresh job whose only candidate is the liar.
			c.view.set([]capacity.Entry{entryFor(bad.id, 4)})
			c.mgr.Close()
			c.mcfg.Retries = 1
			c.mcfg.CommitWait = 100 * time.Millisecond
			c.mcfg.Deadline = func(*jobs.SignedSpec) time.Duration { return 2 * time.Second }
			c.startManager()
			spec := c.spec(tt.replicas, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := c.mgr.Submit(ctx, spec); err != nil {
				t.Fatal(err)
			}
			st, err := c.mgr.Wait(ctx, spec.ID)
			if err != nil {
				t.Fatal(err)
			}
			if st.Verdict == quorum.Verified && workersOf(st)[bad.id] {
				t.Fatalf("the liar's result verified: %+v", st)
			}
			if !strings.Contains(st.Reason+st.Workers[0].Error, tt.want) {
				t.Errorf("reason %q / error %q, want it to mention %q", st.Reason, st.Workers[0].Error, tt.want)
			}
		})
	}
}

// TestWorkerRejectsBadOffers speaks to a real worker by hand: every bad
// offer is declined or dropped, and the worker keeps serving.
func TestWorkerRejectsBadOffers(t *testing.T) {
	c := newCluster(t, 2, clusterOpts{})
	w := c.nodes[1]
	good := c.spec(1, 1)
	otherKey := testKey(t, 4242)
	otherID, _ := crypto.PeerID(otherKey)
	env := *good.Envelope
	env.Submitter = otherID
	foreign, err := jobs.SignSpec(otherKey, &env)
	if err != nil {
		t.Fatal(err)
	}
	foreignBytes, _ := foreign.Encode()
	goodBytes, _ := good.Encode()
	mangled := append([]byte(nil), goodBytes...)
	mangled[len(mangled)-5] ^= 1

	exchange := func(raw []byte, m proto.Msg) (proto.Msg, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := c.nodes[0].h.NewStream(ctx, w.id, proto.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Reset()
		conn := proto.NewConn(s)
		if raw != nil {
			s.Write(raw)
		} else if err := conn.Write(m, time.Second); err != nil {
			t.Fatal(err)
		}
		return conn.Read(5 * time.Second)
	}
	cases := []struct {
		name string
		raw  []byte
		msg  proto.Msg
		code proto.Code // 0: the stream is dropped or answered with an error
	}{
		{"garbage frame", append(varint.ToUvarint(3), 1, 2, 3), nil, 0},
		{"oversize frame", varint.ToUvarint(proto.MaxMessageSize + 10), nil, 0},
		{"not an offer", nil, &proto.Reveal{Job: good.ID}, 0},
		{"spec of another submitter", nil, &proto.Offer{Job: foreign.ID, Spec: foreignBytes, RunTimeout: time.Second}, proto.CodeRefused},
		{"forged spec signature", nil, &proto.Offer{Job: good.ID, Spec: mangled, RunTimeout: time.Second}, proto.CodeBadSpec},
		{"job CID mismatch", nil, &proto.Offer{Job: foreign.ID, Spec: goodBytes, RunTimeout: time.Second}, proto.CodeBadSpec},
		{"commit flag wrong", nil, &proto.Offer{Job: good.ID, Spec: goodBytes, Commit: true, RunTimeout: time.Second}, proto.CodeBadSpec},
	}
	for _, tc := range cases {
		m, err := exchange(tc.raw, tc.msg)
		if tc.code == 0 {
			if err == nil && m.Type() != proto.TypeError {
				t.Errorf("%s: worker answered %s, want the stream dropped or an error", tc.name, m.Type())
			}
			continue
		}
		d, ok := m.(*proto.Decline)
		if err != nil || !ok || d.Code != tc.code {
			t.Errorf("%s: worker answered %v, %v; want decline %s", tc.name, m, err, tc.code)
		}
	}
	if n := w.runner.runs.Load(); n != 0 {
		t.Errorf("runner ran %d times for bad offers", n)
	}
	// The worker still serves a good job.
	if st := c.run(good); st.Verdict != quorum.Verified {
		t.Fatalf("good job after bad offers: %s (%s)", st.Verdict, st.Reason)
	}
}
