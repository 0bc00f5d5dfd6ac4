package client

import (
	"context"
	"time"
)

// IDInfo is the answer of GET /v1/id.
type IDInfo struct {
	ID        string   `json:"id"`         // peer ID
	Addrs     []string `json:"addrs"`      // listen multiaddrs, each ending in /p2p/<id>
	Network   string   `json:"network"`    // network name
	Version   string   `json:"version"`    // software version
	APIAddr   string   `json:"api"`        // host:port of the API
	StartedAt string   `json:"started_at"` // RFC 3339
}

// PeerInfo is one element of the answer of GET /v1/peers.
type PeerInfo struct {
	ID        string   `json:"id"`
	Addrs     []string `json:"addrs"`
	LatencyMS *float64 `json:"latency_ms,omitempty"` // nil when unknown
	Member    bool     `json:"member"`               // found under this network's rendezvous key
}

// Health is the answer of GET /v1/health.
type Health struct {
	OK      bool    `json:"ok"`
	ID      string  `json:"id"`
	Network string  `json:"network"`
	Peers   int     `json:"peers"`
	Uptime  float64 `json:"uptime_s"`
}

// ID returns the daemon's identity and addresses.
func (c *Client) ID(ctx context.Context) (IDInfo, error) {
	var v IDInfo
	err := c.Do(ctx, "GET", "/v1/id", nil, &v)
	return v, err
}

// Peers returns the peers the daemon is connected to.
func (c *Client) Peers(ctx context.Context) ([]PeerInfo, error) {
	var v []PeerInfo
	err := c.Do(ctx, "GET", "/v1/peers", nil, &v)
	return v, err
}

// Health returns the daemon's health summary.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var v Health
	err := c.Do(ctx, "GET", "/v1/health", nil, &v)
	return v, err
}

// UptimeDuration returns h.Uptime as a duration.
func (h Health) UptimeDuration() time.Duration { return time.Duration(h.Uptime * float64(time.Second)) }
