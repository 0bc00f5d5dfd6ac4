package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

// startHost starts the libp2p host: TCP and QUIC, noise and TLS, yamux,
// the resource manager with autoscaled default limits and the connection
// manager with the configured water marks.
func (n *Node) startHost(context.Context) error {
	cm, err := connmgr.NewConnManager(n.cfg.P2P.ConnLowWater, n.cfg.P2P.ConnHighWater)
	if err != nil {
		return fmt.Errorf("connection manager: %w", err)
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(rcmgr.DefaultLimits.AutoScale()))
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
