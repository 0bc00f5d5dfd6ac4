package node

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoalnet/shoal/node/client"
)

// testRepo creates a repo with loopback addresses and returns its dir.
func testRepo(t *testing.T, edit func(*Config)) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	cfg := DefaultConfig()
	cfg.Network.Name = "test"
	cfg.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.API.Address = "127.0.0.1:0"
	cfg.Network.DiscoveryMin = Duration(50 * time.Millisecond)
	cfg.Network.DiscoveryMax = Duration(time.Second)
	if edit != nil {
		edit(&cfg)
	}
	if err := Init(dir, cfg, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

func startNode(t *testing.T, dir string, opts ...Option) *Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := New(ctx, dir, opts...)
	if err != nil {
		t.Fatalf("New(%s): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return n
}

func TestInitRepo(t *testing.T) {
	dir := testRepo(t, nil)
	for name, want := range map[string]os.FileMode{KeyFileName: 0o600, TokenFileName: 0o600, ConfigFileName: 0o644} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s mode = %#o, want %#o", name, st.Mode().Perm(), want)
		}
	}
	if err := Init(dir, DefaultConfig(), nil); err == nil || !strings.Contains(err.Error(), "already holds a shoal repo") {
		t.Errorf("Init over an existing repo = %v, want a refusal", err)
	}
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "x"), nil, 0o600)
	if err := Init(other, DefaultConfig(), nil); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("Init in a non-empty dir = %v, want a refusal", err)
	}
	bad := DefaultConfig()
	bad.API.Address = "0.0.0.0:5080"
	fresh := filepath.Join(t.TempDir(), "r")
	if err := Init(fresh, bad, nil); err == nil || !strings.Contains(err.Error(), "allow_non_loopback") {
		t.Errorf("Init with a public API address = %v, want a refusal naming allow_non_loopback", err)
	}
	if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed Init left %s behind", fresh)
	}
}

func TestNewMissingOrCorruptRepo(t *testing.T) {
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "nope")
	if _, err := New(ctx, missing); err == nil || !strings.Contains(err.Error(), "shoal init --repo "+missing) {
		t.Errorf("New(missing repo) = %v, want an error saying to run shoal init", err)
	}
	dir := testRepo(t, nil)
	os.WriteFile(filepath.Join(dir, KeyFileName), []byte("garbage"), 0o600)
	if _, err := New(ctx, dir); err == nil || !strings.Contains(err.Error(), KeyFileName) {
		t.Errorf("New(corrupt key) = %v, want an error naming the key file", err)
	}
	dir = testRepo(t, nil)
	os.WriteFile(filepath.Join(dir, ConfigFileName), []byte("[p2p]\nlisten = 3\n"), 0o644)
	if _, err := New(ctx, dir); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("New(corrupt config) = %v, want an error naming the field", err)
	}
}

func TestAPIAuth(t *testing.T) {
	dir := testRepo(t, nil)
	n := startNode(t, dir)
	url := "http://" + n.APIAddr()
	tok, err := ReadToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/id", "/v1/peers", "/v1/health", "/metrics", "/v1/nope"} {
		for name, header := range map[string]string{
			"none":         "",
			"wrong":        "Bearer " + strings.Repeat("0", len(tok)),
			"prefix":       "Bearer " + tok[:10],
			"not bearer":   "Basic " + tok,
			"token itself": tok,
		} {
			req, _ := http.NewRequest("GET", url+path, nil)
			if header != "" {
				req.Header.Set("Authorization", header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("GET %s with %s token = %d, want 401", path, name, resp.StatusCode)
			}
		}
	}
	c, err := client.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id, err := c.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id.ID != n.PeerID().String() || id.Network != "test" || len(id.Addrs) == 0 {
		t.Errorf("ID = %+v, want peer %s on network test with addrs", id, n.PeerID())
	}
	resp, err := c.Stream(ctx, "GET", "/metrics", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	err = c.Do(ctx, "GET", "/v1/nope", nil, nil)
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Errorf("GET /v1/nope = %v, want a 404 APIError", err)
	}
	bad := client.NewWithToken(dir, n.APIAddr(), "wrong")
	if _, err := bad.ID(ctx); !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized {
		t.Errorf("ID with a wrong token = %v, want a 401 APIError", err)
	}
}

