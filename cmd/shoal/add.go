package main

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/shoalnet/shoal/node/client"
)

// progressMin is the size from which add and get show a progress bar.
const progressMin = 4 << 20

// withProgress wraps r in a progress bar on stderr when stderr is a
// terminal and the transfer is large (size < 0: unknown). done finishes
// the bar.
func withProgress(r io.Reader, size int64, desc string, quiet bool) (io.Reader, func()) {
	if quiet || !isTTY(os.Stderr) || (size >= 0 && size < progressMin) {
		return r, func() {}
	}
	bar := progressbar.DefaultBytes(size, desc)
	pr := progressbar.NewReader(r, bar)
	return &pr, func() { bar.Finish() }
}

func newAddCmd(rf *rootFlags) *cobra.Command {
	var (
		asJSON    bool
		recursive bool
		hidden    bool
		quiet     bool
	)
	cmd := &cobra.Command{
		Use:   "add FILE|-",
		Short: "Add a file or directory to the node's block store and print its CID",
		Long: `Add imports a file (or, with -r, a directory tree; "-" reads stdin) as
UnixFS blocks, pins it and announces it to the network. The CID is the one
'ipfs add --cid-version=1' prints for the same content. Hidden entries
(names starting with ".") inside a directory are skipped unless --hidden.`,
		Example: "  shoal add data.csv\n  shoal add -r ./inputs --json\n  tar -c x | shoal add -",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := rf.client()
			if err != nil {
				return err
			}
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			path := args[0]
			var res client.AddResult
			switch fi, err := os.Stat(path); {
			case path == "-":
				r, done := withProgress(os.Stdin, -1, "adding stdin", quiet || asJSON)
				res, err = c.Add(ctx, r, "-")
				done()
				if err != nil {
					return err
				}
			case err != nil:
				return fmt.Errorf("add %s: %w", path, err)
			case fi.IsDir():
				if !recursive {
					return fmt.Errorf("%s is a directory; add it with: shoal add -r %s", path, path)
				}
				pr, pw := io.Pipe()
				go func() { pw.CloseWithError(writeDirTar(pw, path, hidden)) }()
				r, done := withProgress(pr, -1, "adding "+filepath.Base(path), quiet || asJSON)
				res, err = c.AddTar(ctx, r, filepath.Base(path))
				done()
				pr.CloseWithError(io.ErrClosedPipe)
				if err != nil {
					return err
				}
			case fi.Mode().IsRegular():
				f, err := os.Open(path)
				if err != nil {
					return err
				}
				defer f.Close()
				r, done := withProgress(f, fi.Size(), "adding "+filepath.Base(path), quiet || asJSON)
				res, err = c.Add(ctx, r, filepath.Base(path))
				done()
				if err != nil {
					return err
				}
			default:
				return fmt.Errorf("%s is not a regular file or directory", path)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), res.CID)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"cid":..., "size":...}`)
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "add a directory tree")
	cmd.Flags().BoolVar(&hidden, "hidden", false, `include entries whose names start with "." (with -r)`)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return cmd
}

// writeDirTar writes the tree at root to w as a tar stream with names
// relative to root, in lexical order, skipping hidden entries unless
// hidden is set.
func writeDirTar(w io.Writer, root string, hidden bool) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		if !hidden && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		switch t := d.Type(); {
		case t.IsDir():
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755})
		case t&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777})
		case t.IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				return err
			}
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: fi.Size(), Mode: 0o644}); err != nil {
				return err
			}
			if _, err := io.Copy(tw, f); err != nil {
				return fmt.Errorf("reading %s: %w", p, err)
			}
			return nil
		default:
			return fmt.Errorf("%s is a %v; only files, directories and symlinks can be added", p, t)
		}
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
