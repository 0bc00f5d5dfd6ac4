package capacity

import (
	"crypto/sha256"
	"net"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Topic returns the gossipsub topic of capacity adverts for network:
// "shoal/<network>/capacity/1".
func Topic(network string) string {
	return "shoal/" + network + "/capacity/1"
}

// TopicScoreParams returns the gossipsub score parameters of the capacity
// topic. Adverts are few (one per peer per heartbeat, plus one per change),
// so the topic rewards time in the mesh and first deliveries mildly, does not
// punish a quiet mesh (P3 and P3b are off: a low-rate topic would punish
// honest peers), and weighs invalid adverts heavily: the penalty is
// -100 × (invalid count)², decaying over about an hour, so five invalid
// adverts in short order put a peer below the graylist threshold of
// PeerScoreThresholds.
func TopicScoreParams() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		TopicWeight: 1,

		TimeInMeshWeight:  0.01,
		TimeInMeshQuantum: time.Second,
		TimeInMeshCap:     600, // ≤ +6 after ten minutes in the mesh

		FirstMessageDeliveriesWeight: 1,
		FirstMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(10 * time.Minute),
		FirstMessageDeliveriesCap:    10,

		InvalidMessageDeliveriesWeight: -100,
		InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(time.Hour),

		// P3/P3b off: zero weights, but gossipsub requires sane values.
		MeshMessageDeliveriesDecay:      pubsub.ScoreParameterDecay(time.Minute),
		MeshMessageDeliveriesCap:        1,
		MeshMessageDeliveriesThreshold:  1,
		MeshMessageDeliveriesWindow:     10 * time.Millisecond,
		MeshMessageDeliveriesActivation: time.Minute,
		MeshFailurePenaltyDecay:         pubsub.ScoreParameterDecay(time.Minute),
	}
}

// PeerScoreParams returns the node-wide gossipsub peer score parameters
// with the capacity topic of network already in Topics. Other topics add
// their own entry to Topics before the map is handed to gossipsub, or call
// (*pubsub.Topic).SetScoreParams after joining.
//
// The IP colocation penalty is on (more than 10 peers behind one address
// cost -10 × excess²) for public addresses only: loopback and private
// (RFC 1918, RFC 4193) and link-local addresses are exempt, because a
// Shoal network is often many nodes on one machine or one LAN.
func PeerScoreParams(network string) *pubsub.PeerScoreParams {
	return &pubsub.PeerScoreParams{
		Topics:        map[string]*pubsub.TopicScoreParams{Topic(network): TopicScoreParams()},
		TopicScoreCap: 50,

		AppSpecificScore:  func(peer.ID) float64 { return 0 },
		AppSpecificWeight: 1,

		IPColocationFactorWeight:    -10,
		IPColocationFactorThreshold: 10,
		IPColocationFactorWhitelist: colocationWhitelist(),

		BehaviourPenaltyWeight:    -10,
		BehaviourPenaltyThreshold: 6,
		BehaviourPenaltyDecay:     pubsub.ScoreParameterDecay(10 * time.Minute),

		DecayInterval: time.Second,
		DecayToZero:   0.01,
		RetainScore:   10 * time.Minute,
	}
}

// PeerScoreThresholds returns the gossipsub score thresholds that go with
// PeerScoreParams: below -500 a peer gets no gossip, below -1000 nothing is
// published to it, below -2500 its messages are ignored (graylisted).
func PeerScoreThresholds() *pubsub.PeerScoreThresholds {
	return &pubsub.PeerScoreThresholds{
		GossipThreshold:             -500,
		PublishThreshold:            -1000,
		GraylistThreshold:           -2500,
		AcceptPXThreshold:           10,
		OpportunisticGraftThreshold: 3,
	}
}

// PubSubOptions returns the options a node must pass to pubsub.NewGossipSub
// for the capacity topic of network: MessagePolicy, and peer scoring with
// PeerScoreParams and PeerScoreThresholds.
func PubSubOptions(network string) []pubsub.Option {
	return append(MessagePolicy(),
		pubsub.WithPeerScore(PeerScoreParams(network), PeerScoreThresholds()))
}

// MessagePolicy returns the gossipsub options of Shoal's message policy,
// which every node of a network must share: messages carry no author, no
// sequence number and no gossipsub signature (StrictNoSign: a signed
// message is rejected), and a message's ID is the SHA-256 of its topic and
// data. Every message Shoal publishes is signed inside (an advert, a
// results announcement, a checkpoint, evidence), so a second signature by
// whoever published it proved nothing the validators use and cost a
// signature per message and a check per message on every node. Identical
// data is one message, whoever relays it, for SeenMessagesTTL: a node that
// publishes the same bytes again later (a ledger checkpoint re-announced
// every 30 s for peers that joined) is heard again.
func MessagePolicy() []pubsub.Option {
	return []pubsub.Option{
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(contentMessageID),
		pubsub.WithSeenMessagesTTL(SeenMessagesTTL),
	}
}

// SeenMessagesTTL is how long a node remembers a message ID as seen: far
// longer than a message takes to cross a network (gossip asks for missed
// messages for a few heartbeats only), and shorter than the 30 s after
// which a node re-announces an unchanged ledger checkpoint.
const SeenMessagesTTL = 20 * time.Second

// contentMessageID is the message ID of MessagePolicy.
func contentMessageID(m *pb.Message) string {
	h := sha256.New()
	h.Write([]byte(m.GetTopic()))
	h.Write([]byte{0})
	h.Write(m.GetData())
	return string(h.Sum(nil))
}

// colocationWhitelist returns the networks exempt from the IP colocation
// penalty: loopback, private and link-local ranges.
func colocationWhitelist() []*net.IPNet {
	var out []*net.IPNet
	for _, cidr := range []string{"127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
		"169.254.0.0/16", "::1/128", "fc00::/7", "fe80::/10"} {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			panic("capacity: bad built-in CIDR " + cidr) // a constant above is wrong
		}
		out = append(out, n)
	}
	return out
}
