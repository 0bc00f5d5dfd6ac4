package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newPinCmd(rf *rootFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pin",
		Short: "Keep content across garbage collection (add, rm, ls)",
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "add CID",
		Short:   "Fetch a whole DAG (from peers if needed) and pin it",
		Example: "  shoal pin add bafybeigji6lsfhjqjbh7yrr3z6ugn5f5oya3cewcapegf5uoknxw63ce64",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := rf.client()
			if err != nil {
				return err
			}
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			if err := c.Pin(ctx, args[0]); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "pinned %s\n", args[0])
			return err
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "rm CID",
		Short: "Remove a pin; the next gc may then remove the blocks",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := rf.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			if err := c.Unpin(ctx, args[0]); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "unpinned %s\n", args[0])
			return err
		},
	})
	var asJSON bool
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the pinned CIDs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := rf.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			pins, err := c.Pins(ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, pins)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CID\tPINNED")
			for _, p := range pins {
				fmt.Fprintf(tw, "%s\t%s\n", p.CID, p.Created.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(ls)
	return cmd
}
