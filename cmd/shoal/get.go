package main

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

func newGetCmd(rf *rootFlags) *cobra.Command {
	var (
		out   string
		quiet bool
	)
	cmd := &cobra.Command{
		Use:   "get CID [-o PATH]",
		Short: "Write a file or directory tree to PATH, fetching it from peers if needed",
		Long: `get writes the UnixFS file or directory CID to PATH (default: the CID, in
the current directory). PATH must not exist. The content is written under a
temporary name next to PATH and renamed only when complete, so an
interrupted get (Ctrl-C) leaves nothing under PATH.`,
		Example: "  shoal get bafybeigji6lsfhjqjbh7yrr3z6ugn5f5oya3cewcapegf5uoknxw63ce64 -o data.bin",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				out = args[0]
			}
			if _, err := os.Lstat(out); err == nil {
				return fmt.Errorf("%s already exists; choose another path with -o", out)
			}
			c, err := rf.client()
			if err != nil {
				return err
			}
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			content, err := c.Get(ctx, args[0])
			if err != nil {
				return err
			}
			defer content.Body.Close()
			dir, base := filepath.Dir(out), filepath.Base(out)
			if content.Kind == "directory" {
				tmp, err := os.MkdirTemp(dir, "."+base+".part-*")
				if err != nil {
					return err
				}
				r, done := withProgress(content.Body, -1, "getting "+base, quiet)
				err = extractTreeTar(r, tmp)
				done()
				if err == nil {
					err = ctx.Err()
				}
				if err == nil {
					err = os.Rename(tmp, out)
				}
				if err != nil {
					os.RemoveAll(tmp)
					return fmt.Errorf("get %s: %w", args[0], err)
				}
				return nil
			}
			f, err := os.CreateTemp(dir, "."+base+".part-*")
			if err != nil {
				return err
			}
			r, done := withProgress(content.Body, content.Size, "getting "+base, quiet)
			n, err := io.Copy(f, r)
			done()
			if err == nil && content.Size >= 0 && n != content.Size {
				err = fmt.Errorf("got %d of %d bytes", n, content.Size)
			}
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = ctx.Err()
			}
			if err == nil {
				err = os.Chmod(f.Name(), 0o644)
			}
			if err == nil {
				err = os.Rename(f.Name(), out)
			}
			if err != nil {
				os.Remove(f.Name())
				return fmt.Errorf("get %s: %w; nothing was written to %s", args[0], err, out)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "path to write (default: the CID)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return cmd
}

// extractTreeTar writes the tar stream r under dir. Every name must stay inside
// dir: absolute names, ".." elements and paths through a symlink or a
// file are refused, so a hostile stream cannot write elsewhere.
func extractTreeTar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	dirs := map[string]bool{".": true} // directories this extraction made
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := path.Clean(strings.TrimSuffix(h.Name, "/"))
		if name == "." || path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") || strings.Contains(name, "\x00") {
			return fmt.Errorf("tar entry %q escapes the target directory", h.Name)
		}
		if !dirs[path.Dir(name)] {
			return fmt.Errorf("tar entry %q is not inside a directory of the stream", h.Name)
		}
		full := filepath.Join(dir, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.Mkdir(full, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return err
			}
			dirs[name] = true
		case tar.TypeReg:
			f, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, full); err != nil {
				return err
			}
		default:
			return fmt.Errorf("tar entry %q has unsupported type %q", h.Name, h.Typeflag)
		}
	}
}
