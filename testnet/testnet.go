// Package testnet launches and steers a local Shoal network: N real
// `shoal daemon` processes on 127.0.0.1, each with its own repo DIR/nodeI
// and its own free ports, where only node0 is given to the others as a
// bootstrap peer, so that they must find each other through the DHT.
//
// A testnet runs in stages, each a plain function: [Setup] creates the
// repos, [Testnet.Start] starts the processes and waits until each API
// answers, [Testnet.WaitConnected] waits until every node sees every
// other, [Testnet.Perturb] kills, restarts, pauses or resumes a node, and
// [Testnet.Stop] stops them all. `shoal testnet up` runs the same stages.
// [RunDemo] then shows the network at work (`shoal testnet up --demo`):
// it builds the example programs, runs them as replicated jobs from
// several nodes and has one node verify the others' ledgers.
//
// The testnet is described by DIR/testnet.json (see [Manifest]), which
// `shoal testnet status` and `shoal testnet down` read.
package testnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoalnet/shoal/crypto"
	"github.com/shoalnet/shoal/node"
	"github.com/shoalnet/shoal/node/client"
)

// ManifestFileName is the name of the testnet description in DIR.
const ManifestFileName = "testnet.json"

// LogFileName is the name of each node's log (stdout and stderr of its
// daemon) in its repo.
const LogFileName = "daemon.log"

// Options configure [Setup].
type Options struct {
	// N is the number of nodes; 1 to 64.
	N int
	// Dir is the testnet dir; it must not exist or be empty. Empty means a
	// new temp dir.
	Dir string
	// Network is the network name; default "testnet".
	Network string
	// Binary is the shoal binary to run; empty means this executable
	// (os.Executable), which must then be the shoal command.
	Binary string
	// Args returns extra `shoal daemon` flags for node i; may be nil.
	Args func(i int) []string
	// Env returns extra environment entries ("K=V") for node i; may be nil.
	Env func(i int) []string
	// Slots is the job slots of each node; default 2.
	Slots int
	// LogLevel is the daemons' log level; default "info".
	LogLevel string
	// Configure, if not nil, edits node i's config before its repo is
	// created (after the testnet's own settings).
	Configure func(i int, cfg *node.Config)
	// StartTimeout bounds the start of one node; default 30s.
	StartTimeout time.Duration
	// Detached starts the daemons in their own session so that they outlive
	// the calling process (for `shoal testnet up --detach`).
	Detached bool
}

// A Manifest is the content of DIR/testnet.json.
type Manifest struct {
	Network string         `json:"network"`
	Binary  string         `json:"binary"`
	Nodes   []ManifestNode `json:"nodes"`
}

// A ManifestNode describes one node in a Manifest.
type ManifestNode struct {
	Name   string   `json:"name"`    // "node0", "node1", ...
	Repo   string   `json:"repo"`    // its repo dir
	PeerID string   `json:"peer_id"` // its peer ID
	PID    int      `json:"pid"`     // its daemon's process ID, 0 when not running
	API    string   `json:"api"`     // host:port of its API, "" when not running
	Addrs  []string `json:"addrs"`   // its listen multiaddrs with /p2p/<id>
}

// A Testnet is a set of local nodes. Its methods are safe for concurrent use.
type Testnet struct {
	dir    string
	opts   Options
	binary string

	mu    sync.Mutex
	nodes []*Node // guarded by mu (the slice; each Node has its own lock)
}

// A Node is one node of a testnet.
type Node struct {
	Index  int
	Name   string  // "node<Index>"
	Repo   string  // repo dir
	PeerID peer.ID // fixed by the repo's key
	Addrs  []string

	tcpPort, udpPort int

	mu     sync.Mutex
	cmd    *exec.Cmd     // guarded by mu; nil when not running
	exited chan struct{} // guarded by mu; closed when cmd has exited
	exit   error         // guarded by mu; set before exited is closed
	client *client.Client
	api    string
}

