package testnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shoalnet/shoal/node"
	"github.com/shoalnet/shoal/node/client"
)

// A NodeStatus is the health of one node of a testnet described by a manifest.
type NodeStatus struct {
	Name    string `json:"name"`
	PeerID  string `json:"peer_id"`
	Repo    string `json:"repo"`
	PID     int    `json:"pid"`
	API     string `json:"api"`
	Running bool   `json:"running"` // the process exists
	Healthy bool   `json:"healthy"` // its API answered
	Peers   int    `json:"peers"`   // connected peers, when healthy
	Error   string `json:"error,omitempty"`
}

// Status reports the health of every node of the testnet in dir, asking
// each running node's API.
func Status(ctx context.Context, dir string) ([]NodeStatus, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	out := make([]NodeStatus, len(m.Nodes))
	var wg sync.WaitGroup
	for i, mn := range m.Nodes {
		wg.Go(func() { out[i] = nodeStatus(ctx, mn) })
	}
	wg.Wait()
	return out, nil
}

func nodeStatus(ctx context.Context, mn ManifestNode) NodeStatus {
	st := NodeStatus{Name: mn.Name, PeerID: mn.PeerID, Repo: mn.Repo, PID: mn.PID, API: mn.API}
	if mn.PID == 0 || !isDaemonOf(mn.PID, mn.Repo) {
		st.Error = "not running"
		if mn.PID != 0 {
			st.Error = fmt.Sprintf("process %d is gone; see %s", mn.PID, filepath.Join(mn.Repo, LogFileName))
		}
		return st
	}
	st.Running = true
	c, err := client.New(mn.Repo)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	h, err := c.Health(ctx)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	st.Healthy, st.Peers, st.API = h.OK, h.Peers, c.Addr()
	return st
}

// isDaemonOf reports whether process pid is a shoal daemon of repo, so
// that a reused pid is never signaled.
func isDaemonOf(pid int, repo string) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	var hasDaemon, hasRepo bool
	for _, a := range args {
		hasDaemon = hasDaemon || a == "daemon"
		hasRepo = hasRepo || a == repo
	}
	return hasDaemon && hasRepo
}

// Down stops every running node of the testnet in dir (SIGTERM, then
// SIGKILL after 20s) and marks them stopped in its manifest.
func Down(ctx context.Context, dir string) error {
	m, err := ReadManifest(dir)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(m.Nodes))
	for i, mn := range m.Nodes {
		if mn.PID == 0 || !isDaemonOf(mn.PID, mn.Repo) {
			continue
		}
		wg.Go(func() { errs[i] = stopPID(ctx, mn) })
	}
	wg.Wait()
	for i := range m.Nodes {
		m.Nodes[i].PID, m.Nodes[i].API = 0, ""
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, ManifestFileName), append(b, '\n'), 0o600)
	}
	return errors.Join(append(errs, err)...)
}

func stopPID(ctx context.Context, mn ManifestNode) error {
	if err := syscall.Kill(mn.PID, syscall.SIGTERM); err != nil {
		return nil // already gone
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for isDaemonOf(mn.PID, mn.Repo) {
		select {
		case <-ctx.Done():
			syscall.Kill(mn.PID, syscall.SIGKILL)
			os.Remove(filepath.Join(mn.Repo, node.APIFileName)) // a killed daemon leaves it behind
			return fmt.Errorf("testnet: %s (pid %d) did not stop on SIGTERM in time and was killed", mn.Name, mn.PID)
		case <-tick.C:
		}
	}
	return nil
}
