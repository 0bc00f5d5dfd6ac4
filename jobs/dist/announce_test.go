package dist

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/shoalnet/shoal/crypto"
	"github.com/shoalnet/shoal/jobs"
	"github.com/shoalnet/shoal/jobs/proto"
	"github.com/shoalnet/shoal/jobs/quorum"
)

// finishedStatus returns a spec of submitter key and a verified status
// over results from the given worker keys (cheaters get a wrong stdout).
func finishedStatus(t testing.TB, key crypto.PrivKey, workers []crypto.PrivKey, cheat map[int]bool, q int) (*jobs.SignedSpec, Status) {
	t.Helper()
	return finishedStatusN(t, 0, key, workers, cheat, q)
}

// finishedStatusN is finishedStatus for the n-th of distinct jobs.
func finishedStatusN(t testing.TB, n int, key crypto.PrivKey, workers []crypto.PrivKey, cheat map[int]bool, q int) (*jobs.SignedSpec, Status) {
	t.Helper()
	self, _ := crypto.PeerID(key)
	env, err := jobs.NewEnvelope(self, jobs.Computation{Module: testCID("module")}, bytes.NewReader(make([]byte, 16)), time.UnixMilli(1_700_000_000_000+int64(n)))
	if err != nil {
		t.Fatal(err)
	}
	env.Replicas, env.Quorum = len(workers), q
	spec, err := jobs.SignSpec(key, env)
	if err != nil {
		t.Fatal(err)
	}
	var votes []quorum.Result
	st := Status{Job: spec.ID, Updated: time.UnixMilli(1_700_000_001_000)}
	for i, wk := range workers {
		r, err := fakeResult(wk, spec, jobs.FailureNone)
		if err != nil {
			t.Fatal(err)
		}
		if cheat[i] {
			w := &Worker{cfg: WorkerConfig{Key: wk, Cheat: CheatWrongStdout}, self: r.Result.Worker}
			if r, err = w.cheat(r); err != nil {
				t.Fatal(err)
			}
		}
		votes = append(votes, quorum.ResultOf(r))
		st.Results = append(st.Results, resultStatus(r, true))
	}
	v := quorum.Decide(votes, q)
	st.Verdict, st.Reason = v.Kind, v.Reason
	return spec, st
}

func TestAnnouncementSealOpen(t *testing.T) {
	key := testKey(t, 1)
	workers := []crypto.PrivKey{testKey(t, 2), testKey(t, 3), testKey(t, 4)}
	spec, st := finishedStatus(t, key, workers, map[int]bool{1: true}, 2)
	b, err := sealAnnouncement(key, spec, st)
	if err != nil {
		t.Fatal(err)
	}
	a, err := openAnnouncement(b)
	if err != nil {
		t.Fatalf("OpenAnnouncement(sealed) = %v", err)
	}
	got := a.Status()
	if got.Verdict != quorum.Verified || len(got.Results) != 3 || len(got.Disagreeing) != 1 || !got.Remote {
		t.Fatalf("Status() = %+v, want verified with 3 results and one disagreeing", got)
	}
	// Every single-byte change and every truncation is rejected.
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		if _, err := openAnnouncement(c); err == nil {
			t.Errorf("openAnnouncement(byte %d flipped) succeeded", i)
		}
	}
	for i := 0; i < len(b); i += 7 {
		if _, err := openAnnouncement(b[:i]); err == nil {
			t.Errorf("OpenAnnouncement(first %d bytes) succeeded", i)
		}
	}
	// A verdict the results do not give is rejected.
	lie := st
	lie.Verdict = quorum.Mismatch
	if b, err := sealAnnouncement(key, spec, lie); err != nil {
		t.Fatal(err)
	} else if _, err := openAnnouncement(b); err == nil {
		t.Error("OpenAnnouncement(false verdict) succeeded")
	}
	// Two cheaters: claiming verified is rejected.
	spec2, st2 := finishedStatus(t, key, workers, map[int]bool{1: true, 2: true}, 2)
	st2.Verdict = quorum.Verified
	if b, err := sealAnnouncement(key, spec2, st2); err != nil {
		t.Fatal(err)
	} else if _, err := openAnnouncement(b); err == nil {
		t.Error("OpenAnnouncement(verified over a mismatch) succeeded")
	}
	// Signed by someone other than the submitter.
	if b, err := sealAnnouncement(testKey(t, 9), spec, st); err != nil {
		t.Fatal(err)
	} else if _, err := openAnnouncement(b); err == nil {
		t.Error("OpenAnnouncement(signed by a non-submitter) succeeded")
	}
}

