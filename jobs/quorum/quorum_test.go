package quorum

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multicodec"

	"github.com/shoalnet/shoal/crypto"
	"github.com/shoalnet/shoal/jobs"
)

func key(t *testing.T, seed byte) crypto.PrivKey {
	t.Helper()
	k, err := crypto.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{seed}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func id(t *testing.T, seed byte) peer.ID {
	t.Helper()
	p, err := crypto.PeerID(key(t, seed))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func c(s string) cid.Cid { return crypto.CIDOf(multicodec.Raw, []byte(s)) }

func TestCommitReveal(t *testing.T) {
	k := key(t, 1)
	job, res := c("job"), c("result")
	cm, err := Commit(k, job, res)
	if err != nil {
		t.Fatal(err)
	}
	if err := cm.Verify(); err != nil {
		t.Fatalf("Verify(fresh commitment) = %v", err)
	}
	r := Result{Job: job, Worker: id(t, 1), CID: res}
	if err := CheckReveal(cm, r); err != nil {
		t.Fatalf("CheckReveal(matching) = %v", err)
	}
	for name, bad := range map[string]Result{
		"other result": {Job: job, Worker: id(t, 1), CID: c("other")},
		"other worker": {Job: job, Worker: id(t, 2), CID: res},
		"other job":    {Job: c("job2"), Worker: id(t, 1), CID: res},
	} {
		if err := CheckReveal(cm, bad); !errors.Is(err, ErrRevealMismatch) {
			t.Errorf("CheckReveal(%s) = %v, want ErrRevealMismatch", name, err)
		}
	}
	// Every single-byte change of the signature or hash must fail.
	for i := range cm.Sig {
		m := cm
		m.Sig = bytes.Clone(cm.Sig)
		m.Sig[i] ^= 1
		if err := m.Verify(); !errors.Is(err, crypto.ErrBadSignature) {
			t.Errorf("Verify(sig byte %d flipped) = %v, want ErrBadSignature", i, err)
		}
	}
	for i := range cm.Hash {
		m := cm
		m.Hash[i] ^= 1
		if err := m.Verify(); err == nil {
			t.Errorf("Verify(hash byte %d flipped) succeeded", i)
		}
	}
	// A commitment re-labelled as another worker's does not verify.
	m := cm
	m.Worker = id(t, 2)
	if err := m.Verify(); err == nil {
		t.Error("Verify(commitment with another worker) succeeded")
	}
}

func TestDecide(t *testing.T) {
	good := jobs.Outcome{ExitCode: 0, Stdout: c("hello")}
	bad1 := jobs.Outcome{ExitCode: 0, Stdout: c("wrong 1")}
	bad2 := jobs.Outcome{ExitCode: 0, Stdout: c("wrong 2")}
	mk := func(os ...jobs.Outcome) []Result {
		var rs []Result
		for i, o := range os {
			rs = append(rs, Result{Worker: id(t, byte(i+1)), Outcome: o})
		}
		return rs
	}
	tests := []struct {
		name    string
		results []Result
		quorum  int
		want    Kind
		dis     int
	}{
		{"one of one", mk(good), 1, Verified, 0},
		{"none", nil, 1, Failed, 0},
		{"three agree", mk(good, good, good), 2, Verified, 0},
		{"one cheater", mk(good, bad1, good), 2, Verified, 1},
		{"two cheaters differ", mk(good, bad1, bad2), 2, Mismatch, 3},
		{"two of three needed, one answered", mk(good), 2, Failed, 0},
		{"two answered, disagree", mk(good, bad1), 2, Mismatch, 2},
		{"two outcomes reach a low quorum", mk(good, good, bad1, bad1), 2, Mismatch, 4},
		{"exit code differs", mk(good, jobs.Outcome{ExitCode: 1, Stdout: good.Stdout}, good), 2, Verified, 1},
	}
	for _, tt := range tests {
		v := Decide(tt.results, tt.quorum)
		if v.Kind != tt.want || len(v.Disagreeing) != tt.dis {
			t.Errorf("%s: Decide = %s with %d disagreeing (%s), want %s with %d", tt.name, v.Kind, len(v.Disagreeing), v.Reason, tt.want, tt.dis)
		}
		if v.Kind == Verified && v.Outcome != good {
			t.Errorf("%s: Decide verified %v, want %v", tt.name, v.Outcome, good)
		}
	}
	// One cheater is named.
	rs := mk(good, bad1, good)
	v := Decide(rs, 2)
	if len(v.Disagreeing) != 1 || v.Disagreeing[0] != rs[1].Worker {
		t.Errorf("Decide named %v, want [%s]", v.Disagreeing, rs[1].Worker)
	}
	// A worker counted twice counts once.
	dup := append(mk(good), mk(good)...)
	if v := Decide(dup, 2); v.Kind != Failed {
		t.Errorf("Decide(same worker twice, quorum 2) = %s, want failed", v.Kind)
	}
}

func ExampleDecide() {
	w := []peer.ID{"worker-a", "worker-b", "worker-c"}
	ok := crypto.CIDOf(multicodec.Raw, []byte("hello\n"))
	wrong := crypto.CIDOf(multicodec.Raw, []byte("hello from a cheater\n"))
	v := Decide([]Result{
		{Worker: w[0], Outcome: jobs.Outcome{Stdout: ok}},
		{Worker: w[1], Outcome: jobs.Outcome{Stdout: wrong}},
		{Worker: w[2], Outcome: jobs.Outcome{Stdout: ok}},
	}, 2)
	fmt.Println(v.Kind, len(v.Agreeing), v.Disagreeing[0] == w[1])
	// Output: verified 2 true
}
