package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestTestnetDemoBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string // in the error
	}{
		{[]string{"testnet", "up", "-n", "2", "--demo", "--dir", filepath.Join(dir, "tn1")}, "at least 3 nodes"},
		{[]string{"testnet", "up", "-n", "3", "--modules", dir, "--dir", filepath.Join(dir, "tn2")}, "add --demo"},
	} {
		out, err := run(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("shoal %s = %v, want an error containing %q\n%s", strings.Join(tt.args, " "), err, tt.want, out)
		}
	}
}
