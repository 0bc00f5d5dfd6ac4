//go:build !linux

package main

import (
	"context"
	"log/slog"
)

// trimExecutableLoop does nothing where dropping the binary's pages is not
// supported.
func trimExecutableLoop(ctx context.Context, log *slog.Logger) {}
