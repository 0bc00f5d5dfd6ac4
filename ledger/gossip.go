package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// GossipTopic returns the pubsub topic of network's ledger gossip:
// "shoal/<network>/ledger/1".
func GossipTopic(network string) string { return "shoal/" + network + "/ledger/1" }

// A GossipType is the first byte of a gossip message. Values are part of
// the wire format: append only.
type GossipType byte

// Gossip message types.
const (
	GossipCheckpoint GossipType = 1 // followed by a checkpoint note signed by its log's key (anyone may relay it)
	GossipEvidence   GossipType = 2 // followed by encoded evidence (anyone may publish it)
)

// MaxGossipSize bounds a gossip message.
const MaxGossipSize = 1 + MaxEvidenceSize

// A GossipMessage is a validated ledger gossip message: exactly one of
// Checkpoint and Evidence is set.
type GossipMessage struct {
	Checkpoint *Checkpoint
	Evidence   *Evidence
}

// ErrBadGossip is returned (wrapped) by DecodeGossip for rejected messages.
var ErrBadGossip = errors.New("ledger: bad gossip message")

// EncodeGossipCheckpoint returns the gossip message carrying cp.
func EncodeGossipCheckpoint(cp *Checkpoint) []byte {
	return append([]byte{byte(GossipCheckpoint)}, cp.Note...)
}

// EncodeGossipEvidence returns the gossip message carrying ev.
func EncodeGossipEvidence(ev *Evidence) []byte {
	return append([]byte{byte(GossipEvidence)}, ev.Encoded()...)
}

// DecodeGossip validates an untrusted gossip message of network: a
// checkpoint must be signed by the key of its origin, a log of network;
// evidence must verify (see DecodeEvidence) and be about a log of network.
// Both are self-certifying, so who published the message does not matter
// (messages carry no author; see docs/protocol.md).
func DecodeGossip(network string, data []byte) (*GossipMessage, error) {
	if len(data) == 0 || len(data) > MaxGossipSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadGossip, len(data))
	}
	switch GossipType(data[0]) {
	case GossipCheckpoint:
		cp, err := ParseCheckpoint(data[1:], "")
		if err != nil {
			return nil, fmt.Errorf("%w: checkpoint: %w", ErrBadGossip, err)
		}
		if n, _, err := cp.Origin.Parse(); err != nil || n != network {
			return nil, fmt.Errorf("%w: checkpoint of %s, not of a log of network %q", ErrBadGossip, cp.Origin, network)
		}
		return &GossipMessage{Checkpoint: cp}, nil
	case GossipEvidence:
		ev, err := DecodeEvidence(data[1:])
		if err != nil {
			return nil, fmt.Errorf("%w: evidence: %w", ErrBadGossip, err)
		}
		if n, _, _ := ev.Origin.Parse(); n != network {
			return nil, fmt.Errorf("%w: evidence about network %q, want %q", ErrBadGossip, n, network)
		}
		return &GossipMessage{Evidence: ev}, nil
	}
	return nil, fmt.Errorf("%w: unknown type %d", ErrBadGossip, data[0])
}

// GossipValidator returns a pubsub topic validator for network's ledger
// topic. It rejects (and so penalises the sender under peer scoring) any
// message DecodeGossip rejects, and hands the decoded *GossipMessage to
// subscribers as the message's ValidatorData.
func GossipValidator(network string) pubsub.ValidatorEx {
	return func(ctx context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		gm, err := DecodeGossip(network, msg.GetData())
		if err != nil {
			return pubsub.ValidationReject
		}
		msg.ValidatorData = gm
		return pubsub.ValidationAccept
	}
}

// A Gossip is a node's membership in its network's ledger topic.
type Gossip struct {
	ps      *pubsub.PubSub
	topic   *pubsub.Topic
	sub     *pubsub.Subscription
	network string
	name    string
}

// JoinGossip registers the topic validator on ps, joins network's ledger
// topic and subscribes to it. Close undoes all three.
func JoinGossip(ps *pubsub.PubSub, network string) (*Gossip, error) {
	name := GossipTopic(network)
	if err := ps.RegisterTopicValidator(name, GossipValidator(network), pubsub.WithValidatorInline(true)); err != nil {
		return nil, fmt.Errorf("ledger: register validator for %s: %w", name, err)
	}
	t, err := ps.Join(name)
	if err != nil {
		ps.UnregisterTopicValidator(name)
		return nil, fmt.Errorf("ledger: join %s: %w", name, err)
	}
	sub, err := t.Subscribe()
	if err != nil {
		t.Close()
		ps.UnregisterTopicValidator(name)
		return nil, fmt.Errorf("ledger: subscribe to %s: %w", name, err)
	}
	return &Gossip{ps: ps, topic: t, sub: sub, network: network, name: name}, nil
}

// Topic returns the joined topic (for peer counts and events).
func (g *Gossip) Topic() *pubsub.Topic { return g.topic }

// PublishCheckpoint publishes cp, which must be of the local node's own log.
func (g *Gossip) PublishCheckpoint(ctx context.Context, cp *Checkpoint) error {
	if err := g.topic.Publish(ctx, EncodeGossipCheckpoint(cp)); err != nil {
		return fmt.Errorf("ledger: publish checkpoint %d on %s: %w", cp.Size, g.name, err)
	}
	return nil
}

// PublishEvidence publishes ev.
func (g *Gossip) PublishEvidence(ctx context.Context, ev *Evidence) error {
	if err := g.topic.Publish(ctx, EncodeGossipEvidence(ev)); err != nil {
		return fmt.Errorf("ledger: publish evidence %s on %s: %w", ev.CID(), g.name, err)
	}
	return nil
}

// HasPeers reports whether any peer is known to subscribe to the topic,
// that is whether a message published now can reach anyone.
func (g *Gossip) HasPeers() bool { return len(g.topic.ListPeers()) > 0 }

// Next returns the next validated message. The node's own messages come
// back too (the caller skips its own checkpoints by their origin); only
// in-process publications (pubsub.WithLocalPublication) are skipped. It
// blocks until one arrives, ctx ends or the Gossip is closed.
func (g *Gossip) Next(ctx context.Context) (*GossipMessage, error) {
	for {
		msg, err := g.sub.Next(ctx)
		if err != nil {
			return nil, fmt.Errorf("ledger: next message on %s: %w", g.name, err)
		}
		if msg.Local {
			continue
		}
		gm, ok := msg.ValidatorData.(*GossipMessage)
		if !ok {
			// Validated elsewhere (no validator data): validate here.
			gm, err = DecodeGossip(g.network, msg.GetData())
			if err != nil {
				continue
			}
		}
		return gm, nil
	}
}

// Close cancels the subscription, leaves the topic and removes the validator.
func (g *Gossip) Close() error {
	g.sub.Cancel()
	err := g.topic.Close()
	g.ps.UnregisterTopicValidator(g.name)
	if err != nil {
		return fmt.Errorf("ledger: leave %s: %w", g.name, err)
	}
	return nil
}

// GossipScoreParams returns the gossipsub score parameters of the ledger
// topic, for the node's peer-score Topics map. Checkpoints are few (one per
// peer per change of its log, and a re-announcement every half minute), so
// the topic rewards first deliveries mildly and does not punish a quiet
// mesh (P3 and P3b are off); a message the validator rejects (a forged
// checkpoint, bogus evidence) costs its sender -100 × (invalid count)²,
// decaying over about an hour.
func GossipScoreParams() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		TopicWeight: 1,

		TimeInMeshWeight:  0.01,
		TimeInMeshQuantum: time.Second,
		TimeInMeshCap:     600,

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
