package client

import (
	"context"
	"time"
)

// CapacityEntry is one element of the answer of GET /v1/capacity: a peer's
// newest valid capacity advert as the daemon's capacity view holds it.
type CapacityEntry struct {
	ID          string            `json:"id"`            // peer ID
	Self        bool              `json:"self"`          // the daemon's own advert
	Slots       int               `json:"slots"`         // job slots offered
	SlotsFree   int               `json:"slots_free"`    // job slots free
	Cores       int               `json:"cores"`         // logical CPUs
	MemoryBytes int64             `json:"memory_bytes"`  // physical memory
	Runtimes    []string          `json:"runtimes"`      // e.g. ["wasm"]
	Labels      map[string]string `json:"labels"`        // operator labels, e.g. {"region": "eu"}
	Version     string            `json:"version"`       // the peer's software version
	Seq         uint64            `json:"seq"`           // the advert's sequence number
	AgeMS       int64             `json:"age_ms"`        // time since the advert arrived
	ExpiresInMS int64             `json:"expires_in_ms"` // time until it expires
}

// Age returns e.AgeMS as a duration.
func (e CapacityEntry) Age() time.Duration { return time.Duration(e.AgeMS) * time.Millisecond }

// SlotsRequest is the body of POST /v1/capacity/slots.
type SlotsRequest struct {
	Slots int `json:"slots"` // the new total of job slots
}

// SlotsInfo is the answer of GET and POST /v1/capacity/slots.
type SlotsInfo struct {
	Slots     int `json:"slots"`      // total job slots offered
	SlotsFree int `json:"slots_free"` // job slots free
}

// Capacity returns the daemon's capacity view: every peer with an
// unexpired advert, the daemon itself included, sorted by peer ID.
func (c *Client) Capacity(ctx context.Context) ([]CapacityEntry, error) {
	var v []CapacityEntry
	err := c.Do(ctx, "GET", "/v1/capacity", nil, &v)
	return v, err
}

// Slots returns the daemon's total and free job slots.
func (c *Client) Slots(ctx context.Context) (SlotsInfo, error) {
	var v SlotsInfo
	err := c.Do(ctx, "GET", "/v1/capacity/slots", nil, &v)
	return v, err
}

// SetSlots changes the daemon's total job slots until it restarts (the
// config file is not changed) and returns the new total and free counts.
// Running jobs keep their slots: free becomes max(0, slots − busy).
func (c *Client) SetSlots(ctx context.Context, slots int) (SlotsInfo, error) {
	var v SlotsInfo
	err := c.Do(ctx, "POST", "/v1/capacity/slots", SlotsRequest{Slots: slots}, &v)
	return v, err
}
