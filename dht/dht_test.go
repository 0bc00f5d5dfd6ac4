package dht

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

func newHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func newDiscovery(t *testing.T, h host.Host, network string, boot ...peer.AddrInfo) *Discovery {
	t.Helper()
	d, err := New(h, Config{Network: network, Bootstrap: boot, MinInterval: 50 * time.Millisecond, MaxInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return d
}

// waitFor polls cond until it holds or a minute passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRendezvousOnLoopback checks that nodes on 127.0.0.1 that know only
// the first node find each other and count each other as members, and
// that a node of another network is never counted as a member.
func TestRendezvousOnLoopback(t *testing.T) {
	h0 := newHost(t)
	d0 := newDiscovery(t, h0, "a")
	boot := peer.AddrInfo{ID: h0.ID(), Addrs: h0.Addrs()}
	hosts := []host.Host{h0}
	discs := []*Discovery{d0}
	for range 4 {
		h := newHost(t)
		hosts = append(hosts, h)
		discs = append(discs, newDiscovery(t, h, "a", boot))
	}
	other := newHost(t)
	newDiscovery(t, other, "b", boot)

	for i, h := range hosts {
		for j, o := range hosts {
			if i == j {
				continue
			}
			waitFor(t, "host "+h.ID().String()+" connected to "+o.ID().String(), func() bool {
				return h.Network().Connectedness(o.ID()) == network.Connected
			})
			waitFor(t, "member", func() bool { return discs[i].IsMember(o.ID()) })
		}
		if discs[i].IsMember(other.ID()) {
			t.Errorf("node %d counts a node of network b as a member", i)
		}
	}
	// The DHT kept loopback addresses in its routing table.
	if n := d0.DHT().RoutingTable().Size(); n < 4 {
		t.Errorf("routing table of node 0 has %d peers, want at least 4", n)
	}
}

func TestUnreachableBootstrap(t *testing.T) {
	h := newHost(t)
	gone := newHost(t)
	ai := peer.AddrInfo{ID: gone.ID(), Addrs: gone.Addrs()}
	gone.Close()
	d, err := New(h, Config{Network: "a", Bootstrap: []peer.AddrInfo{ai}, BootstrapTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "network.bootstrap") {
		t.Fatalf("Start with an unreachable bootstrap peer = %v, want an error saying what to check", err)
	}
}

func TestNewNeedsNetwork(t *testing.T) {
	if _, err := New(newHost(t), Config{}); err == nil {
		t.Error("New without a network name succeeded")
	}
}

func TestRendezvous(t *testing.T) {
	if got := Rendezvous("lab"); got != "shoal:lab" {
		t.Errorf("Rendezvous(lab) = %q, want shoal:lab", got)
	}
	// The values docs/protocol.md gives.
	for network, want := range map[string]string{
		"shoal":   "bafkreiegx3uatg2zpnbeiyx6n5hnspn4bgffgn4tv5qm6cc7i7aol6wzma",
		"testnet": "bafkreid3oacibmftjuwgkkdcd66mbniizxc7clgkznt7u3m6m27tsi5pkq",
	} {
		if got := RendezvousCID(network).String(); got != want {
			t.Errorf("RendezvousCID(%s) = %s, want %s", network, got, want)
		}
	}
}

// TestAdvertiseUsesRendezvousCID checks that a member's provider record
// is stored under RendezvousCID on the peer it advertised to.
func TestAdvertiseUsesRendezvousCID(t *testing.T) {
	h0 := newHost(t)
	d0 := newDiscovery(t, h0, "lab")
	h1 := newHost(t)
	newDiscovery(t, h1, "lab", peer.AddrInfo{ID: h0.ID(), Addrs: h0.Addrs()})
	waitFor(t, "provider record of h1 on h0", func() bool {
		provs, err := d0.DHT().ProviderStore().GetProviders(context.Background(), RendezvousCID("lab").Hash())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range provs {
			if p.ID == h1.ID() {
				return true
			}
		}
		return false
	})
}
