package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// run runs the shoal command with args in-process and returns its output
// and error.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestCLIBadInput(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	if out, err := run(t, "--repo", repo, "init", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0"); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	tests := []struct {
		args []string
		want string // in the error
	}{
		{[]string{"--repo", repo, "init"}, "refusing to overwrite"},
		{[]string{"--repo", repo, "id"}, "shoal daemon --repo " + repo},
		{[]string{"--repo", repo, "peers", "--json"}, "no shoal daemon is running"},
		{[]string{"--repo", filepath.Join(dir, "none"), "peers"}, "shoal init --repo"},
		{[]string{"--repo", filepath.Join(dir, "none"), "daemon"}, "shoal init --repo"},
		{[]string{"--repo", repo, "peers", "--bogus"}, "--help"},
		{[]string{"--repo", filepath.Join(dir, "r2"), "init", "--api", "0.0.0.0:5080"}, "allow_non_loopback"},
		{[]string{"--repo", filepath.Join(dir, "r3"), "init", "--bootstrap", "/ip4/1.2.3.4/tcp/1"}, "/p2p/<peer ID>"},
		{[]string{"--repo", filepath.Join(dir, "r4"), "init", "--network", "Bad Name"}, "network.name"},
		{[]string{"--repo", repo, "daemon", "--api", "localhost"}, "api.address"},
		{[]string{"--repo", repo, "daemon", "--log-level", "loud"}, "log.level"},
		{[]string{"testnet", "status", "--dir", filepath.Join(dir, "none")}, "shoal testnet up --dir"},
		{[]string{"testnet", "down", "--dir", filepath.Join(dir, "none")}, "shoal testnet up --dir"},
		{[]string{"testnet", "up", "-n", "0", "--dir", filepath.Join(dir, "tn")}, "want 1 to 64"},
		{[]string{"--repo", repo, "job", "batch", filepath.Join(dir, "none.jsonl")}, "batch file"},
		{[]string{"--repo", repo, "job", "batch"}, "accepts 1 arg"},
		{[]string{"bench", "--batch", "0"}, "--batch 0"},
	}
	for _, tt := range tests {
		out, err := run(t, tt.args...)
		if err == nil {
			t.Errorf("shoal %s succeeded:\n%s", strings.Join(tt.args, " "), out)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("shoal %s = %q, want it to contain %q", strings.Join(tt.args, " "), err, tt.want)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("shoal %s: error is not one line: %q", strings.Join(tt.args, " "), err)
		}
	}
}