// Setup creates the testnet dir and the repos of its nodes, with loopback
// listen addresses on free ports, the API on 127.0.0.1 port 0, and
// node0's address as the only bootstrap peer of the others. It starts no
// process.
func Setup(opts Options) (*Testnet, error) {
	if opts.N < 1 || opts.N > 64 {
		return nil, fmt.Errorf("testnet: %d nodes asked; want 1 to 64", opts.N)
	}
	if opts.Network == "" {
		opts.Network = "testnet"
	}
	if opts.Slots == 0 {
		opts.Slots = 2
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "info"
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 30 * time.Second
	}
	bin := opts.Binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("testnet: find the shoal binary: %w", err)
		}
		bin = exe
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		return nil, fmt.Errorf("testnet: shoal binary %s not found; build it with: go build -o %s ./cmd/shoal", bin, bin)
	}
	dir := opts.Dir
	if dir == "" {
		dir, err = os.MkdirTemp("", "shoal-testnet-")
		if err != nil {
			return nil, fmt.Errorf("testnet: create temp dir: %w", err)
		}
	} else {
		entries, err := os.ReadDir(dir)
		switch {
		case errors.Is(err, os.ErrNotExist):
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("testnet: create %s: %w", dir, err)
			}
		case err != nil:
			return nil, fmt.Errorf("testnet: read %s: %w", dir, err)
		case len(entries) > 0:
			return nil, fmt.Errorf("testnet: %s is not empty; stop its testnet (shoal testnet down --dir %s) and delete it, or pick another --dir", dir, dir)
		}
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	tn := &Testnet{dir: dir, opts: opts, binary: bin}
	ports, err := freePorts(opts.N)
	if err != nil {
		return nil, err
	}
	var bootstrap string
	for i := range opts.N {
		nd := &Node{
			Index:   i,
			Name:    fmt.Sprintf("node%d", i),
			Repo:    filepath.Join(dir, fmt.Sprintf("node%d", i)),
			tcpPort: ports[i].tcp,
			udpPort: ports[i].udp,
		}
		cfg := node.DefaultConfig()
		cfg.Network.Name = opts.Network
		cfg.Network.DiscoveryMin = node.Duration(100 * time.Millisecond)
		cfg.Network.DiscoveryMax = node.Duration(10 * time.Second)
		cfg.P2P.Listen = []string{
			fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", nd.tcpPort),
			fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", nd.udpPort),
		}
		cfg.API.Address = "127.0.0.1:0"
		cfg.Log.Level = opts.LogLevel
		cfg.Jobs.Slots, cfg.Jobs.Queue = opts.Slots, 2*opts.Slots
		if i > 0 {
			cfg.Network.Bootstrap = []string{bootstrap}
		}
		if opts.Configure != nil {
			opts.Configure(i, &cfg)
		}
		if err := node.Init(nd.Repo, cfg, nil); err != nil {
			return nil, fmt.Errorf("testnet: init %s: %w", nd.Name, err)
		}
		key, err := crypto.ReadKeyFile(filepath.Join(nd.Repo, node.KeyFileName))
		if err != nil {
			return nil, fmt.Errorf("testnet: %s: %w", nd.Name, err)
		}
		if nd.PeerID, err = crypto.PeerID(key); err != nil {
			return nil, err
		}
		for _, l := range cfg.P2P.Listen {
			nd.Addrs = append(nd.Addrs, l+"/p2p/"+nd.PeerID.String())
		}
		if i == 0 {
			bootstrap = nd.Addrs[0]
		}
		tn.nodes = append(tn.nodes, nd)
	}
	if err := tn.WriteManifest(); err != nil {
		return nil, err
	}
	return tn, nil
}

type portPair struct{ tcp, udp int }

// freePorts returns n pairs of ports that were free on 127.0.0.1 a moment
// ago (TCP and UDP, each listened on and closed).
func freePorts(n int) ([]portPair, error) {
	var out []portPair
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for range n {
		tl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("testnet: find a free TCP port: %w", err)
		}
		closers = append(closers, tl)
		ul, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("testnet: find a free UDP port: %w", err)
		}
		closers = append(closers, ul)
		out = append(out, portPair{tl.Addr().(*net.TCPAddr).Port, ul.LocalAddr().(*net.UDPAddr).Port})
	}
	return out, nil
}

// Dir returns the testnet dir.
func (tn *Testnet) Dir() string { return tn.dir }

// Network returns the network name.
func (tn *Testnet) Network() string { return tn.opts.Network }

// N returns the number of nodes.
func (tn *Testnet) N() int { return len(tn.nodes) }

