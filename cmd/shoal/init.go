package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/node"
)

func newInitCmd(rf *rootFlags) *cobra.Command {
	var (
		network          string
		slots            int
		listen           []string
		api              string
		bootstrap        []string
		allowNonLoopback bool
	)
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a node repo: identity key, config.toml and API token",
		Long: `Create a node repo (--repo, else $SHOAL_REPO, else ~/.shoal) holding a new
identity key (mode 0600), a config.toml with a comment on every field, and an
API token (mode 0600). An existing repo is never overwritten.`,
		Example: `  shoal init
  shoal init --repo /tmp/n1 --network lab --listen /ip4/127.0.0.1/tcp/0 --api 127.0.0.1:0
  shoal init --bootstrap /ip4/192.0.2.7/tcp/4001/p2p/12D3KooW...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := rf.repoDir()
			if err != nil {
				return err
			}
			cfg := node.DefaultConfig()
			if cmd.Flags().Changed("network") {
				cfg.Network.Name = network
			}
			if cmd.Flags().Changed("slots") {
				cfg.Jobs.Slots, cfg.Jobs.Queue = slots, 2*slots
			}
			if cmd.Flags().Changed("listen") {
				cfg.P2P.Listen = listen
			}
			if cmd.Flags().Changed("api") {
				cfg.API.Address = api
			}
			if cmd.Flags().Changed("bootstrap") {
				cfg.Network.Bootstrap = bootstrap
			}
			cfg.API.AllowNonLoopback = allowNonLoopback
			if err := node.Init(dir, cfg, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created shoal repo %s\nedit %s/%s to change settings, then start the node with: shoal daemon --repo %s\n",
				dir, dir, node.ConfigFileName, dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&network, "network", "shoal", "network name (nodes of one network find each other)")
	f.IntVar(&slots, "slots", runtime.NumCPU(), "job slots this node offers (default: one per CPU core)")
	f.StringArrayVar(&listen, "listen", nil, "libp2p listen multiaddr (repeatable; default TCP and QUIC on port 4001)")
	f.StringVar(&api, "api", "127.0.0.1:5080", "API address host:port (port 0 picks a free one)")
	f.StringArrayVar(&bootstrap, "bootstrap", nil, "multiaddr/p2p/ID of a node to join through (repeatable)")
	f.BoolVar(&allowNonLoopback, "allow-non-loopback-api", false, "allow an API address other than loopback")
	return cmd
}
