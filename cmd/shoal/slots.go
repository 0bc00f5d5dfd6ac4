package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

func newSlotsCmd(rf *rootFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "slots [N]",
		Short: "Show or change how many job slots the node offers",
		Long: `Without an argument, slots prints the node's total and free job slots.
With N, it changes the total to N at once and publishes a new capacity
advert; running jobs keep their slots. The change lasts until the daemon
restarts: to keep it, set [jobs] slots in config.toml.`,
		Example: "  shoal slots\n  shoal slots 4\n  shoal slots 0    # stop taking new jobs",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := rf.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			info, err := c.Slots(ctx)
			if len(args) == 1 {
				n, perr := strconv.Atoi(args[0])
				if perr != nil || n < 0 {
					return fmt.Errorf("slots %q: want a whole number ≥ 0, e.g. shoal slots 4", args[0])
				}
				info, err = c.SetSlots(ctx, n)
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, info)
			}
			fmt.Fprintf(out, "slots: %d (%d free)\n", info.Slots, info.SlotsFree)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
