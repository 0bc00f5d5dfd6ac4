package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/libp2p/go-libp2p/gologshim"
	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/node"
)

func newDaemonCmd(rf *rootFlags) *cobra.Command {
	var (
		listen    []string
		api       string
		bootstrap []string
		network   string
		logLevel  string
		slots     int
		logJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the node until SIGINT or SIGTERM",
		Long: `Run the node of the repo: join the network through the bootstrap peers and the
DHT, and serve the API the other commands use. Flags override the config file
for this run only. Logs go to stderr.`,
		Example: `  shoal daemon
  shoal daemon --repo /tmp/n1 --api 127.0.0.1:0 --log-level debug`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := rf.repoDir()
			if err != nil {
				return err
			}
			if err := node.CheckRepo(dir); err != nil {
				return err
			}
			cfg, err := node.LoadConfig(filepath.Join(dir, node.ConfigFileName))
			if err != nil {
				return err
			}
			fl := cmd.Flags()
			if fl.Changed("listen") {
				cfg.P2P.Listen = listen
			}
			if fl.Changed("api") {
				cfg.API.Address = api
			}
			if fl.Changed("bootstrap") {
				cfg.Network.Bootstrap = bootstrap
			}
			if fl.Changed("network") {
				cfg.Network.Name = network
			}
			if fl.Changed("slots") {
				cfg.Jobs.Slots = slots
			}
			if fl.Changed("log-level") {
				cfg.Log.Level = logLevel
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			logger := newLogger(cfg.Log.Level, logJSON)
			setDaemonGC()

			ctx, stop := signalContext(context.Background())
			defer stop()
			n, err := node.New(ctx, dir, node.WithConfig(cfg), node.WithLogger(logger))
			if err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("interrupted while starting: %w", err)
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "shoal daemon running\n  peer id: %s\n  network: %s\n  api:     %s\n",
				n.PeerID(), n.Network(), n.APIAddr())
			for _, a := range n.Host().Addrs() {
				fmt.Fprintf(cmd.OutOrStdout(), "  listen:  %s/p2p/%s\n", a, n.PeerID())
			}
			fmt.Fprintf(cmd.OutOrStdout(), "stop with Ctrl-C\n")
			go trimExecutableLoop(ctx, logger)
			<-ctx.Done()
			stop() // a second signal kills the process
			logger.Info("shutting down")
			done := make(chan error, 1)
			go func() { done <- n.Close() }()
			select {
			case err := <-done:
				if err != nil {
					return fmt.Errorf("shutdown: %w", err)
				}
			case <-time.After(30 * time.Second):
				return fmt.Errorf("shutdown did not finish within 30s; exiting anyway")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&listen, "listen", nil, "override p2p.listen (repeatable)")
	f.StringVar(&api, "api", "", "override api.address (host:port, port 0 picks a free one)")
	f.StringArrayVar(&bootstrap, "bootstrap", nil, "override network.bootstrap (repeatable)")
	f.StringVar(&network, "network", "", "override network.name")
	f.StringVar(&logLevel, "log-level", "", "override log.level: debug, info, warn or error")
	f.IntVar(&slots, "slots", 0, "override jobs.slots: how many jobs this node runs at once (0 offers none)")
	f.BoolVar(&logJSON, "log-json", false, "log JSON lines instead of text")
	return cmd
}

// newLogger returns a logger to stderr at level (validated by the config).
// libp2p's own logs go to the same handler, tagged subsystem=libp2p, but
// only at level debug: at other levels the node reports what matters
// itself, and a failed start is one error line, not a cascade.
func newLogger(level string, asJSON bool) *slog.Logger {
	var lv slog.Level
	lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	if asJSON {
		h = slog.NewJSONHandler(os.Stderr, opts)
	} else {
		h = slog.NewTextHandler(os.Stderr, opts)
	}
	libLevel := slog.Level(math.MaxInt32)
	if lv <= slog.LevelDebug {
		libLevel = slog.LevelDebug
	}
	gologshim.SetDefaultHandler(minLevelHandler{h.WithAttrs([]slog.Attr{slog.String("subsystem", "libp2p")}), libLevel})
	return slog.New(h)
}

// A minLevelHandler drops records below min.
type minLevelHandler struct {
	slog.Handler
	min slog.Level
}

func (h minLevelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevelHandler{h.Handler.WithAttrs(as), h.min}
}

func (h minLevelHandler) WithGroup(name string) slog.Handler {
	return minLevelHandler{h.Handler.WithGroup(name), h.min}
}

// daemonGCPercent is the daemon's GOGC unless the environment sets one.
// A node's live heap under a stream of jobs is about 20 MiB and most of
// what it allocates lives for one message, so collecting at 3× the live
// heap rather than 2× saves about 7 % of its CPU per job for some 12 MiB
// more RSS; measured in docs/performance.md ("2026-11-26, 14:40 on").
const daemonGCPercent = 200

// setDaemonGC applies daemonGCPercent unless GOGC is set, which operators use
// to trade memory for CPU the other way.
func setDaemonGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(daemonGCPercent)
	}
}
