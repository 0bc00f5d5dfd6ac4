package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/jobs"
	"github.com/shoalnet/shoal/ledger"
	"github.com/shoalnet/shoal/node/client"
)

// ledgerTimeout bounds one ledger command that fetches a whole log.
const ledgerTimeout = 10 * time.Minute

func newLedgerCmd(rf *rootFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Show, export, verify and prove entries of node ledgers",
		Long: `Every node keeps a signed, hash-chained, append-only ledger of the jobs it
submitted and ran. These commands read the local node's ledger, or a peer's
(--peer ID) fetched and checked by the local node, and verify exported
ledgers offline. See docs/ledger.md.`,
	}
	cmd.AddCommand(newLedgerShowCmd(rf), newLedgerExportCmd(rf), newLedgerVerifyCmd(rf),
		newLedgerProofCmd(rf), newLedgerEvidenceCmd(rf))
	return cmd
}

func newLedgerShowCmd(rf *rootFlags) *cobra.Command {
	var (
		peerID string
		from   uint64
		limit  int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:     "show",
		Short:   "List ledger entries",
		Example: "  shoal ledger show\n  shoal ledger show --peer 12D3KooW... --from 100 --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := rf.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			es, err := c.LedgerEntries(ctx, peerID, from, limit)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, es)
			}
			if len(es) == 0 {
				fmt.Fprintln(out, "no entries")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tTIME\tKIND\tCID\tBODY")
			for _, e := range es {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", e.Seq, e.Time, e.Kind, e.CID, bodySummary(e.Kind, e.Body))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&peerID, "peer", "", "show this peer's ledger instead of the local node's")
	cmd.Flags().Uint64Var(&from, "from", 0, "first sequence number to show")
	cmd.Flags().IntVar(&limit, "limit", 100, "most entries to show")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (bodies in base64)")
	return cmd
}

// bodySummary returns the summary of a job entry's body (decoded and
// checked), else body as text when it is short UTF-8, else its size.
func bodySummary(kind string, b []byte) string {
	if s, ok := jobs.DescribeLedgerEntry(kind, b); ok {
		return s
	}
	if utf8.Valid(b) && strings.IndexFunc(string(b), func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		if len(b) > 60 {
			return string(b[:57]) + "..."
		}
		return string(b)
	}
	return fmt.Sprintf("(%d bytes)", len(b))
}

func newLedgerExportCmd(rf *rootFlags) *cobra.Command {
	var peerID, output string
	cmd := &cobra.Command{
		Use:     "export",
		Short:   "Write a ledger as an export file (verify it with: shoal ledger verify --file)",
		Example: "  shoal ledger export > node.ledger\n  shoal ledger export --peer 12D3KooW... -o peer.ledger",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := rf.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), ledgerTimeout)
			defer cancel()
			body, err := c.LedgerExport(ctx, peerID)
			if err != nil {
				return err
			}
			defer body.Close()
			var w io.Writer = cmd.OutOrStdout()
			if output != "" && output != "-" {
				f, err := os.OpenFile(output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
				if err != nil {
					return fmt.Errorf("create %s: %w", output, err)
				}
				defer f.Close()
				w = f
			}
			if _, err := io.Copy(w, body); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&peerID, "peer", "", "export this peer's ledger instead of the local node's")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file instead of stdout")
	return cmd
}

func newLedgerVerifyCmd(rf *rootFlags) *cobra.Command {
	var (
		peerID, file string
		asJSON       bool
	)
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify a whole ledger: every signature, every prev link, the tree against the newest checkpoint",
		Long: `Verify checks a ledger without trusting its source: every entry's signature
and sequence number, every prev link, and the Merkle tree against the newest
signed checkpoint. With --file it checks an export file offline (no daemon
needed); with --peer the local node fetches the peer's ledger and also
checks it against the checkpoints it has witnessed. On failure it exits with
status 1 and names the first bad sequence number and why.`,
		Example: "  shoal ledger verify\n  shoal ledger verify --peer 12D3KooW...\n  shoal ledger verify --file node.ledger --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if peerID != "" && file != "" {
				return errors.New("give --peer or --file, not both")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), ledgerTimeout)
			defer cancel()
			var rep client.LedgerReport
			if file != "" {
				r, err := verifyFile(ctx, file)
				if err != nil {
					return err
				}
				rep = r
			} else {
				c, err := rf.client()
				if err != nil {
					return err
				}
				if rep, err = c.LedgerVerify(ctx, peerID); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if err := printJSON(out, rep); err != nil {
					return err
				}
			} else if rep.OK {
				fmt.Fprintf(out, "ok: %s: %d entries verified, checkpoint of %d entries with root %s\n", rep.Origin, rep.Entries, rep.CheckpointSize, rep.Root)
			} else {
				where := "ledger"
				if rep.BadSeq != nil {
					where = "entry " + strconv.FormatInt(*rep.BadSeq, 10)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "FAILED: %s: %s: %s\n", rep.Origin, where, rep.Reason)
				if rep.EvidenceCID != "" {
					fmt.Fprintf(cmd.ErrOrStderr(), "fork evidence stored as %s (see: shoal ledger evidence)\n", rep.EvidenceCID)
				}
			}
			if !rep.OK {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&peerID, "peer", "", "verify this peer's ledger (fetched by the local node)")
	cmd.Flags().StringVar(&file, "file", "", "verify this export file offline")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// verifyFile verifies an export file offline.
