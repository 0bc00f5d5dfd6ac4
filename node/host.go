package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// startHost starts the libp2p host: TCP and QUIC, noise and TLS, yamux,
// the resource manager with autoscaled default limits and the connection
// manager with the configured water marks, dialling by dialRanker.
func (n *Node) startHost(context.Context) error {
	cm, err := connmgr.NewConnManager(n.cfg.P2P.ConnLowWater, n.cfg.P2P.ConnHighWater)
	if err != nil {
		return fmt.Errorf("connection manager: %w", err)
	}
	// Without the resource manager's Prometheus reporter: it formats a
	// trace event (with a timestamp) for every scope opened and closed,
	// about 1 % of a busy node's CPU, for figures no dashboard reads.
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(rcmgr.DefaultLimits.AutoScale()), rcmgr.WithMetricsDisabled())
	if err != nil {
		cm.Close()
		return fmt.Errorf("resource manager: %w", err)
	}
	h, err := libp2p.New(
		libp2p.Identity(n.key),
		libp2p.ListenAddrStrings(n.cfg.P2P.Listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.SwarmOpts(swarm.WithDialRanker(dialRanker)),
		libp2p.PrometheusRegisterer(n.metrics),
		libp2p.UserAgent("shoal/"+Version),
	)
	if err != nil {
		rm.Close()
		cm.Close()
		return listenError(n.cfg.P2P.Listen, err)
	}
	n.host = h
	n.onClose("libp2p host", h.Close)
	return nil
}

// dialRanker orders the addresses of a peer to dial: libp2p's default
// ranking (QUIC first, TCP 30 ms or 250 ms later), except that a peer's
// loopback addresses, which reach a node on the same machine, are dialled
// TCP first and QUIC only PrivateTCPDelay later. Between nodes on one
// machine a TCP connection costs less CPU per message than QUIC, whose
// acknowledgements, pacing and packet encryption run in the process: on a
// 5-node testnet the daemons spent 7 % less CPU per job over TCP
// (docs/performance.md). Other addresses are ranked as libp2p does, in
// parallel with the loopback ones.
func dialRanker(addrs []ma.Multiaddr) []network.AddrDelay {
	var loopback, other []ma.Multiaddr
	for _, a := range addrs {
		if manet.IsIPLoopback(a) {
			loopback = append(loopback, a)
		} else {
			other = append(other, a)
		}
	}
	ranked := swarm.DefaultDialRanker(other)
	tcpFirst := slices.ContainsFunc(loopback, isTCP)
	for _, a := range loopback {
		d := network.AddrDelay{Addr: a}
		if tcpFirst && !isTCP(a) {
			d.Delay = swarm.PrivateTCPDelay
		}
		ranked = append(ranked, d)
	}
	return ranked
}

func isTCP(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_TCP)
	return err == nil
}

// listenError turns a failure to listen into an error that says what to do.
func listenError(listen []string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use") {
		return fmt.Errorf("a p2p.listen address (%s) is in use by another program; pick other ports in config.toml or with --listen: %w",
			strings.Join(listen, ", "), err)
	}
	return fmt.Errorf("libp2p host on %s: %w", strings.Join(listen, ", "), err)
}

// p2pAddrs returns the host's listen addresses, each with /p2p/<id>.
func (n *Node) p2pAddrs() []string {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.id, Addrs: n.host.Addrs()})
	if err != nil {
		return nil
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}