// Node returns node i. It panics if i is out of range.
func (tn *Testnet) Node(i int) *Node {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	return tn.nodes[i]
}

// Nodes returns all nodes.
func (tn *Testnet) Nodes() []*Node {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	return slices.Clone(tn.nodes)
}

// Start starts every node that is not running: node0 first, then the
// others together, and returns once each API answers. It writes the
// manifest. On error the nodes it started keep running; call Stop.
func (tn *Testnet) Start(ctx context.Context) error {
	nodes := tn.Nodes()
	if len(nodes) == 0 {
		return nil
	}
	if err := tn.startNode(ctx, nodes[0]); err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for _, nd := range nodes[1:] {
		wg.Go(func() { errs[nd.Index] = tn.startNode(ctx, nd) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return tn.WriteManifest()
}

// StartNode starts node i if it is not running and waits until its API answers.
func (tn *Testnet) StartNode(ctx context.Context, i int) error {
	if err := tn.startNode(ctx, tn.Node(i)); err != nil {
		return err
	}
	return tn.WriteManifest()
}

func (tn *Testnet) startNode(ctx context.Context, nd *Node) error {
	nd.mu.Lock()
	if nd.cmd != nil {
		nd.mu.Unlock()
		return nil
	}
	os.Remove(filepath.Join(nd.Repo, node.APIFileName)) // stale after a kill
	logf, err := os.OpenFile(filepath.Join(nd.Repo, LogFileName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		nd.mu.Unlock()
		return fmt.Errorf("testnet: %s: open log: %w", nd.Name, err)
	}
	args := []string{"--repo", nd.Repo, "daemon"}
	if tn.opts.Args != nil {
		args = append(args, tn.opts.Args(nd.Index)...)
	}
	cmd := exec.Command(tn.binary, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = os.Environ()
	if tn.opts.Env != nil {
		cmd.Env = append(cmd.Env, tn.opts.Env(nd.Index)...)
	}
	cmd.SysProcAttr = sysProcAttr(tn.opts.Detached)
	if err := cmd.Start(); err != nil {
		logf.Close()
		nd.mu.Unlock()
		return fmt.Errorf("testnet: start %s: %w", nd.Name, err)
	}
	logf.Close() // the child holds its own copy
	exited := make(chan struct{})
	nd.cmd, nd.exited, nd.exit, nd.client, nd.api = cmd, exited, nil, nil, ""
	nd.mu.Unlock()
	go func() {
		err := cmd.Wait()
		nd.mu.Lock()
		nd.exit = err
		if nd.cmd == cmd {
			nd.cmd = nil
			nd.client = nil
			nd.api = ""
		}
		nd.mu.Unlock()
		close(exited)
	}()
	return tn.waitReady(ctx, nd, exited)
}

// waitReady polls until nd's API answers its health check.
func (tn *Testnet) waitReady(ctx context.Context, nd *Node, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, tn.opts.StartTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-exited:
			nd.mu.Lock()
			err := nd.exit
			nd.mu.Unlock()
			return fmt.Errorf("testnet: %s exited while starting (%v): %s", nd.Name, err, nd.logTail())
		case <-ctx.Done():
			return fmt.Errorf("testnet: %s did not answer within %s: %s", nd.Name, tn.opts.StartTimeout, nd.logTail())
		case <-tick.C:
		}
		c, err := client.New(nd.Repo)
		if err != nil {
			continue
		}
		hctx, hcancel := context.WithTimeout(ctx, 2*time.Second)
		h, err := c.Health(hctx)
		hcancel()
		if err != nil || !h.OK {
			continue
		}
		nd.mu.Lock()
		nd.client = c
		nd.api = c.Addr()
		nd.mu.Unlock()
		return nil
	}
}

// logTail returns the last lines of the node's log, for error messages.
func (nd *Node) logTail() string {
	b, err := os.ReadFile(filepath.Join(nd.Repo, LogFileName))
	if err != nil {
		return "no log"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return fmt.Sprintf("last lines of %s:\n%s", filepath.Join(nd.Repo, LogFileName), strings.Join(lines, "\n"))
}

// Client returns an API client of the node, or nil when it is not running.
func (nd *Node) Client() *client.Client {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.client
}

// PID returns the process ID of the node's daemon, or 0 when it is not running.
func (nd *Node) PID() int {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd == nil {
		return 0
	}
	return nd.cmd.Process.Pid
}

// Running reports whether the node's daemon runs.
func (nd *Node) Running() bool { return nd.PID() != 0 }

// Exited returns a channel closed when the node's last started daemon
// process exits, and nil when none was started.
func (nd *Node) Exited() <-chan struct{} {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.exited
}

// ExitErr returns how the node's last daemon process ended (nil for a clean exit).
func (nd *Node) ExitErr() error {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.exit
}

// signal sends sig to the node's daemon and returns the channel closed on
// its exit; nil when it does not run.
func (nd *Node) signal(sig syscall.Signal) (<-chan struct{}, error) {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd == nil {
		return nil, nil
	}
	if err := nd.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return nil, fmt.Errorf("testnet: signal %s: %w", nd.Name, err)
	}
	return nd.exited, nil
}

// stopNode asks node i to stop (SIGTERM) and kills it (SIGKILL) when it
// has not exited by the deadline of ctx or after 20s.
func (tn *Testnet) stopNode(ctx context.Context, nd *Node, sig syscall.Signal) error {
	exited, err := nd.signal(sig)
	if err != nil || exited == nil {
		return err
	}
	t := time.NewTimer(20 * time.Second)
	defer t.Stop()
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
	case <-t.C:
	}
	nd.signal(syscall.SIGKILL)
	<-exited
	return fmt.Errorf("testnet: %s did not stop on %v and was killed: %s", nd.Name, sig, nd.logTail())
}

// Kill kills node i at once (SIGKILL), as a crash would, and waits for it to exit.
func (tn *Testnet) Kill(i int) error {
	err := tn.stopNode(context.Background(), tn.Node(i), syscall.SIGKILL)
	if err == nil {
		err = tn.WriteManifest()
	}
	return err
}

// StopNode stops node i cleanly (SIGTERM) and waits for it to exit.
func (tn *Testnet) StopNode(ctx context.Context, i int) error {
	err := tn.stopNode(ctx, tn.Node(i), syscall.SIGTERM)
	if err == nil {
		err = tn.WriteManifest()
	}
	return err
}

// Restart stops node i cleanly if it runs, starts it again on the same
// repo and ports, and waits until its API answers.
func (tn *Testnet) Restart(ctx context.Context, i int) error {
	if err := tn.StopNode(ctx, i); err != nil {
		return err
	}
	return tn.StartNode(ctx, i)
}

// Stop stops every node cleanly (SIGTERM, then SIGKILL after 20s) and
// waits for all to exit. It is safe to call more than once.
func (tn *Testnet) Stop() error {
	var wg sync.WaitGroup
	nodes := tn.Nodes()
	errs := make([]error, len(nodes))
	for _, nd := range nodes {
		wg.Go(func() { errs[nd.Index] = tn.stopNode(context.Background(), nd, syscall.SIGTERM) })
	}
	wg.Wait()
	return errors.Join(append(errs, tn.WriteManifest())...)
}

// Manifest returns the current description of the testnet.
func (tn *Testnet) Manifest() Manifest {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	return tn.manifestLocked()
}

// WriteManifest writes DIR/testnet.json.
func (tn *Testnet) WriteManifest() error {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	b, err := json.MarshalIndent(tn.manifestLocked(), "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(tn.dir, ManifestFileName)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("testnet: write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("testnet: write %s: %w", path, err)
	}
	return nil
}

func (tn *Testnet) manifestLocked() Manifest {
	m := Manifest{Network: tn.opts.Network, Binary: tn.binary}
	for _, nd := range tn.nodes {
		nd.mu.Lock()
		mn := ManifestNode{Name: nd.Name, Repo: nd.Repo, PeerID: nd.PeerID.String(), API: nd.api, Addrs: nd.Addrs}
		if nd.cmd != nil {
			mn.PID = nd.cmd.Process.Pid
		}
		nd.mu.Unlock()
		m.Nodes = append(m.Nodes, mn)
	}
	return m
}

// maxManifestSize bounds the testnet.json a reader accepts.
const maxManifestSize = 1 << 20

// ReadManifest reads and checks DIR/testnet.json.
func ReadManifest(dir string) (Manifest, error) {
	path := filepath.Join(dir, ManifestFileName)
	f, err := os.Open(path)
	if err != nil {
		return Manifest{}, fmt.Errorf("testnet: no testnet in %s (%w); start one with: shoal testnet up --dir %s", dir, err, dir)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifestSize+1))
	if err != nil {
		return Manifest{}, fmt.Errorf("testnet: read %s: %w", path, err)
	}
	return ParseManifest(b)
}

// ParseManifest decodes and validates testnet.json contents.
func ParseManifest(b []byte) (Manifest, error) {
	if len(b) > maxManifestSize {
		return Manifest{}, fmt.Errorf("testnet: manifest is %d bytes; the limit is %d", len(b), maxManifestSize)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("testnet: manifest is not valid: %w", err)
	}
	if dec.More() {
		return Manifest{}, errors.New("testnet: manifest has data after its JSON object")
	}
	if err := m.Validate(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// Validate checks that every node of m has a name, a repo, a valid peer
// ID and a non-negative pid.
func (m Manifest) Validate() error {
	if m.Network == "" {
		return errors.New("testnet: manifest has no network")
	}
	for i, nd := range m.Nodes {
		if nd.Name == "" || nd.Repo == "" {
			return fmt.Errorf("testnet: manifest node %d has no name or repo", i)
		}
		if _, err := peer.Decode(nd.PeerID); err != nil {
			return fmt.Errorf("testnet: manifest node %s: peer_id %q: %v", nd.Name, nd.PeerID, err)
		}
		if nd.PID < 0 {
			return fmt.Errorf("testnet: manifest node %s: pid %d", nd.Name, nd.PID)
		}
	}
	return nil
}

// WaitConnected polls until every running node is connected to every other
// running node, or ctx ends.
func (tn *Testnet) WaitConnected(ctx context.Context) error {
	return tn.WaitFor(ctx, 50*time.Millisecond, func(ctx context.Context) (bool, string, error) {
		var running []*Node
		for _, nd := range tn.Nodes() {
			if nd.Running() {
				running = append(running, nd)
			}
		}
		missing := 0
		var worst string
		for _, nd := range running {
			c := nd.Client()
			if c == nil {
				return false, nd.Name + " has no API", nil
			}
			peers, err := c.Peers(ctx)
			if err != nil {
				return false, fmt.Sprintf("%s: %v", nd.Name, err), nil
			}
			have := make(map[string]bool, len(peers))
			for _, p := range peers {
				have[p.ID] = true
			}
			for _, o := range running {
				if o != nd && !have[o.PeerID.String()] {
					missing++
					worst = fmt.Sprintf("%s does not see %s", nd.Name, o.Name)
				}
			}
		}
		if missing == 0 {
			return true, "", nil
		}
		return false, fmt.Sprintf("%d links missing, e.g. %s", missing, worst), nil
	})
}

// WaitFor calls cond every interval until it reports done, returns an
// error, or ctx ends; the error then includes cond's last status.
func (tn *Testnet) WaitFor(ctx context.Context, interval time.Duration, cond func(context.Context) (done bool, status string, err error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last string
	for {
		done, status, err := cond(ctx)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		last = status
		select {
		case <-ctx.Done():
			return fmt.Errorf("testnet: gave up waiting (%w): %s", ctx.Err(), last)
		case <-t.C:
		}
	}
}

// A Perturbation is something done to a running node.
type Perturbation string

// The perturbations.
const (
	PerturbKill    Perturbation = "kill"    // SIGKILL, as a crash
	PerturbRestart Perturbation = "restart" // clean stop, then start on the same repo and ports
	PerturbPause   Perturbation = "pause"   // SIGSTOP: the process freezes, connections stay open
	PerturbResume  Perturbation = "resume"  // SIGCONT after a pause
)

// Perturb applies p to node i.
func (tn *Testnet) Perturb(ctx context.Context, i int, p Perturbation) error {
	switch p {
	case PerturbKill:
		return tn.Kill(i)
	case PerturbRestart:
		return tn.Restart(ctx, i)
	case PerturbPause:
		_, err := tn.Node(i).signal(syscall.SIGSTOP)
		return err
	case PerturbResume:
		_, err := tn.Node(i).signal(syscall.SIGCONT)
		return err
	default:
		return fmt.Errorf("testnet: unknown perturbation %q; want kill, restart, pause or resume", p)
	}
}

// CopyBinary copies the shoal binary at src to a new file shoal-bin-* in
// dir (the temp dir if "") and returns its path. A testnet runs such a
// copy, so that rebuilding shoal while it runs changes nothing under it.
func CopyBinary(src, dir string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", fmt.Errorf("testnet: open shoal binary: %w", err)
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, "shoal-bin-")
	if err != nil {
		return "", fmt.Errorf("testnet: copy shoal binary: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(out.Name())
		return "", fmt.Errorf("testnet: copy shoal binary to %s: %w", out.Name(), err)
	}
	if err := out.Chmod(0o755); err != nil {
		out.Close()
		os.Remove(out.Name())
		return "", fmt.Errorf("testnet: make %s executable: %w", out.Name(), err)
	}
	if err := out.Close(); err != nil {
		os.Remove(out.Name())
		return "", fmt.Errorf("testnet: copy shoal binary to %s: %w", out.Name(), err)
	}
	return out.Name(), nil
}

// BuildBinary builds the shoal command into dir/shoal with `go build` and
// returns its path. Tests of other packages call it from TestMain.
func BuildBinary(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "shoal")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/shoalnet/shoal/cmd/shoal")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("testnet: go build shoal: %w\n%s", err, b)
	}
	return out, nil
}

// Memory is the memory use of a process, in bytes, as Linux reports it.
type Memory struct {
	RSS  int64 // VmRSS: resident pages
	Anon int64 // RssAnon: resident private memory (heap, stacks)
	File int64 // RssFile: resident pages of mapped files, mostly the binary, shared with other processes of it
	PSS  int64 // Pss: RSS with each shared page divided among the processes that map it
}

// clockTicks is the unit of the CPU times in /proc/PID/stat (USER_HZ),
// 100 per second on every Linux port Shoal runs on.
const clockTicks = 100

// A CPUTime is the processor time used by processes, user and system.
type CPUTime struct {
	Procs    time.Duration // the processes themselves
	Children time.Duration // their live child processes (a node's sandbox workers)
}

// ProcessCPU returns the CPU time used so far by the processes pids and
// by their live children, read from /proc/PID/stat. Children that have
// exited are not counted.
func ProcessCPU(pids ...int) (CPUTime, error) {
	var t CPUTime
	want := make(map[int]bool, len(pids))
	for _, pid := range pids {
		want[pid] = true
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return t, fmt.Errorf("testnet: list processes: %w", err)
	}
	found := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone
		}
		// pid (comm) state ppid ... utime stime: fields 4, 14 and 15, counted
		// after the command name, which may hold spaces.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		if !want[pid] && !want[ppid] {
			continue
		}
		utime, err1 := strconv.ParseInt(f[11], 10, 64)
		stime, err2 := strconv.ParseInt(f[12], 10, 64)
		if err1 != nil || err2 != nil {
			return t, fmt.Errorf("testnet: bad /proc/%d/stat", pid)
		}
		d := time.Duration(utime+stime) * time.Second / clockTicks
		if want[pid] {
			t.Procs += d
			found++
		} else {
			t.Children += d
		}
	}
	if found == 0 && len(pids) > 0 {
		return t, fmt.Errorf("testnet: none of the processes %v runs", pids)
	}
	return t, nil
}

// ProcessMemory reads the memory use of process pid from
// /proc/PID/status and /proc/PID/smaps_rollup.
func ProcessMemory(pid int) (Memory, error) {
	var m Memory
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return m, fmt.Errorf("testnet: read status of pid %d: %w", pid, err)
	}
	rollup, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "smaps_rollup"))
	if err != nil {
		return m, fmt.Errorf("testnet: read smaps_rollup of pid %d: %w", pid, err)
	}
	fields := map[string]*int64{"VmRSS:": &m.RSS, "RssAnon:": &m.Anon, "RssFile:": &m.File, "Pss:": &m.PSS}
	for line := range strings.SplitSeq(string(status)+"\n"+string(rollup), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		if p, ok := fields[f[0]]; ok && *p == 0 {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return m, fmt.Errorf("testnet: pid %d: %s %q: %w", pid, f[0], f[1], err)
			}
			*p = kb * 1024
		}
	}
	if m.RSS == 0 {
		return m, fmt.Errorf("testnet: no VmRSS for pid %d", pid)
	}
	return m, nil
}
