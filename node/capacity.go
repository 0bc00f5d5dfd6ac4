package node

import (
	"context"
	"fmt"
	"net/http"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/shoalnet/shoal/jobs/capacity"
	"github.com/shoalnet/shoal/jobs/dist"
	"github.com/shoalnet/shoal/jobs/proto"
	"github.com/shoalnet/shoal/ledger"
	"github.com/shoalnet/shoal/node/client"
)

// startCapacity starts the capacity adverts service: it joins the capacity
// topic, publishes this node's advert (slots from [jobs] slots, labels from
// [jobs] labels) and keeps the capacity view.
func (n *Node) startCapacity(ctx context.Context) error {
	labels, err := capacity.ParseLabels(n.cfg.Jobs.Labels)
	if err != nil {
		return fmt.Errorf("config: jobs.labels: %w", err)
	}
	svc, err := capacity.New(ctx, n.ps, n.host, n.key, n.cfg.Network.Name,
		capacity.WithSlots(n.cfg.Jobs.Slots),
		capacity.WithLabels(labels),
		capacity.WithVersion("shoal/"+Version),
		capacity.WithLogger(n.log.With("subsystem", "capacity")),
		capacity.WithRegisterer(n.metrics),
	)
	if err != nil {
		return err
	}
	n.capacity.svc = svc
	n.onClose("capacity", svc.Close)
	return nil
}

// Capacity returns the node's capacity service: its own advert's slots
// (SetSlots, SetFree) and the capacity view of the network (View, Changed).
func (n *Node) Capacity() *capacity.Service { return n.capacity.svc }

// capacityState is the node's capacity subsystem (a field of Node).
type capacityState struct {
	svc *capacity.Service
}

// maxAPISlots bounds the slots set through the API, as [jobs] slots is bounded.
const maxAPISlots = 1024

// pubSubScoreParams returns the gossipsub peer score parameters with every
// topic the node joins: capacity adverts, ledger gossip and results
// announcements, so that an invalid message on any of them costs its
// sender.
func (n *Node) pubSubScoreParams() *pubsub.PeerScoreParams {
	network := n.cfg.Network.Name
	p := capacity.PeerScoreParams(network)
	p.Topics[ledger.GossipTopic(network)] = ledger.GossipScoreParams()
	p.Topics[proto.ResultsTopic(network)] = dist.ResultsScoreParams()
	return p
}

// validateLabels checks [jobs] labels.
func validateLabels(labels []string) error {
	if _, err := capacity.ParseLabels(labels); err != nil {
		return fmt.Errorf("config: jobs.labels: %w; want strings such as \"region=eu\"", err)
	}
	return nil
}

func (n *Node) registerCapacityRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/capacity", n.handleCapacity)
	mux.HandleFunc("GET /v1/capacity/slots", n.handleSlots)
	mux.HandleFunc("POST /v1/capacity/slots", n.handleSetSlots)
}

func (n *Node) handleCapacity(w http.ResponseWriter, r *http.Request) {
	view := n.capacity.svc.View()
	now := time.Now()
	out := make([]client.CapacityEntry, len(view))
	for i, e := range view {
		out[i] = client.CapacityEntry{
			ID:          e.Peer.String(),
			Self:        e.Self,
			Slots:       e.SlotsTotal,
			SlotsFree:   e.SlotsFree,
			Cores:       e.Cores,
			MemoryBytes: e.MemoryBytes,
			Runtimes:    e.Runtimes,
			Labels:      e.Labels,
			Version:     e.Version,
			Seq:         e.Seq,
			AgeMS:       e.Age.Milliseconds(),
			ExpiresInMS: max(0, e.Expiry.Sub(now).Milliseconds()),
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handleSlots(w http.ResponseWriter, r *http.Request) {
	total, free := n.capacity.svc.Slots()
	writeJSON(w, http.StatusOK, client.SlotsInfo{Slots: total, SlotsFree: free})
}

func (n *Node) handleSetSlots(w http.ResponseWriter, r *http.Request) {
	var req client.SlotsRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.Slots < 0 || req.Slots > maxAPISlots {
		writeError(w, http.StatusBadRequest, fmt.Errorf("slots = %d; want 0 to %d", req.Slots, maxAPISlots))
		return
	}
	free, err := n.capacity.svc.SetTotal(req.Slots)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	n.log.Info("job slots changed", "subsystem", "capacity", "slots", req.Slots, "slots_free", free)
	writeJSON(w, http.StatusOK, client.SlotsInfo{Slots: req.Slots, SlotsFree: free})
}
