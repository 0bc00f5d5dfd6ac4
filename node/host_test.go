package node

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

func TestDialRanker(t *testing.T) {
	addrs := []ma.Multiaddr{
		ma.StringCast("/ip4/127.0.0.1/udp/4001/quic-v1"),
		ma.StringCast("/ip4/127.0.0.1/tcp/4001"),
		ma.StringCast("/ip6/::1/tcp/4001"),
		ma.StringCast("/ip4/192.0.2.7/tcp/4001"),
		ma.StringCast("/ip4/192.0.2.7/udp/4001/quic-v1"),
	}
	delay := make(map[string]time.Duration)
	for _, d := range dialRanker(addrs) {
		delay[d.Addr.String()] = d.Delay
	}
	if len(delay) != len(addrs) {
		t.Fatalf("ranked %d addresses, want %d: %v", len(delay), len(addrs), delay)
	}
	want := map[string]time.Duration{
		// Loopback: TCP first, QUIC after.
		"/ip4/127.0.0.1/tcp/4001":         0,
		"/ip6/::1/tcp/4001":               0,
		"/ip4/127.0.0.1/udp/4001/quic-v1": swarm.PrivateTCPDelay,
		// Elsewhere libp2p's default: QUIC first, TCP after.
		"/ip4/192.0.2.7/udp/4001/quic-v1": 0,
		"/ip4/192.0.2.7/tcp/4001":         swarm.PublicTCPDelay,
	}
	for a, d := range want {
		if delay[a] != d {
			t.Errorf("%s dialled after %v, want %v", a, delay[a], d)
		}
	}

	// A loopback QUIC address with no TCP beside it is not held back.
	only := dialRanker([]ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/udp/4001/quic-v1")})
	if len(only) != 1 || only[0].Delay != 0 {
		t.Errorf("lone loopback QUIC address ranked %v, want no delay", only)
	}
}

// Two nodes on one machine that listen on TCP and QUIC connect over TCP.
func TestLoopbackPeersConnectOverTCP(t *testing.T) {
	both := func(c *Config) {
		c.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	}
	a := startNode(t, testRepo(t, both))
	b := startNode(t, testRepo(t, both))
	if len(a.Host().Addrs()) < 2 {
		t.Fatalf("node listens on %v, want a TCP and a QUIC address", a.Host().Addrs())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Host().Connect(ctx, peer.AddrInfo{ID: a.PeerID(), Addrs: a.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	conns := b.Host().Network().ConnsToPeer(a.PeerID())
	if len(conns) == 0 {
		t.Fatal("no connection after Connect")
	}
	for _, c := range conns {
		if !isTCP(c.RemoteMultiaddr()) {
			t.Errorf("connection over %s, want TCP", c.RemoteMultiaddr())
		}
	}
}