// The results topic's validator checks only the envelope's signature
// (CheckAnnouncements); a result with a forged signature inside passes it
// and is caught when the stored announcement is read (openAnnouncementOf).
func TestAnnouncementEmbeddedSignaturesCheckedOnRead(t *testing.T) {
	key := testKey(t, 1)
	workers := []crypto.PrivKey{testKey(t, 2), testKey(t, 3), testKey(t, 4)}
	spec, st := finishedStatus(t, key, workers, nil, 2)
	b, err := sealAnnouncement(key, spec, st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checkAnnouncement(b); err != nil {
		t.Fatalf("CheckAnnouncement(sealed) = %v", err)
	}
	r, err := jobs.DecodeSignedResult(st.Results[1].Signed)
	if err != nil {
		t.Fatal(err)
	}
	r.Sig = bytes.Clone(r.Sig)
	r.Sig[0] ^= 1
	forged := st
	forged.Results = slices.Clone(st.Results)
	if forged.Results[1].Signed, err = r.Encode(); err != nil {
		t.Fatal(err)
	}
	if b, err = sealAnnouncement(key, spec, forged); err != nil {
		t.Fatal(err)
	}
	a, err := checkAnnouncement(b)
	if err != nil {
		t.Fatalf("CheckAnnouncement(forged result inside) = %v, want it to pass the envelope check", err)
	}
	if a.Verdict.Kind != quorum.Verified {
		t.Fatalf("verdict %s, want verified", a.Verdict.Kind)
	}
	if _, err := openAnnouncement(b); !errors.Is(err, crypto.ErrBadSignature) {
		t.Fatalf("OpenAnnouncement(forged result inside) = %v, want a bad signature", err)
	}
	// The envelope's own signature is still checked by both.
	c := bytes.Clone(b)
	c[len(c)-1] ^= 1
	if _, err := checkAnnouncement(c); err == nil {
		t.Fatal("CheckAnnouncement(envelope signature changed) succeeded")
	}
}

// sealedBatch returns n distinct finished jobs of key and one envelope
// announcing them all.
func sealedBatch(t testing.TB, key crypto.PrivKey, n int) ([]*jobs.SignedSpec, []byte) {
	t.Helper()
	var specs []*jobs.SignedSpec
	var bodies [][]byte
	for i := range n {
		spec, st := finishedStatusN(t, i, key, []crypto.PrivKey{testKey(t, 2), testKey(t, 3)}, nil, 2)
		body, err := announcementBody(spec, st)
		if err != nil {
			t.Fatal(err)
		}
		specs, bodies = append(specs, spec), append(bodies, body)
	}
	b, err := SealAnnouncements(key, bodies)
	if err != nil {
		t.Fatal(err)
	}
	return specs, b
}

func TestAnnouncementBatch(t *testing.T) {
	key := testKey(t, 1)
	specs, b := sealedBatch(t, key, 3)
	for name, open := range map[string]func([]byte) ([]*Announced, error){"Open": openAnnouncements, "Check": CheckAnnouncements} {
		all, err := open(b)
		if err != nil || len(all) != 3 {
			t.Fatalf("%sAnnouncements(batch of 3) = %d, %v", name, len(all), err)
		}
		for i, a := range all {
			if a.Spec.ID != specs[i].ID || a.Verdict.Kind != quorum.Verified {
				t.Errorf("%sAnnouncements: announcement %d is job %s, %s; want %s, verified", name, i, a.Spec.ID, a.Verdict.Kind, specs[i].ID)
			}
		}
	}
	a, err := openAnnouncementOf(b, specs[1].ID)
	if err != nil || a.Spec.ID != specs[1].ID {
		t.Fatalf("openAnnouncementOf(job 1) = %v", err)
	}
	if _, err := openAnnouncementOf(b, testCID("not in the batch")); err == nil {
		t.Error("openAnnouncementOf(a job not in the batch) succeeded")
	}
	if _, err := openAnnouncement(b); err == nil {
		t.Error("openAnnouncement(batch of 3) succeeded; it opens one announcement")
	}
	for i := 0; i < len(b); i += 7 {
		c := bytes.Clone(b)
		c[i] ^= 0x10
		if _, err := CheckAnnouncements(c); err == nil {
			t.Errorf("CheckAnnouncements(byte %d flipped) succeeded", i)
		}
	}
	// A batch may only announce jobs its signer submitted.
	other, ost := finishedStatusN(t, 9, testKey(t, 5), []crypto.PrivKey{testKey(t, 2)}, nil, 1)
	body, err := announcementBody(other, ost)
	if err != nil {
		t.Fatal(err)
	}
	_, mine := finishedStatusN(t, 0, key, []crypto.PrivKey{testKey(t, 2)}, nil, 1)
	mineBody, err := announcementBody(specs[0], mine)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := SealAnnouncements(key, [][]byte{mineBody, body})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CheckAnnouncements(bad); err == nil {
		t.Error("CheckAnnouncements(a batch with another submitter's job) succeeded")
	}
}

// TestAnnounceFlushedOnClose: verdicts queued by Announce are published
// and stored even when the Gossip closes before the window is over.
func TestAnnounceFlushedOnClose(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, 1, clusterOpts{})
	ps, err := pubsub.NewGossipSub(ctx, c.nodes[0].h)
	if err != nil {
		t.Fatal(err)
	}
	ds := dssync.MutexWrap(datastore.NewMapDatastore())
	g, err := NewGossip(ps, "testnet", c.nodes[0].key, ds, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	g.window = time.Hour
	var ids []cid.Cid
	for i := range 3 {
		spec, st := finishedStatusN(t, i, c.nodes[0].key, []crypto.PrivKey{testKey(t, 2)}, nil, 1)
		if err := g.Announce(ctx, spec, st); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, spec.ID)
	}
	g.Close()
	st := &store{ds: ds}
	for _, id := range ids {
		if a, err := st.openAnnounced(ctx, id); err != nil || a.Spec.ID != id {
			t.Errorf("announcement of job %s after Close: %v", id, err)
		}
	}
}