func TestRepoLock(t *testing.T) {
	dir := testRepo(t, nil)
	startNode(t, dir)
	_, err := New(context.Background(), dir)
	if !errors.Is(err, ErrRepoLocked) {
		t.Fatalf("second New on a repo = %v, want ErrRepoLocked", err)
	}
	if !strings.Contains(err.Error(), "pid") {
		t.Errorf("lock error %q does not name the holder's pid", err)
	}
}

func TestCloseReleasesRepo(t *testing.T) {
	dir := testRepo(t, nil)
	ctx := context.Background()
	n, err := New(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, APIFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Close left the api file behind")
	}
	if _, err := client.New(dir); !errors.Is(err, client.ErrNoDaemon) || !strings.Contains(err.Error(), "shoal daemon --repo "+dir) {
		t.Errorf("client.New after Close = %v, want ErrNoDaemon saying how to start one", err)
	}
	n2 := startNode(t, dir)
	if n2.PeerID() != n.PeerID() {
		t.Errorf("peer ID changed across restarts: %s then %s", n.PeerID(), n2.PeerID())
	}
}

func TestClientStaleAPIFile(t *testing.T) {
	dir := testRepo(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	os.WriteFile(filepath.Join(dir, APIFileName), []byte(addr+"\n"), 0o600)
	c, err := client.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ID(context.Background()); !errors.Is(err, client.ErrNoDaemon) {
		t.Errorf("ID against a dead address = %v, want ErrNoDaemon", err)
	}
}

func TestBadStartInput(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ctx := context.Background()

	dir := testRepo(t, func(c *Config) { c.API.Address = busy.Addr().String() })
	if _, err := New(ctx, dir); err == nil || !strings.Contains(err.Error(), "api.address") {
		t.Errorf("New with a busy API port = %v, want an error naming api.address", err)
	}
	dir = testRepo(t, func(c *Config) { c.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/" + portOf(busy.Addr())} })
	if _, err := New(ctx, dir); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("New with a busy p2p port = %v, want an error saying it is in use", err)
	}

	// A bootstrap peer that does not answer: a closed port.
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	port := portOf(closed.Addr())
	closed.Close()
	dir = testRepo(t, func(c *Config) {
		c.Network.Bootstrap = []string{"/ip4/127.0.0.1/tcp/" + port + "/p2p/12D3KooWEF8eZtoNko9D4js4z8f71J1RqhEQNXuoY64jq7BRHs2x"}
	})
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := New(sctx, dir); err == nil || !strings.Contains(err.Error(), "bootstrap") {
		t.Errorf("New with an unreachable bootstrap peer = %v, want an error about bootstrap", err)
	}
}

func portOf(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}

// TestDiscovery starts four in-process nodes where only node 0 is a
// bootstrap peer, and waits until each is connected to all others.
func TestDiscovery(t *testing.T) {
	first := startNode(t, testRepo(t, nil))
	boot := first.p2pAddrs()[0]
	nodes := []*Node{first}
	for range 3 {
		nodes = append(nodes, startNode(t, testRepo(t, func(c *Config) { c.Network.Bootstrap = []string{boot} })))
	}
	deadline := time.Now().Add(time.Minute)
	for {
		missing := 0
		for _, n := range nodes {
			for _, o := range nodes {
				if o != n && n.Host().Network().Connectedness(o.PeerID()) != network.Connected {
					missing++
				}
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d links still missing after a minute", missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Every node sees the others as members of its network.
	deadline = time.Now().Add(time.Minute)
	for _, n := range nodes {
		for _, p := range n.peers() {
			for !n.disc.IsMember(peerIDOf(t, p.ID)) {
				if time.Now().After(deadline) {
					t.Fatalf("%s never found %s under the rendezvous key", n.PeerID(), p.ID)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
}

func peerIDOf(t *testing.T, s string) peer.ID {
	t.Helper()
	id, err := peer.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