func verifyFile(ctx context.Context, path string) (client.LedgerReport, error) {
	f, err := os.Open(path)
	if err != nil {
		return client.LedgerReport{}, fmt.Errorf("open ledger export: %w", err)
	}
	defer f.Close()
	res, err := ledger.VerifyExport(ctx, f, "")
	var ve *ledger.VerifyError
	switch {
	case errors.As(err, &ve):
		rep := client.LedgerReport{Origin: path, Reason: ve.Reason}
		if ve.Seq >= 0 {
			seq := ve.Seq
			rep.BadSeq = &seq
		}
		return rep, nil
	case err != nil:
		return client.LedgerReport{}, fmt.Errorf("verify %s: %w", path, err)
	}
	return client.LedgerReport{OK: true, Origin: string(res.Origin), Entries: res.Entries, CheckpointSize: res.CheckpointSize, Root: res.Root.String()}, nil
}

func newLedgerProofCmd(rf *rootFlags) *cobra.Command {
	var (
		peerID string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:     "proof SEQ",
		Short:   "Print the inclusion proof of an entry in the newest checkpoint, verified",
		Example: "  shoal ledger proof 12\n  shoal ledger proof 12 --peer 12D3KooW... --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seq, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("SEQ %q is not a sequence number (see: shoal ledger show)", args[0])
			}
			c, err := rf.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			p, err := c.LedgerProof(ctx, peerID, seq)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, p)
			}
			fmt.Fprintf(out, "entry %d (%s, %s) of %s\n", p.Seq, p.Kind, p.EntryCID, p.Origin)
			fmt.Fprintf(out, "is in the tree of %d entries with root %s:\n", p.TreeSize, p.Root)
			for i, h := range p.Proof {
				fmt.Fprintf(out, "  %2d %s\n", i, h)
			}
			fmt.Fprintf(out, "signed checkpoint:\n%s", p.Checkpoint)
			if p.Verified {
				fmt.Fprintln(out, "proof verified")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&peerID, "peer", "", "prove an entry of this peer's ledger")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newLedgerEvidenceCmd(rf *rootFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "evidence",
		Short:   "List the fork evidence the node holds (proofs that a peer signed two histories)",
		Example: "  shoal ledger evidence\n  shoal ledger evidence --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := rf.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			evs, err := c.LedgerEvidence(ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, evs)
			}
			if len(evs) == 0 {
				fmt.Fprintln(out, "no fork evidence")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "OFFENDER\tKIND\tEVIDENCE")
			for _, ev := range evs {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", ev.Offender, ev.Kind, ev.CID)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (evidence bytes in base64)")
	return cmd
}
