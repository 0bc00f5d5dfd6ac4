package main

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/shoalnet/shoal/node/client"
)

// newJobCmd returns "shoal job" with its subcommands.
func newJobCmd(rf *rootFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Run WebAssembly jobs and read their results",
		Long: `Run a WebAssembly (WASI preview 1) program as a job and read back its state,
logs and output files. See docs/jobs.md for the spec, the limits and the
sandbox a job runs in.`,
	}
	cmd.AddCommand(newJobRunCmd(rf))
	cmd.AddCommand(newJobBatchCmd(rf))
	cmd.AddCommand(newJobStatusCmd(rf))
	cmd.AddCommand(newJobLogsCmd(rf))
	cmd.AddCommand(newJobGetCmd(rf))
	cmd.AddCommand(newJobListCmd(rf))
	cmd.AddCommand(newJobCancelCmd(rf))
	return cmd
}

// isTTY reports whether f is a terminal.
func isTTY(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// parseSize parses a byte count such as "1048576", "64MiB", "64M", "1GiB"
// or "512KiB" (K, M, G and their -iB forms are powers of 1024).
func parseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	mult := uint64(1)
	for _, u := range []struct {
		suffix string
		mult   uint64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(strings.ToUpper(t), strings.ToUpper(u.suffix)) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(t, 10, 64)
	if err != nil || n > (1<<63)/mult {
		return 0, fmt.Errorf("%q is not a size such as 64MiB, 1GiB or 1048576", s)
	}
	return n * mult, nil
}

// exitCodeOf is the process exit code shoal job run ends with for j: the
// program's own exit code, or 1 when the sandbox ended it.
func exitCodeOf(j client.JobInfo) int {
	switch {
	case j.ExitCode != nil && *j.ExitCode >= 0 && j.Failure == "":
		return int(*j.ExitCode % 256)
	case j.State == "done":
		return 0
	default:
		return 1
	}
}

// extractOutputs writes the regular files and directories of the tar stream r
// under dir. It refuses absolute paths, paths that climb out of dir, and
// links.
func extractOutputs(r io.Reader, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read outputs archive: %w", err)
		}
		name := filepath.Clean(filepath.FromSlash(h.Name))
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, ".."+string(filepath.Separator)) {
			return fmt.Errorf("outputs archive holds unsafe path %q", h.Name)
		}
		dst := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return fmt.Errorf("write %s: %w", dst, err)
			}
			if err := f.Close(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("outputs archive holds %q of type %c; only files and directories are allowed", h.Name, h.Typeflag)
		}
	}
}

// jobContext returns cmd's context, canceled on SIGINT or SIGTERM.
func jobContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return signalContext(cmd.Context())
}
