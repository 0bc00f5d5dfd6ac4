package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/shoalnet/shoal/node/client"
)

// capacityRow is one peer of `shoal peers --capacity --json`.
type capacityRow struct {
	ID          string            `json:"id"`
	Slots       int               `json:"slots"`
	SlotsFree   int               `json:"slots_free"`
	Cores       int               `json:"cores"`
	MemoryBytes int64             `json:"memory_bytes"`
	Runtimes    []string          `json:"runtimes"`
	Labels      map[string]string `json:"labels"`
	Version     string            `json:"version"`
	AgeMS       int64             `json:"age_ms"`
	Self        bool              `json:"self"`
}

// printPeersCapacity prints the daemon's capacity view: one line per peer
// with an unexpired advert, the daemon itself included (marked with *).
func printPeersCapacity(ctx context.Context, out io.Writer, c *client.Client, asJSON bool) error {
	view, err := c.Capacity(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		rows := make([]capacityRow, len(view))
		for i, e := range view {
			rows[i] = capacityRow{ID: e.ID, Slots: e.Slots, SlotsFree: e.SlotsFree, Cores: e.Cores,
				MemoryBytes: e.MemoryBytes, Runtimes: e.Runtimes, Labels: e.Labels, Version: e.Version,
				AgeMS: e.AgeMS, Self: e.Self}
		}
		return printJSON(out, rows)
	}
	if len(view) == 0 {
		fmt.Fprintln(out, "no capacity adverts (is the daemon joined to a network?)")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER ID\tSLOTS\tFREE\tCORES\tMEMORY\tRUNTIMES\tLABELS\tVERSION\tAGE")
	for _, e := range view {
		id := e.ID
		if e.Self {
			id += " *"
		}
		labels := "-"
		if len(e.Labels) > 0 {
			labels = strings.Join(formatLabels(e.Labels), ",")
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", id, e.Slots, e.SlotsFree, e.Cores,
			formatMemory(e.MemoryBytes), strings.Join(e.Runtimes, ","), labels, e.Version, e.Age().Round(1e6))
	}
	return tw.Flush()
}

// formatLabels returns labels as sorted key=value strings.
func formatLabels(labels map[string]string) []string {
	out := make([]string, 0, len(labels))
	for k, v := range labels {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// formatMemory formats n bytes with a binary unit, e.g. "15.6 GiB".
func formatMemory(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
