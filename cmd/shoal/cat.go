package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func newCatCmd(rf *rootFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "cat CID",
		Short:   "Write the bytes of a file to stdout, fetching it from peers if needed",
		Example: "  shoal cat bafkreia2sbpknlj3ibwwdglinpxrsy7bc4xinezgmbwymbr7aigxnhirf4",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := rf.client()
			if err != nil {
				return err
			}
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			rc, size, err := c.Cat(ctx, args[0])
			if err != nil {
				return err
			}
			defer rc.Close()
			n, err := io.Copy(cmd.OutOrStdout(), rc)
			if err != nil {
				return fmt.Errorf("cat %s: %w", args[0], err)
			}
			if size >= 0 && n != size {
				return fmt.Errorf("cat %s: got %d of %d bytes; retry", args[0], n, size)
			}
			return nil
		},
	}
}
