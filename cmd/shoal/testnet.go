package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/testnet"
)

// currentTestnetFile remembers the dir of the last testnet started with
// `shoal testnet up`, so status and down work without --dir.
func currentTestnetFile() string { return filepath.Join(os.TempDir(), "shoal-testnet-current") }

func newTestnetCmd(rf *rootFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "testnet",
		Short: "Run a local network of real nodes on 127.0.0.1",
		Long: `Run N real shoal daemons on 127.0.0.1, each with its own repo DIR/nodeI and
free ports. Only node0 is given to the others as a bootstrap peer; they find
each other through the DHT. DIR/testnet.json describes the testnet.`,
	}
	cmd.AddCommand(newTestnetUpCmd(), newTestnetStatusCmd(), newTestnetDownCmd())
	return cmd
}

func newTestnetUpCmd() *cobra.Command {
	var (
		n        int
		dir      string
		network  string
		detach   bool
		logLevel string
		timeout  time.Duration
		demo     bool
		modules  string
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a testnet and stay in the foreground (Ctrl-C stops it)",
		Long: `Start N real shoal daemons on 127.0.0.1, wait until every node sees every
other, print a table and stay in the foreground (Ctrl-C stops every node).

With --demo the testnet then does real work: it builds the example
WebAssembly programs (with the go command), runs them as jobs submitted from
several nodes, each on several peers whose results must agree, fetches a
rendered PNG back, has node0 verify every other node's ledger, and prints
how to go on by hand.`,
		Example: `  shoal testnet up -n 5
  shoal testnet up -n 5 --demo
  shoal testnet up -n 3 --dir /tmp/tn --network lab --detach`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if demo && n < testnet.DemoMinNodes {
				return fmt.Errorf("--demo needs at least %d nodes (its hello job runs on 3 distinct peers); use -n 5", testnet.DemoMinNodes)
			}
			if modules != "" && !demo {
				return errors.New("--modules is for --demo; add --demo")
			}
			if demo && modules == "" {
				if err := testnet.CanBuildExamples(); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			opts := testnet.Options{N: n, Dir: dir, Network: network, Detached: detach, LogLevel: logLevel}
			if detach {
				// The daemons outlive this process (and a `go run` binary
				// that is deleted when it exits): run a copy kept in DIR.
				bin, err := copySelf()
				if err != nil {
					return err
				}
				opts.Binary = bin
			}
			tn, err := testnet.Setup(opts)
			if err != nil {
				return err
			}
			os.WriteFile(currentTestnetFile(), []byte(tn.Dir()+"\n"), 0o600)
			fmt.Fprintf(out, "testnet dir: %s\nstarting %d nodes of network %q...\n", tn.Dir(), n, tn.Network())
			start := time.Now()
			if err := tn.Start(ctx); err != nil {
				tn.Stop()
				return err
			}
			wctx, wcancel := context.WithTimeout(ctx, timeout)
			err = tn.WaitConnected(wctx)
			wcancel()
			if err != nil {
				tn.Stop()
				return fmt.Errorf("nodes did not all find each other within %s (logs: %s/nodeI/%s): %w", timeout, tn.Dir(), testnet.LogFileName, err)
			}
			fmt.Fprintf(out, "all %d nodes see each other after %.2fs\n\n", n, time.Since(start).Seconds())
			printNodes(out, tn)
			var demoErr error
			if demo {
				if !runTestnetDemo(ctx, out, tn, modules) {
					demoErr = errDemoFailed
				}
			} else {
				fmt.Fprintf(out, "\nuse a node:   %s --repo %s peers\n", shoalCommand(), tn.Node(min(3, n-1)).Repo)
				fmt.Fprintf(out, "status:       %s testnet status --dir %s\n", shoalCommand(), tn.Dir())
			}
			if detach {
				fmt.Fprintf(out, "stop it with: %s testnet down --dir %s\n", shoalCommand(), tn.Dir())
				return demoErr
			}
			fmt.Fprintf(out, "press Ctrl-C to stop every node\n")
			if err := superviseTestnet(ctx, out, tn); err != nil {
				return err
			}
			return demoErr
		},
	}
	f := cmd.Flags()
	f.IntVarP(&n, "nodes", "n", 5, "number of nodes (1 to 64)")
	f.StringVar(&dir, "dir", "", "testnet dir (must not exist or be empty; default a new temp dir)")
	f.StringVar(&network, "network", "testnet", "network name")
	f.BoolVar(&detach, "detach", false, "start the nodes in the background and return")
	f.StringVar(&logLevel, "log-level", "info", "log level of the daemons (logs in DIR/nodeI/daemon.log)")
	f.DurationVar(&timeout, "timeout", time.Minute, "how long nodes may take to find each other")
	f.BoolVar(&demo, "demo", false, "then build the example programs and run them as replicated jobs across the nodes (needs the go command and at least 3 nodes)")
	f.StringVar(&modules, "modules", "", "with --demo: use the prebuilt modules NAME.wasm in this dir (make -C examples writes examples/build) instead of building them")
	return cmd
}

