package capacity

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	dto "github.com/prometheus/client_model/go"
)

// A countTracer counts the adverts a node receives (every copy) and validates.
type countTracer struct {
	received  atomic.Int64 // messages in received RPCs, duplicates included
	validated atomic.Int64 // messages that went through validation
}

var _ pubsub.RawTracer = (*countTracer)(nil)

func (c *countTracer) RecvRPC(rpc *pubsub.RPC)                              { c.received.Add(int64(len(rpc.GetPublish()))) }
func (c *countTracer) ValidateMessage(*pubsub.Message)                      { c.validated.Add(1) }
func (c *countTracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (c *countTracer) OnClosedOutboundStream(peer.ID)                       {}
func (c *countTracer) Join(string)                                          {}
func (c *countTracer) Leave(string)                                         {}
func (c *countTracer) Graft(peer.ID, string)                                {}
func (c *countTracer) Prune(peer.ID, string)                                {}
func (c *countTracer) DeliverMessage(*pubsub.Message)                       {}
func (c *countTracer) RejectMessage(*pubsub.Message, string)                {}
func (c *countTracer) DuplicateMessage(*pubsub.Message)                     {}
func (c *countTracer) ThrottlePeer(peer.ID)                                 {}
func (c *countTracer) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (c *countTracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (c *countTracer) DropRPC(*pubsub.RPC, peer.ID)                         {}
func (c *countTracer) UndeliverableMessage(*pubsub.Message)                 {}

// newBenchNode starts a node with default timing, no coalescing interval
// and tracer attached to its gossipsub.
func newBenchNode(b *testing.B, seed uint64, tracer *countTracer) *testNode {
	b.Helper()
	key := testKey(b, seed)
	h, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		b.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	ps, err := pubsub.NewGossipSub(ctx, h, append(PubSubOptions(testNetwork), pubsub.WithRawTracer(tracer))...)
	if err != nil {
		b.Fatal(err)
	}
	svc, err := New(ctx, ps, h, key, testNetwork, WithMinInterval(0))
	if err != nil {
		b.Fatal(err)
	}
	return &testNode{key: key, h: h, ps: ps, svc: svc, stop: stop}
}

// counterValue returns the accepted-advert counter of s.
func counterValue(s *Service) float64 {
	var m dto.Metric
	if err := s.m.accepted.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// benchCluster starts n nodes with default timing; node i connects to up to
// three random earlier nodes (a connected random graph, like DHT-found
// peers). It waits until every view holds every node.
func benchCluster(b *testing.B, n int) ([]*testNode, []*countTracer) {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	nodes := make([]*testNode, n)
	tracers := make([]*countTracer, n)
	for i := range nodes {
		tracers[i] = &countTracer{}
		nodes[i] = newBenchNode(b, uint64(1000+i), tracers[i])
		b.Cleanup(nodes[i].close)
		if i > 0 {
			for _, j := range rng.Perm(i)[:min(i, 3)] {
				connect(b, nodes[i], nodes[j])
			}
		}
	}
	waitFor(b, 120*time.Second, fmt.Sprintf("every view to hold %d adverts", n), func() bool {
		for _, nd := range nodes {
			if len(nd.svc.View()) != n {
				return false
			}
		}
		return true
	})
	return nodes, tracers
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// BenchmarkPropagation measures the time from a slot change on one node to
// the advert's arrival in every other node's view. It reports the median
// and p99 of single arrivals (arrival-*) and of the last arrival of each
// advert (all-*), in milliseconds.
//
//	go test -run '^$' -bench Propagation -benchtime 200x ./jobs/capacity/
func BenchmarkPropagation(b *testing.B) {
	for _, n := range []int{10, 30} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			nodes, _ := benchCluster(b, n)
			var arrivals, alls []time.Duration
			b.ResetTimer()
			for i := range b.N {
				src := nodes[i%n]
				free := i % 1000
				start := time.Now()
				if err := src.svc.SetSlots(1000, free); err != nil {
					b.Fatal(err)
				}
				var last time.Duration
				for _, nd := range nodes {
					if nd == src {
						continue
					}
					deadline := time.Now().Add(60 * time.Second)
					for {
						e, ok := nd.svc.Lookup(src.id())
						if ok && e.SlotsTotal == 1000 && e.SlotsFree == free && e.Received.After(start) {
							d := e.Received.Sub(start)
							arrivals = append(arrivals, d)
							last = max(last, d)
							break
						}
						if time.Now().After(deadline) {
							b.Fatalf("advert %d of %s did not reach %s within 60s", i, src.id(), nd.id())
						}
						select {
						case <-nd.svc.Changed():
						case <-time.After(5 * time.Millisecond):
						}
					}
				}
				alls = append(alls, last)
			}
			b.StopTimer()
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			b.ReportMetric(ms(percentile(arrivals, 0.5)), "arrival-p50-ms")
			b.ReportMetric(ms(percentile(arrivals, 0.99)), "arrival-p99-ms")
			b.ReportMetric(ms(percentile(alls, 0.5)), "all-p50-ms")
			b.ReportMetric(ms(percentile(alls, 0.99)), "all-p99-ms")
		})
	}
}

// BenchmarkSteadyState30 runs 30 nodes with the default heartbeat and no
// slot changes, and reports per node the advert messages received (every
// copy, from all peers) and validated per second. One iteration is one
// heartbeat period (10 s).
//
//	go test -run '^$' -bench SteadyState30 -benchtime 3x ./jobs/capacity/
func BenchmarkSteadyState30(b *testing.B) {
	nodes, tracers := benchCluster(b, 30)
	recv0, val0 := sumCounts(tracers)
	start := time.Now()
	b.ResetTimer()
	for range b.N {
		time.Sleep(DefaultHeartbeat)
	}
	b.StopTimer()
	recv1, val1 := sumCounts(tracers)
	secs := time.Since(start).Seconds() * float64(len(nodes))
	b.ReportMetric(float64(recv1-recv0)/secs, "recv-msgs/s/node")
	b.ReportMetric(float64(val1-val0)/secs, "validated-msgs/s/node")
}

// BenchmarkSaturation30 makes all 30 nodes change their free slots as fast
// as they can (no coalescing interval) and reports the adverts per second
// each node accepts into its view, and receives and validates.
//
//	go test -run '^$' -bench Saturation30 -benchtime 2000x ./jobs/capacity/
func BenchmarkSaturation30(b *testing.B) {
	nodes, tracers := benchCluster(b, 30)
	var accepted0 int64
	for _, nd := range nodes {
		accepted0 += int64(counterValue(nd.svc))
	}
	recv0, val0 := sumCounts(tracers)
	start := time.Now()
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N/len(nodes) + 1
	for _, nd := range nodes {
		wg.Go(func() {
			for i := range per {
				nd.svc.SetSlots(1000, i%1000)
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	elapsed := time.Since(start).Seconds() * float64(len(nodes))
	var accepted1 int64
	for _, nd := range nodes {
		accepted1 += int64(counterValue(nd.svc))
	}
	recv1, val1 := sumCounts(tracers)
	b.ReportMetric(float64(accepted1-accepted0)/elapsed, "accepted-adverts/s/node")
	b.ReportMetric(float64(recv1-recv0)/elapsed, "recv-msgs/s/node")
	b.ReportMetric(float64(val1-val0)/elapsed, "validated-msgs/s/node")
}

func sumCounts(ts []*countTracer) (recv, validated int64) {
	for _, t := range ts {
		recv += t.received.Load()
		validated += t.validated.Load()
	}
	return recv, validated
}

// BenchmarkOpenAdvert measures the decoding and checking of one sealed
// advert (envelope, signature, payload, fields): the CPU cost per advert
// of the topic validator, which bounds the adverts per second a node can
// take (gossipsub's own message signature check comes on top).
//
//	go test -run '^$' -bench 'OpenAdvert|SealAdvert' ./jobs/capacity/
func BenchmarkOpenAdvert(b *testing.B) {
	key := testKey(b, 1)
	a := testAdvert(b, key)
	data, err := a.Seal(key)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := OpenAdvert(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealAdvert measures encoding and signing one advert.
func BenchmarkSealAdvert(b *testing.B) {
	key := testKey(b, 1)
	a := testAdvert(b, key)
	for b.Loop() {
		if _, err := a.Seal(key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConverge10 starts 10 nodes with default timing, each connecting
// to up to three earlier ones, and measures the time from the last
// connection to the moment every view holds all 10 adverts (heartbeats are
// 10 s apart, so only start-up and join-triggered adverts count).
//
//	go test -run '^$' -bench Converge10 -benchtime 5x ./jobs/capacity/
func BenchmarkConverge10(b *testing.B) {
	var total time.Duration
	for i := range b.N {
		b.StopTimer()
		rng := rand.New(rand.NewPCG(uint64(i), 3))
		nodes := make([]*testNode, 10)
		for j := range nodes {
			nodes[j] = newBenchNode(b, uint64(5000+100*i+j), &countTracer{})
		}
		b.StartTimer()
		for j := 1; j < len(nodes); j++ {
			for _, k := range rng.Perm(j)[:min(j, 3)] {
				connect(b, nodes[j], nodes[k])
			}
		}
		connected := time.Now()
		waitFor(b, 60*time.Second, "every view to hold 10 adverts", func() bool {
			for _, nd := range nodes {
				if len(nd.svc.View()) != len(nodes) {
					return false
				}
			}
			return true
		})
		total += time.Since(connected)
		b.StopTimer()
		for _, nd := range nodes {
			nd.close()
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total)/float64(b.N)/float64(time.Millisecond), "converge-ms")
}
