package node

import (
	"fmt"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"
)

// otherTopic labels the messages of topics this node has not joined, so a
// peer cannot grow the metrics with topic names of its choosing.
const otherTopic = "other"

// gossipMetrics counts what the node's gossipsub router sends and
// receives: messages per topic, the copies of a message that arrive after
// the first, and control messages per kind. It is a pubsub.RawTracer;
// pubsub calls it synchronously from its event loop, so each call is a map
// lookup and an atomic add.
type gossipMetrics struct {
	sent, received, duplicates *prometheus.CounterVec // by topic
	control                    *prometheus.CounterVec // sent, by kind
	rpcs                       prometheus.Counter     // sent

	mu     sync.Mutex
	topics map[string]*topicCounters // joined topics
	other  *topicCounters
	kinds  [5]prometheus.Counter // idontwant, ihave, iwant, graft, prune
}

type topicCounters struct{ sent, received, duplicates prometheus.Counter }

// newGossipMetrics registers the counters in reg.
func newGossipMetrics(reg prometheus.Registerer) (*gossipMetrics, error) {
	g := &gossipMetrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_pubsub_sent_messages_total", Help: "Gossip messages this node sent to peers (its own and forwarded), by topic.",
		}, []string{"topic"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_pubsub_received_messages_total", Help: "Gossip messages this node received from peers, copies included, by topic.",
		}, []string{"topic"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_pubsub_duplicate_messages_total", Help: "Copies of gossip messages this node had already received, by topic.",
		}, []string{"topic"}),
		control: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_pubsub_sent_control_total", Help: "Gossipsub control messages this node sent, by kind.",
		}, []string{"kind"}),
		rpcs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_pubsub_sent_rpcs_total", Help: "Gossipsub RPCs (one frame each) this node sent to peers.",
		}),
		topics: make(map[string]*topicCounters),
	}
	g.other = g.countersFor(otherTopic)
	for i, k := range []string{"idontwant", "ihave", "iwant", "graft", "prune"} {
		g.kinds[i] = g.control.WithLabelValues(k)
	}
	for _, c := range []prometheus.Collector{g.sent, g.received, g.duplicates, g.control, g.rpcs} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register gossip metrics: %w", err)
		}
	}
	return g, nil
}

func (g *gossipMetrics) countersFor(topic string) *topicCounters {
	return &topicCounters{
		sent:       g.sent.WithLabelValues(topic),
		received:   g.received.WithLabelValues(topic),
		duplicates: g.duplicates.WithLabelValues(topic),
	}
}

func (g *gossipMetrics) topic(name string) *topicCounters {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.topics[name]; ok {
		return c
	}
	return g.other
}

// Join starts counting a topic under its own name.
func (g *gossipMetrics) Join(topic string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.topics[topic]; !ok {
		g.topics[topic] = g.countersFor(topic)
	}
}

// SendRPC counts an RPC queued for a peer: its messages and control parts.
func (g *gossipMetrics) SendRPC(rpc *pubsub.RPC, _ peer.ID) {
	g.rpcs.Inc()
	for _, m := range rpc.GetPublish() {
		g.topic(m.GetTopic()).sent.Inc()
	}
	ctl := rpc.GetControl()
	if ctl == nil {
		return
	}
	for i, n := range []int{len(ctl.GetIdontwant()), len(ctl.GetIhave()), len(ctl.GetIwant()), len(ctl.GetGraft()), len(ctl.GetPrune())} {
		if n > 0 {
			g.kinds[i].Add(float64(n))
		}
	}
}

// RecvRPC counts the messages of an RPC from a peer.
func (g *gossipMetrics) RecvRPC(rpc *pubsub.RPC) {
	for _, m := range rpc.GetPublish() {
		g.topic(m.GetTopic()).received.Inc()
	}
}

// DuplicateMessage counts a copy of a message already seen.
func (g *gossipMetrics) DuplicateMessage(msg *pubsub.Message) {
	g.topic(msg.GetTopic()).duplicates.Inc()
}

// The other events of pubsub.RawTracer are not counted.

func (g *gossipMetrics) AddPeer(peer.ID, protocol.ID)                         {}
func (g *gossipMetrics) RemovePeer(peer.ID)                                   {}
func (g *gossipMetrics) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (g *gossipMetrics) OnClosedOutboundStream(peer.ID)                       {}
func (g *gossipMetrics) Leave(string)                                         {}
func (g *gossipMetrics) Graft(peer.ID, string)                                {}
func (g *gossipMetrics) Prune(peer.ID, string)                                {}
func (g *gossipMetrics) ValidateMessage(*pubsub.Message)                      {}
func (g *gossipMetrics) DeliverMessage(*pubsub.Message)                       {}
func (g *gossipMetrics) RejectMessage(*pubsub.Message, string)                {}
func (g *gossipMetrics) ThrottlePeer(peer.ID)                                 {}
func (g *gossipMetrics) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (g *gossipMetrics) DropRPC(*pubsub.RPC, peer.ID)                         {}
func (g *gossipMetrics) UndeliverableMessage(*pubsub.Message)                 {}

var _ pubsub.RawTracer = (*gossipMetrics)(nil)
