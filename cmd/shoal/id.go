package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newIDCmd(rf *rootFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "id",
		Short:   "Show the node's peer ID and listen addresses",
		Example: "  shoal id\n  shoal --repo /tmp/n1 id --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := rf.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			id, err := c.ID(ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, id)
			}
			fmt.Fprintf(out, "peer id: %s\nnetwork: %s\napi:     %s\nversion: %s\n", id.ID, id.Network, id.APIAddr, id.Version)
			for _, a := range id.Addrs {
				fmt.Fprintf(out, "addr:    %s\n", a)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
