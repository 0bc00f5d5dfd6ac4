package node

import (
	"bytes"
	"testing"
	"time"

	"github.com/multiformats/go-multicodec"

	"github.com/shoalnet/shoal/crypto"
	"github.com/shoalnet/shoal/jobs"
	"github.com/shoalnet/shoal/jobs/dist"
	"github.com/shoalnet/shoal/jobs/quorum"
	"github.com/shoalnet/shoal/node/client"
)

func TestSetReplicas(t *testing.T) {
	tests := []struct {
		replicas, quorum    int
		wantRep, wantQuorum int
		ok                  bool
	}{
		{0, 0, 1, 1, true},
		{3, 0, 3, 2, true},
		{3, 3, 3, 3, true},
		{4, 0, 4, 3, true},
		{3, 4, 0, 0, false},
		{-1, 0, 0, 0, false},
		{jobs.MaxReplicas + 1, 0, 0, 0, false},
	}
	for _, tt := range tests {
		var env jobs.Envelope
		err := setReplicas(&env, tt.replicas, tt.quorum)
		if (err == nil) != tt.ok || tt.ok && (env.Replicas != tt.wantRep || env.Quorum != tt.wantQuorum) {
			t.Errorf("setReplicas(%d, %d) = %d/%d, %v; want %d/%d ok=%v", tt.replicas, tt.quorum, env.Replicas, env.Quorum, err, tt.wantRep, tt.wantQuorum, tt.ok)
		}
	}
}

// TestMergeNetStatus checks that a verified job shows the agreeing result,
// its verdict and the disagreeing worker.
func TestMergeNetStatus(t *testing.T) {
	key := func(b byte) crypto.PrivKey {
		k, err := crypto.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{b}, 64)))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	sub := key(1)
	subID, _ := crypto.PeerID(sub)
	env, err := jobs.NewEnvelope(subID, jobs.Computation{Module: crypto.CIDOf(multicodec.Raw, []byte("m"))}, bytes.NewReader(make([]byte, 16)), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	env.Replicas, env.Quorum = 3, 2
	spec, err := jobs.SignSpec(sub, env)
	if err != nil {
		t.Fatal(err)
	}
	st := dist.Status{Job: spec.ID, State: jobs.StateDone, Verdict: quorum.Verified, Submitter: subID}
	for i, out := range []string{"ok", "wrong", "ok"} {
		k := key(byte(10 + i))
		w, _ := crypto.PeerID(k)
		r := &jobs.Result{Version: jobs.FormatVersion, Job: spec.ID, Computation: spec.CompCID, Worker: w,
			Stdout: crypto.CIDOf(multicodec.Raw, []byte(out)), Stderr: crypto.CIDOf(multicodec.Raw, nil),
			Outputs: crypto.CIDOf(multicodec.Raw, nil)}
		sr, err := jobs.SignResult(k, r)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := sr.Encode()
		st.Results = append(st.Results, dist.ResultStatus{Worker: w, CID: sr.CID, Stdout: r.Stdout, Stderr: r.Stderr,
			Outputs: r.Outputs, Vote: true, Agrees: out == "ok", Signed: b})
		if out != "ok" {
			st.Disagreeing = append(st.Disagreeing, w)
		}
	}
	var info client.JobInfo
	mergeNetStatus(&info, spec, st)
	if info.State != "done" || info.Verdict != "verified" || len(info.Results) != 3 || len(info.Disagreeing) != 1 {
		t.Fatalf("mergeNetStatus = %+v", info)
	}
	if info.Stdout != crypto.CIDOf(multicodec.Raw, []byte("ok")).String() || info.ExitCode == nil || *info.ExitCode != 0 {
		t.Errorf("top-level result %s exit %v, want the agreed stdout and 0", info.Stdout, info.ExitCode)
	}
}