// TestAnnouncedStatusFromAnotherNode runs a job submitted on node 0 and
// reads its outcome on node 2, which only heard the announcement.
func TestAnnouncedStatusFromAnotherNode(t *testing.T) {
	var gossips []*Gossip
	var stores []datastore.Batching
	c := newCluster(t, 3, clusterOpts{})
	ctx := context.Background()
	for _, nd := range c.nodes {
		ps, err := pubsub.NewGossipSub(ctx, nd.h, pubsub.WithMessageSignaturePolicy(pubsub.StrictSign), pubsub.WithFloodPublish(true))
		if err != nil {
			t.Fatal(err)
		}
		var ds datastore.Batching = dssync.MutexWrap(datastore.NewMapDatastore())
		if nd == c.nodes[0] {
			ds = c.ds
		}
		g, err := NewGossip(ps, "testnet", nd.key, ds, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		gossips = append(gossips, g)
		stores = append(stores, ds)
	}
	// Wait until node 0 sees both others on the topic.
	waitFor(t, "topic peers", func() bool { return len(gossips[0].topic.ListPeers()) == 2 })
	c.mgr.Close()
	c.mcfg.Announcer = gossips[0]
	c.startManager()
	st := c.run(c.spec(2, 2))
	if st.Verdict != quorum.Verified {
		t.Fatalf("verdict %s (%s)", st.Verdict, st.Reason)
	}
	other, err := NewManager(ManagerConfig{Host: c.nodes[2].h, Key: c.nodes[2].key, Store: stores[2], View: &staticView{}})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var got Status
	waitFor(t, "the announcement on node 2", func() bool {
		got, err = other.Status(ctx, st.Job)
		return err == nil
	})
	if !got.Remote || got.Verdict != quorum.Verified || len(got.Results) != 2 || got.Submitter != c.nodes[0].id {
		t.Fatalf("node 2 sees %+v", got)
	}
	if _, err := other.Status(ctx, testCID("no such job")); !errors.Is(err, ErrUnknownJob) {
		t.Errorf("Status(unknown) = %v, want ErrUnknownJob", err)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	key := testKey(t, 1)
	spec, st := finishedStatus(t, key, []crypto.PrivKey{testKey(t, 2), testKey(t, 3)}, nil, 2)
	rec := &record{Version: recordVersion, Spec: spec, State: jobs.StateDone, Verdict: st.Verdict, Reason: st.Reason,
		Attempts: 2, Created: time.UnixMilli(1), Updated: time.UnixMilli(2), Deadline: time.UnixMilli(3)}
	for i := range spec.Envelope.Replicas {
		rec.Replicas = append(rec.Replicas, ReplicaStatus{Replica: i, Worker: st.Results[i].Worker, State: jobs.StateDone, Attempts: 1})
	}
	for _, r := range st.Results {
		sr, err := jobs.DecodeSignedResult(r.Signed)
		if err != nil {
			t.Fatal(err)
		}
		rec.Results = append(rec.Results, sr)
	}
	b, err := encodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRecord(b)
	if err != nil {
		t.Fatalf("decodeRecord(encodeRecord) = %v", err)
	}
	if got.Spec.ID != spec.ID || len(got.Results) != 2 || got.Verdict != quorum.Verified ||
		len(got.Replicas) != 2 || got.Replicas[1].Worker != st.Results[1].Worker {
		t.Fatalf("decodeRecord = %+v", got)
	}
	if s := newJob(got).status(); s.Workers[1].Worker != st.Results[1].Worker || s.Workers[1].State != jobs.StateDone {
		t.Fatalf("status of a stored ended job: workers %+v", s.Workers)
	}
	// Replica statuses that do not fit the job are refused.
	rec.Replicas = rec.Replicas[:1]
	short, err := encodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	rec.Replicas = []ReplicaStatus{{Replica: 1, State: jobs.StateDone}, {Replica: 0, State: "lost"}}
	wrong, err := encodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		`{}`, `{"version":2}`, string(b) + " {}", string(short), string(wrong),
		`{"version":1,"spec":"","state":"done","attempts":0,"created":"2020-01-01T00:00:00Z","updated":"2020-01-01T00:00:00Z","deadline":"2020-01-01T00:00:00Z"}`,
	} {
		if _, err := decodeRecord([]byte(bad)); err == nil {
			t.Errorf("decodeRecord(%.60q) succeeded", bad)
		}
	}
}

func FuzzOpenAnnouncement(f *testing.F) {
	key := testKey(f, 1)
	spec, st := finishedStatus(f, key, []crypto.PrivKey{testKey(f, 2), testKey(f, 3), testKey(f, 4)}, map[int]bool{2: true}, 2)
	b, err := sealAnnouncement(key, spec, st)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	_, batch := sealedBatch(f, key, 2)
	f.Add(batch)
	f.Fuzz(func(t *testing.T, b []byte) {
		all, err := openAnnouncements(b)
		if err != nil {
			return
		}
		// Whatever opens is consistent: results for the job, verdict recomputable.
		for _, a := range all {
			for _, r := range a.Results {
				if r.Result.Job != a.Spec.ID {
					t.Fatalf("opened an announcement with a result for job %s", r.Result.Job)
				}
			}
		}
	})
}

func FuzzDecodeRecord(f *testing.F) {
	key := testKey(f, 1)
	spec, _ := finishedStatus(f, key, []crypto.PrivKey{testKey(f, 2)}, nil, 1)
	b, err := encodeRecord(&record{Version: recordVersion, Spec: spec, State: jobs.StateQueued})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	ended := &record{Version: recordVersion, Spec: spec, State: jobs.StateDone,
		Replicas: []ReplicaStatus{{Replica: 0, Worker: spec.Envelope.Submitter, State: jobs.StateDone, Attempts: 1}}}
	if b, err = encodeRecord(ended); err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		if _, err := encodeRecord(r); err != nil {
			t.Fatalf("a decoded record does not encode: %v", err)
		}
	})
}

// sealAnnouncement returns an envelope of the single-announcement payload
// type (which nodes still accept) for a finished job of key's node.
func sealAnnouncement(key crypto.PrivKey, spec *jobs.SignedSpec, st Status) ([]byte, error) {
	body, err := announcementBody(spec, st)
	if err != nil {
		return nil, err
	}
	return crypto.Seal(key, crypto.DomainJobAnnouncement, proto.AnnouncementPayloadType, body)
}

// openAnnouncements checks every announcement of an envelope in full, as
// a read does for the one it wants.
func openAnnouncements(data []byte) ([]*Announced, error) { return openAll(data, true) }

// openAnnouncement and checkAnnouncement are openAnnouncements and
// CheckAnnouncements for an envelope of exactly one announcement.
func openAnnouncement(data []byte) (*Announced, error)  { return openOne(data, true) }
func checkAnnouncement(data []byte) (*Announced, error) { return openOne(data, false) }

func openOne(data []byte, embedded bool) (*Announced, error) {
	all, err := openAll(data, embedded)
	if err != nil {
		return nil, err
	}
	if len(all) != 1 {
		return nil, fmt.Errorf("dist: envelope holds %d announcements, want one", len(all))
	}
	return all[0], nil
}