// superviseTestnet waits for Ctrl-C, reporting any node that dies, then
// stops every node.
func superviseTestnet(ctx context.Context, out io.Writer, tn *testnet.Testnet) error {
	died := make(chan *testnet.Node, tn.N())
	for _, nd := range tn.Nodes() {
		if ch := nd.Exited(); ch != nil {
			go func() {
				select {
				case <-ch:
					died <- nd
				case <-ctx.Done():
				}
			}()
		}
	}
	dead := 0
	for {
		select {
		case nd := <-died:
			if ctx.Err() != nil {
				continue
			}
			dead++
			fmt.Fprintf(out, "%s  %s DIED (%v); its log: %s\n", time.Now().Format("15:04:05"), nd.Name, exitText(nd.ExitErr()),
				filepath.Join(nd.Repo, testnet.LogFileName))
			tn.WriteManifest()
		case <-ctx.Done():
			fmt.Fprintf(out, "\nstopping %d nodes...\n", tn.N())
			if err := tn.Stop(); err != nil {
				return err
			}
			fmt.Fprintf(out, "stopped; the repos stay in %s\n", tn.Dir())
			if dead > 0 {
				return fmt.Errorf("%d nodes died while the testnet ran; see their daemon.log", dead)
			}
			return nil
		}
	}
}

func exitText(err error) string {
	if err == nil {
		return "exited with status 0"
	}
	return err.Error()
}

func printNodes(out io.Writer, tn *testnet.Testnet) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPEER ID\tPID\tAPI\tREPO")
	for _, nd := range tn.Nodes() {
		api := "-"
		if c := nd.Client(); c != nil {
			api = c.Addr()
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", nd.Name, nd.PeerID, nd.PID(), api, nd.Repo)
	}
	tw.Flush()
}

// copySelf copies this executable to a new temp file and returns its path.
func copySelf() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this executable: %w", err)
	}
	return testnet.CopyBinary(exe, "")
}

// testnetDir returns --dir, else the dir of the last testnet started.
func testnetDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	b, err := os.ReadFile(currentTestnetFile())
	if err != nil {
		return "", errors.New("no testnet known; pass --dir DIR (the dir `shoal testnet up` printed)")
	}
	return strings.TrimSpace(string(b)), nil
}

func newTestnetStatusCmd() *cobra.Command {
	var (
		dir    string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:     "status",
		Short:   "Show each node's health and peer count",
		Example: "  shoal testnet status --dir /tmp/tn\n  shoal testnet status --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := testnetDir(dir)
			if err != nil {
				return err
			}
			st, err := testnet.Status(cmd.Context(), d)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, st)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPEER ID\tPID\tAPI\tSTATUS\tPEERS")
			down := 0
			for _, s := range st {
				status, peers := "ok", fmt.Sprint(s.Peers)
				if !s.Healthy {
					down++
					status, peers = "DOWN: "+s.Error, "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", s.Name, s.PeerID, s.PID, orDash(s.API), status, peers)
			}
			tw.Flush()
			if down > 0 {
				return fmt.Errorf("%d of %d nodes are down", down, len(st))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "testnet dir (default: the last one started)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newTestnetDownCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:     "down",
		Short:   "Stop a testnet started with up --detach",
		Example: "  shoal testnet down --dir /tmp/tn",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := testnetDir(dir)
			if err != nil {
				return err
			}
			if err := testnet.Down(cmd.Context(), d); err != nil {
				return err
			}
			if m, err := testnet.ReadManifest(d); err == nil && strings.HasPrefix(filepath.Base(m.Binary), "shoal-bin-") {
				os.Remove(m.Binary)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "testnet %s stopped; its repos stay there\n", d)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "testnet dir (default: the last one started)")
	return cmd
}
