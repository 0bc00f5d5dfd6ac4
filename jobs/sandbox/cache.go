package sandbox

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// DefaultCacheMaxBytes is the default bound of the compilation cache
// (Config.CacheMaxBytes).
const DefaultCacheMaxBytes = 2 << 30

// PruneCache deletes the oldest files under the compilation cache dir
// (wazero writes one per compiled module and wazero version) until the
// files there take at most maxBytes, and returns the bytes freed. A module
// whose compiled form was deleted is compiled again when a job needs it.
func PruneCache(dir string, maxBytes int64) (int64, error) {
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
		if !d.Type().IsRegular() {
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
		return 0, fmt.Errorf("sandbox: read compilation cache %s: %w", dir, err)
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
		if err := os.Remove(f.path); err != nil && !os.IsNotExist(err) {
			return freed, fmt.Errorf("sandbox: prune compilation cache: %w", err)
		}
		total -= f.size
		freed += f.size
	}
	return freed, nil
}
