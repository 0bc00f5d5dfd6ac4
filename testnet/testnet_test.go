package testnet

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The shoal binary, built once for the tests that need it (not in fuzz
// workers, which run TestMain too).
var (
	buildOnce sync.Once
	buildDir  string
	shoalBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// binary returns the shoal binary, building it with `go build` on first use.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "shoal-testnet-test-")
		if buildErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		shoalBin, buildErr = BuildBinary(ctx, buildDir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return shoalBin
}

func startTestnet(t testing.TB, n int) *Testnet {
	t.Helper()
	tn, err := Setup(Options{N: n, Dir: filepath.Join(t.TempDir(), "tn"), Binary: binary(t), Network: "t"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tn.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := tn.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return tn
}

func TestFiveNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 5 daemons")
	}
	tn := startTestnet(t, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := tn.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}

	// Only node0 was given as a bootstrap peer, and the others found each
	// other (and are counted as members of the network).
	for _, nd := range tn.Nodes() {
		peers, err := nd.Client().Peers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, p := range peers {
			if p.Member {
				ids = append(ids, p.ID)
			}
		}
		for _, o := range tn.Nodes() {
			if o != nd && !slices.Contains(ids, o.PeerID.String()) {
				// Membership comes from the lookup loop; give it time.
				err := tn.WaitFor(ctx, 50*time.Millisecond, func(ctx context.Context) (bool, string, error) {
					peers, err := nd.Client().Peers(ctx)
					if err != nil {
						return false, err.Error(), nil
					}
					for _, p := range peers {
						if p.ID == o.PeerID.String() && p.Member {
							return true, "", nil
						}
					}
					return false, nd.Name + " does not count " + o.Name + " as a member", nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
		}
	}

	// Each daemon leads a session of its own (sysProcAttr).
	for _, nd := range tn.Nodes() {
		if sid, err := unix.Getsid(nd.PID()); err != nil || sid != nd.PID() {
			t.Errorf("%s (pid %d) is in session %d (%v), want one of its own", nd.Name, nd.PID(), sid, err)
		}
	}

	m, err := ReadManifest(tn.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Nodes) != 5 || m.Network != "t" {
		t.Fatalf("manifest = %+v, want 5 nodes of network t", m)
	}
	for i, mn := range m.Nodes {
		if mn.PID != tn.Node(i).PID() || mn.PeerID != tn.Node(i).PeerID.String() || mn.API == "" {
			t.Errorf("manifest node %d = %+v, want pid %d peer %s and an api", i, mn, tn.Node(i).PID(), tn.Node(i).PeerID)
		}
	}
	st, err := Status(ctx, tn.Dir())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if !s.Healthy || s.Peers < 4 {
			t.Errorf("status of %s = %+v, want healthy with 4 peers", s.Name, s)
		}
	}

	// A restarted node keeps its peer ID and rejoins.
	before := tn.Node(3).PeerID
	oldPID := tn.Node(3).PID()
	if err := tn.Perturb(ctx, 3, PerturbRestart); err != nil {
		t.Fatal(err)
	}
	if tn.Node(3).PID() == oldPID {
		t.Fatal("restart kept the old process")
	}
	id, err := tn.Node(3).Client().ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id.ID != before.String() {
		t.Errorf("peer ID after restart = %s, want %s", id.ID, before)
	}
	if err := tn.WaitConnected(ctx); err != nil {
		t.Fatalf("after restart: %v", err)
	}

	// A killed node is seen as dead, and comes back.
	exited := tn.Node(2).Exited()
	if err := tn.Perturb(ctx, 2, PerturbKill); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	default:
		t.Fatal("Exited channel not closed after Kill")
	}
	if tn.Node(2).ExitErr() == nil {
		t.Error("ExitErr after SIGKILL = nil")
	}
	st, err = Status(ctx, tn.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if st[2].Running || st[2].Healthy {
		t.Errorf("status of killed node = %+v, want not running", st[2])
	}
	if err := tn.StartNode(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := tn.WaitConnected(ctx); err != nil {
		t.Fatalf("after kill and start: %v", err)
	}
	if err := tn.Perturb(ctx, 2, "explode"); err == nil {
		t.Error("Perturb with an unknown perturbation succeeded")
	}
}

func TestDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 2 daemons")
	}
	tn := startTestnet(t, 2)
	pids := []int{tn.Node(0).PID(), tn.Node(1).PID()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := Down(ctx, tn.Dir()); err != nil {
		t.Fatal(err)
	}
	for i, nd := range tn.Nodes() {
		select {
		case <-nd.Exited():
		case <-ctx.Done():
			t.Fatalf("node%d (pid %d) still runs after Down", i, pids[i])
		}
		if err := nd.ExitErr(); err != nil {
			t.Errorf("node%d exit after Down = %v, want a clean exit", i, err)
		}
	}
	m, err := ReadManifest(tn.Dir())
	if err != nil {
		t.Fatal(err)
	}
	for _, mn := range m.Nodes {
		if mn.PID != 0 {
			t.Errorf("manifest after Down: %s pid %d, want 0", mn.Name, mn.PID)
		}
	}
}

func TestSetupBadInput(t *testing.T) {
	shoalBin := binary(t)
	for _, n := range []int{0, -1, 65} {
		if _, err := Setup(Options{N: n, Binary: shoalBin}); err == nil {
			t.Errorf("Setup(N=%d) succeeded", n)
		}
	}
	if _, err := Setup(Options{N: 1, Binary: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("Setup with a missing binary succeeded")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x"), nil, 0o600)
	if _, err := Setup(Options{N: 1, Binary: shoalBin, Dir: dir}); err == nil {
		t.Error("Setup in a non-empty dir succeeded")
	}
}

// BenchmarkDiscovery10 measures, for a 10-node testnet, the time from the
// start of the first daemon until every node is connected to the other 9
// ("s/mesh"; "s/all-apis-up" is the part until every API answered), and
// the memory of the idle nodes 5 s later: the largest RSS
// ("MB/idle-rss-max"), and the means of RSS, of its private part
// (RssAnon) and of PSS, which shares the binary's pages among the nodes.
func BenchmarkDiscovery10(b *testing.B) {
	// The nodes run a copy of the binary, as under shoal testnet up: how the
	// binary's pages sit in the page cache decides how many the kernel maps
	// back after the daemon drops them (see docs/performance.md).
	bin, err := CopyBinary(binary(b), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	var meshTotal, startTotal time.Duration
	var rssMax float64
	var sum Memory
	var samples int64
	for b.Loop() {
		tn, err := Setup(Options{N: 10, Dir: filepath.Join(b.TempDir(), "tn"), Binary: bin, Network: "bench", LogLevel: "warn"})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		start := time.Now()
		if err := tn.Start(ctx); err != nil {
			cancel()
			tn.Stop()
			b.Fatal(err)
		}
		startTotal += time.Since(start)
		if err := tn.WaitConnected(ctx); err != nil {
			cancel()
			tn.Stop()
			b.Fatal(err)
		}
		meshTotal += time.Since(start)
		cancel()
		b.StopTimer()
		idle := time.NewTimer(5 * time.Second)
		<-idle.C
		for _, nd := range tn.Nodes() {
			m, err := ProcessMemory(nd.PID())
			if err != nil {
				b.Fatal(err)
			}
			rssMax = max(rssMax, float64(m.RSS)/(1<<20))
			sum.RSS += m.RSS
			sum.Anon += m.Anon
			sum.PSS += m.PSS
			samples++
		}
		if err := tn.Stop(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	mb := func(v int64) float64 { return float64(v) / float64(samples) / (1 << 20) }
	b.ReportMetric(meshTotal.Seconds()/float64(b.N), "s/mesh")
	b.ReportMetric(startTotal.Seconds()/float64(b.N), "s/all-apis-up")
	b.ReportMetric(rssMax, "MB/idle-rss-max")
	b.ReportMetric(mb(sum.RSS), "MB/idle-rss-mean")
	b.ReportMetric(mb(sum.Anon), "MB/idle-anon-mean")
	b.ReportMetric(mb(sum.PSS), "MB/idle-pss-mean")
}

func TestProcessMemory(t *testing.T) {
	m, err := ProcessMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.Anon <= 0 || m.PSS <= 0 || m.Anon > m.RSS {
		t.Errorf("ProcessMemory(self) = %+v, want positive figures with Anon <= RSS", m)
	}
	if _, err := ProcessMemory(-1); err == nil {
		t.Error("ProcessMemory(-1) succeeded")
	}
}

func TestProcessCPU(t *testing.T) {
	// A child that burns CPU until killed.
	child := exec.Command("sh", "-c", "while :; do :; done")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { child.Process.Kill(); child.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := ProcessCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if c.Procs <= 0 {
			t.Fatalf("ProcessCPU(self) = %+v, want the test's own CPU time", c)
		}
		if c.Children >= 50*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the busy child shows %v of CPU after 20 s", c.Children)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := ProcessCPU(-1); err == nil {
		t.Error("ProcessCPU(-1) succeeded")
	}
}
