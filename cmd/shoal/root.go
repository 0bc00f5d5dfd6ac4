package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/node"
	"github.com/shoalnet/shoal/node/client"
)

// rootFlags are the persistent flags every command sees.
type rootFlags struct {
	repo string
}

// newRootCmd returns the shoal command with every subcommand registered.
func newRootCmd() *cobra.Command {
	rf := &rootFlags{}
	root := &cobra.Command{
		Use:   "shoal",
		Short: "Shoal: a peer-to-peer compute network",
		Long: `Shoal is a peer-to-peer compute network: nodes find each other through a
Kademlia DHT, run WebAssembly jobs for each other and record signed results
in an auditable ledger.

Start here:
  shoal testnet up -n 5 --demo  five local nodes doing real work, in one command
  shoal testnet up -n 5         five idle local nodes to use by hand
  shoal init && shoal daemon    run a node of your own`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&rf.repo, "repo", "", "repo dir (default $SHOAL_REPO, else ~/.shoal)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (see: %s --help)", err, c.CommandPath())
	})

	root.AddCommand(newInitCmd(rf))
	root.AddCommand(newDaemonCmd(rf))
	root.AddCommand(newIDCmd(rf))
	root.AddCommand(newPeersCmd(rf))
	root.AddCommand(newSlotsCmd(rf))
	root.AddCommand(newLedgerCmd(rf))
	root.AddCommand(newTestnetCmd(rf))
	root.AddCommand(newJobCmd(rf))
	root.AddCommand(newSandboxWorkerCmd())
	root.AddCommand(newAddCmd(rf))
	root.AddCommand(newCatCmd(rf))
	root.AddCommand(newGetCmd(rf))
	root.AddCommand(newGCCmd(rf))
	root.AddCommand(newPinCmd(rf))
	root.AddCommand(newBenchCmd(rf))
	return root
}

// repoDir returns the repo dir chosen by --repo, $SHOAL_REPO or ~/.shoal.
func (rf *rootFlags) repoDir() (string, error) {
	if rf.repo != "" {
		return rf.repo, nil
	}
	return node.DefaultRepoDir()
}

// client returns an API client of the daemon of the chosen repo.
func (rf *rootFlags) client() (*client.Client, error) {
	dir, err := rf.repoDir()
	if err != nil {
		return nil, err
	}
	return client.New(dir)
}

// signalContext returns a context canceled on SIGINT or SIGTERM.
func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
