package sandbox

import (
	"fmt"

	"github.com/shoalnet/shoal/internal/fsprune"
)

// DefaultCacheMaxBytes is the default bound of the compilation cache
// (Config.CacheMaxBytes).
const DefaultCacheMaxBytes = 2 << 30

// PruneCache deletes the oldest files under the compilation cache dir
// (wazero writes one per compiled module and wazero version) until the
// files there take at most maxBytes, and returns the bytes freed. A module
// whose compiled form was deleted is compiled again when a job needs it.
func PruneCache(dir string, maxBytes int64) (int64, error) {
	freed, err := fsprune.ToSize(dir, maxBytes, fsprune.Options{})
	if err != nil {
		return freed, fmt.Errorf("sandbox: prune compilation cache: %w", err)
	}
	return freed, nil
}
