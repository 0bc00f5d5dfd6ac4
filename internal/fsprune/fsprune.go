// Package fsprune trims a directory of cache files to a size, deleting the
// least recently modified first. It serves the node's caches on disk
// (exported modules, compiled modules), which can always be made again.
package fsprune

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Options select the files ToSize considers and spares. Nil fields
// consider every regular file and spare none.
type Options struct {
	// Include reports whether a file counts toward the size and may go.
	Include func(path string) bool
	// Spare reports whether a counted file must stay however old it is
	// (one in use, say).
	Spare func(path string, mtime time.Time) bool
}

// ToSize walks dir and deletes the least recently modified of the files
// it considers until those take at most maxBytes, and returns the bytes
// freed. Files that vanish meanwhile are skipped.
func ToSize(dir string, maxBytes int64, opts Options) (int64, error) {
	type file struct {
		path  string
		size  int64
		mtime time.Time
	}
	var files []file
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || opts.Include != nil && !opts.Include(path) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil // gone meanwhile
		}
		files = append(files, file{path, fi.Size(), fi.ModTime()})
		total += fi.Size()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("fsprune: read %s: %w", dir, err)
	}
	if total <= maxBytes {
		return 0, nil
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mtime.Before(files[j].mtime) })
	var freed int64
	for _, f := range files {
		if total <= maxBytes {
			break
		}
		if opts.Spare != nil && opts.Spare(f.path, f.mtime) {
			continue
		}
		if err := os.Remove(f.path); err != nil && !os.IsNotExist(err) {
			return freed, fmt.Errorf("fsprune: %w", err)
		}
		total -= f.size
		freed += f.size
	}
	return freed, nil
}
