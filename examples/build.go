// Package examples holds Shoal's example WebAssembly programs (one command
// per directory, built with GOOS=wasip1 GOARCH=wasm) and Build, which
// compiles one of them for tests and benchmarks.
package examples

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// Names lists the example programs.
func Names() []string {
	return []string{"hello", "wordcount", "pi", "mandelbrot", "clockrand", "misbehave"}
}

// Dir returns the directory of the examples' sources.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// Build compiles example name for wasip1/wasm into dir/name.wasm and
// returns the path. With native set it builds for the host instead, into
// dir/name.native, for comparisons.
func Build(ctx context.Context, dir, name string, native bool) (string, error) {
	src := filepath.Join(Dir(), name)
	if _, err := os.Stat(filepath.Join(src, "main.go")); err != nil {
		return "", fmt.Errorf("examples: no example %q: %w", name, err)
	}
	out := filepath.Join(dir, name+".wasm")
	env := append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if native {
		out = filepath.Join(dir, name+".native")
		env = os.Environ()
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = env
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("examples: build %s: %w\n%s", name, err, b)
	}
	return out, nil
}
