package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newPeersCmd(rf *rootFlags) *cobra.Command {
	var asJSON, withCapacity bool
	cmd := &cobra.Command{
		Use:     "peers",
		Short:   "List the peers the node is connected to",
		Example: "  shoal peers\n  shoal --repo /tmp/n1 peers --json\n  shoal peers --capacity",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := rf.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			if withCapacity {
				return printPeersCapacity(ctx, cmd.OutOrStdout(), c, asJSON)
			}
			peers, err := c.Peers(ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, peers)
			}
			if len(peers) == 0 {
				fmt.Fprintln(out, "no peers connected")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PEER ID\tMEMBER\tLATENCY\tADDRS")
			for _, p := range peers {
				lat := "-"
				if p.LatencyMS != nil {
					lat = fmt.Sprintf("%.2fms", *p.LatencyMS)
				}
				member := "no"
				if p.Member {
					member = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.ID, member, lat, strings.Join(p.Addrs, " "))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&withCapacity, "capacity", false, "list the capacity view instead: every peer's job slots, cores, memory, runtimes, labels and advert age (* marks this node)")
	return cmd
}
