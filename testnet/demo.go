package testnet

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shoalnet/shoal/examples"
	"github.com/shoalnet/shoal/node/client"
)

// DemoMinNodes is the smallest testnet the demo runs on: its hello job
// runs on 3 distinct peers.
const DemoMinNodes = 3

// DemoDirName is the dir under the testnet dir where the demo keeps its
// modules (wasm/), its input (text/) and the files it fetches back.
const DemoDirName = "demo"

// demoExamples returns the example programs the demo runs.
func demoExamples() []string { return []string{"hello", "pi", "wordcount", "mandelbrot"} }

// maxDemoStdout bounds the stdout the demo reads back from a job.
const maxDemoStdout = 64 << 10

// maxDemoOutputFile bounds an output file the demo fetches back.
const maxDemoOutputFile = 64 << 20

// A DemoJob is one job of the demo: an example program submitted from one
// node of the testnet.
type DemoJob struct {
	Example  string   // example program, e.g. "hello"
	Node     int      // index of the node that submits it
	Args     []string // the program's arguments
	Replicas int      // distinct peers that run it
	Quorum   int      // results that must agree
	// Input, if not empty, is a local dir added to the submitting node
	// (as `shoal add -r` does) and mounted read-only at /inputs/InputName.
	Input     string
	InputName string
	// Output, if not empty, is a file under the job's /outputs that the
	// demo fetches back into OutputDir.
	Output    string
	OutputDir string
	// Timeout bounds the job from upload to verdict; 0 means 3 minutes.
	Timeout time.Duration
}

// DemoJobs returns the jobs of the demo for the testnet in dir with n
// nodes: hello from node1 on 3 replicas with a quorum of 2, pi with a
// fixed seed from node2, wordcount over dir/demo/text added on node3, and
// mandelbrot from node4, whose PNG is fetched back into dir/demo. A node
// index past n wraps around.
func DemoJobs(dir string, n int) []DemoJob {
	demo := filepath.Join(dir, DemoDirName)
	return []DemoJob{
		{Example: "hello", Node: 1 % n, Args: []string{"world"}, Replicas: 3, Quorum: 2},
		{Example: "pi", Node: 2 % n, Args: []string{"-seed", "42", "-n", "4000000"}, Replicas: 3, Quorum: 2},
		{Example: "wordcount", Node: 3 % n, Args: []string{"-top", "3"}, Replicas: 2, Quorum: 2,
			Input: filepath.Join(demo, "text"), InputName: "text"},
		{Example: "mandelbrot", Node: 4 % n, Args: []string{"-w", "480", "-h", "320", "-x", "-0.75", "-span", "3"},
			Replicas: 2, Quorum: 2, Output: "mandelbrot.png", OutputDir: demo},
	}
}

// Title returns a one-line description of j, such as
// "hello from node1 on 3 peers, quorum 2".
func (j DemoJob) Title() string {
	s := fmt.Sprintf("%s from node%d on %d peers, quorum %d", j.Example, j.Node, j.Replicas, j.Quorum)
	if j.Input != "" {
		s += ", input " + j.InputName
	}
	return s
}

// A DemoResult is what one demo job did.
type DemoResult struct {
	Job        DemoJob
	ID         string   // job ID
	Submitter  string   // node name
	Workers    []string // node names (or peer IDs of nodes not in the testnet) of the results
	State      string   // done, failed or cancelled
	Verdict    string   // verified, mismatch or failed
	Reason     string   // the verdict's or the failure's reason
	Stdout     string   // the agreed stdout (at most 64 KiB)
	OutputFile string   // the fetched output file, when the job has one
	Took       time.Duration
}

// A DemoPlan is what [PrepareDemo] made ready: modules and jobs.
type DemoPlan struct {
	Dir     string            // DIR/demo
	Modules map[string]string // example name → path of its .wasm module
	Jobs    []DemoJob
}

// DemoOptions configure [PrepareDemo] and [RunDemo].
type DemoOptions struct {
	// Modules, if not empty, is a dir of prebuilt modules NAME.wasm (as
	// `make -C examples` writes to examples/build); otherwise the examples
	// are built with the go command into DIR/demo/wasm.
	Modules string
	// Out receives the demo's progress; nil means io.Discard.
	Out io.Writer
}

// PrepareDemo makes the demo's files in DIR/demo: the example modules
// (built, or checked in opts.Modules) and the text files wordcount reads.
func PrepareDemo(ctx context.Context, tn *Testnet, opts DemoOptions) (*DemoPlan, error) {
	if tn.N() < DemoMinNodes {
		return nil, fmt.Errorf("testnet: the demo needs at least %d nodes (hello runs on 3 distinct peers); this testnet has %d: start one with -n 5", DemoMinNodes, tn.N())
	}
	demo := filepath.Join(tn.Dir(), DemoDirName)
	p := &DemoPlan{Dir: demo, Jobs: DemoJobs(tn.Dir(), tn.N())}
	var err error
	if opts.Modules != "" {
		p.Modules, err = PrebuiltExamples(opts.Modules, demoExamples())
	} else {
		p.Modules, err = BuildExamples(ctx, filepath.Join(demo, "wasm"), demoExamples())
	}
	if err != nil {
		return nil, err
	}
	if err := WriteDemoText(filepath.Join(demo, "text")); err != nil {
		return nil, err
	}
	return p, nil
}

// BuildExamples builds the example programs names for wasip1/wasm into dir
// with the go command, which must be installed, and returns the path of
// each module by name.
func BuildExamples(ctx context.Context, dir string, names []string) (map[string]string, error) {
	if err := CanBuildExamples(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("testnet: create %s: %w", dir, err)
	}
	out := make(map[string]string, len(names))
	for _, name := range names {
		p, err := examples.Build(ctx, dir, name, false)
		if err != nil {
			return nil, fmt.Errorf("testnet: build the %s example with GOOS=wasip1 GOARCH=wasm (needs Go 1.21 or later): %w", name, err)
		}
		out[name] = p
	}
	return out, nil
}

// CanBuildExamples reports, as an error that says what to do, why
// [BuildExamples] cannot run here: the go command is not on PATH, or the
// example sources this binary was built from are not on this machine.
func CanBuildExamples() error {
	if _, err := exec.LookPath("go"); err != nil {
		return errors.New("testnet: the demo builds its WebAssembly programs with the go command, which is not on PATH: install Go (https://go.dev/dl/), or pass prebuilt modules with --modules DIR (make -C examples writes them to examples/build)")
	}
	if _, err := os.Stat(filepath.Join(examples.Dir(), "hello", "main.go")); err != nil {
		return fmt.Errorf("testnet: the example sources are not at %s (this binary was built elsewhere): run the demo from the Shoal source tree (go run ./cmd/shoal testnet up --demo), or pass prebuilt modules with --modules DIR", examples.Dir())
	}
	return nil
}

// PrebuiltExamples returns the path of dir/NAME.wasm for each of names,
// checking that each is a WebAssembly module.
func PrebuiltExamples(dir string, names []string) (map[string]string, error) {
	out := make(map[string]string, len(names))
	for _, name := range names {
		p := filepath.Join(dir, name+".wasm")
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("testnet: prebuilt module %s: %w; build the examples with: make -C examples (it writes examples/build/NAME.wasm)", p, err)
		}
		magic := make([]byte, 4)
		_, err = io.ReadFull(f, magic)
		f.Close()
		if err != nil || !bytes.Equal(magic, []byte("\x00asm")) {
			return nil, fmt.Errorf("testnet: %s is not a WebAssembly module; rebuild it with: make -C examples %s (it writes examples/build/%s.wasm)", p, name, name)
		}
		out[name] = p
	}
	return out, nil
}

// demoText returns the input of the demo's wordcount job, file name → content.
func demoText() map[string]string {
	return map[string]string{
		"shoal.txt": `A shoal is a group of fish that stay together.
Shoal is a network of peers that compute together.
Each peer offers its spare cores, runs jobs for the others in a sandbox,
and signs what it computed, so that the others can check it.
`,
		"jobs.txt": `A job is a WebAssembly program and its inputs, named by their CIDs.
The submitter asks several peers to run the job, and each peer commits
to its result before any result is revealed. When enough results agree,
the job is verified; when they do not, the job is a mismatch.
`,
		"ledger.txt": `Every peer keeps a ledger: an append-only log of what it did,
each entry signed and linked to the one before it by its hash.
Any peer can fetch another's ledger and verify every signature and every link,
and two entries that disagree are a proof that can be shown to everyone.
`,
	}
}

// WriteDemoText writes the demo's text files into dir, which it creates.
func WriteDemoText(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("testnet: create %s: %w", dir, err)
	}
	for name, text := range demoText() {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			return fmt.Errorf("testnet: write demo text: %w", err)
		}
	}
	return nil
}

// WaitCapacity polls until every running node's capacity view holds an
// advert of every running node, so that submitters can pick workers.
func (tn *Testnet) WaitCapacity(ctx context.Context) error {
	return tn.WaitFor(ctx, 50*time.Millisecond, func(ctx context.Context) (bool, string, error) {
		var running []*Node
		for _, nd := range tn.Nodes() {
			if nd.Running() {
				running = append(running, nd)
			}
		}
		for _, nd := range running {
			c := nd.Client()
			if c == nil {
				return false, nd.Name + " has no API", nil
			}
			view, err := c.Capacity(ctx)
			if err != nil {
				return false, fmt.Sprintf("%s: %v", nd.Name, err), nil
			}
			have := make(map[string]bool, len(view))
			for _, e := range view {
				have[e.ID] = true
			}
			for _, o := range running {
				if !have[o.PeerID.String()] {
					return false, fmt.Sprintf("%s has no capacity advert of %s yet", nd.Name, o.Name), nil
				}
			}
		}
		return true, "", nil
	})
}

// nodeName returns the name of the testnet node with peer ID id, or id
// itself when no node has it.
func (tn *Testnet) nodeName(id string) string {
	for _, nd := range tn.Nodes() {
		if nd.PeerID.String() == id {
			return nd.Name
		}
	}
	return id
}

// RunDemoJob uploads j's module (and adds its input) on node j.Node,
// submits the job there, waits for its verdict, and reads back its stdout
// and its output file. A job that ends but does not succeed is returned
// with an error that says where to look.
func (tn *Testnet) RunDemoJob(ctx context.Context, modules map[string]string, j DemoJob) (DemoResult, error) {
	res := DemoResult{Job: j}
	if j.Node < 0 || j.Node >= tn.N() {
		return res, fmt.Errorf("testnet: demo job %s: node%d is not in this %d-node testnet", j.Example, j.Node, tn.N())
	}
	nd := tn.Node(j.Node)
	res.Submitter = nd.Name
	c := nd.Client()
	if c == nil {
		return res, fmt.Errorf("testnet: %s does not run; see %s", nd.Name, filepath.Join(nd.Repo, LogFileName))
	}
	timeout := j.Timeout
	if timeout <= 0 {
		timeout = 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	modPath, ok := modules[j.Example]
	if !ok {
		return res, fmt.Errorf("testnet: no module for example %s", j.Example)
	}
	req := client.JobRequest{Args: j.Args, Replicas: j.Replicas, Quorum: j.Quorum}
	var err error
	if req.Module, err = uploadFile(ctx, c, modPath); err != nil {
		return res, fmt.Errorf("testnet: upload %s to %s: %w", modPath, nd.Name, err)
	}
	if j.Input != "" {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(client.WriteInputTar(pw, j.Input)) }()
		added, err := c.AddTar(ctx, pr, filepath.Base(j.Input))
		pr.Close()
		if err != nil {
			return res, fmt.Errorf("testnet: add %s on %s: %w", j.Input, nd.Name, err)
		}
		req.Inputs = map[string]string{j.InputName: added.CID}
	}

	start := time.Now()
	info, err := c.SubmitJob(ctx, req)
	if err != nil {
		return res, fmt.Errorf("testnet: submit %s on %s: %w", j.Example, nd.Name, err)
	}
	res.ID = info.Job
	for !info.Terminal() {
		next, err := c.WaitJob(ctx, info.Job, info.Version, 30*time.Second)
		if err != nil {
			why := info.State
			if info.Blocker != "" {
				why += ": " + info.Blocker
			}
			if ctx.Err() != nil {
				return res, fmt.Errorf("testnet: job %s (%s) did not finish within %s (last state %s); see: shoal --repo %s job status %s",
					info.Job, j.Example, timeout, why, nd.Repo, info.Job)
			}
			return res, fmt.Errorf("testnet: waiting for job %s (%s, last state %s) on %s: %w; see %s",
				info.Job, j.Example, why, nd.Name, err, filepath.Join(nd.Repo, LogFileName))
		}
		info = next
	}
	res.Took = time.Since(start)
	res.State, res.Verdict, res.Reason = info.State, info.Verdict, info.Reason
	seen := map[string]bool{}
	for _, r := range info.Results {
		if !seen[r.Worker] {
			seen[r.Worker] = true
			res.Workers = append(res.Workers, tn.nodeName(r.Worker))
		}
	}
	if info.State != "done" {
		what := info.State
		if info.Verdict != "" {
			what = "verdict " + info.Verdict
		}
		if info.Failure != "" {
			what += " (" + info.Failure + ")"
		}
		return res, fmt.Errorf("testnet: job %s (%s) ended with %s: %s; see: shoal --repo %s job status %s, and the daemon logs %s",
			info.Job, j.Example, what, info.Reason, nd.Repo, info.Job, filepath.Join(tn.Dir(), "node*", LogFileName))
	}
	if res.Stdout, err = readStdout(ctx, c, info.Job); err != nil {
		return res, fmt.Errorf("testnet: read the stdout of job %s from %s: %w", info.Job, nd.Name, err)
	}
	if j.Output != "" {
		if res.OutputFile, err = fetchOutput(ctx, c, info.Job, j.Output, j.OutputDir); err != nil {
			return res, fmt.Errorf("testnet: fetch %s of job %s from %s: %w", j.Output, info.Job, nd.Name, err)
		}
	}
	return res, nil
}

func uploadFile(ctx context.Context, c *client.Client, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return c.UploadJobPayload(ctx, f, false)
}

func readStdout(ctx context.Context, c *client.Client, id string) (string, error) {
	rc, err := c.JobLog(ctx, id, "stdout")
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxDemoStdout))
	return string(b), err
}

// fetchOutput reads the job's /outputs as a tar stream and writes the
// regular file name of it to dir/name.
func fetchOutput(ctx context.Context, c *client.Client, id, name, dir string) (string, error) {
	rc, err := c.JobOutputs(ctx, id)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return "", fmt.Errorf("the job wrote no /outputs/%s", name)
		}
		if err != nil {
			return "", fmt.Errorf("read outputs: %w", err)
		}
		if path.Clean(h.Name) != name || h.Typeflag != tar.TypeReg {
			continue
		}
		if h.Size < 0 || h.Size > maxDemoOutputFile {
			return "", fmt.Errorf("/outputs/%s is %d bytes; the demo takes at most %d", name, h.Size, maxDemoOutputFile)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", err
		}
		dst := filepath.Join(dir, filepath.Base(name))
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return "", err
		}
		_, err = io.CopyN(f, tr, h.Size)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", fmt.Errorf("write %s: %w", dst, err)
		}
		return dst, nil
	}
}

// A LedgerCheck is one node's verification of another node's ledger.
type LedgerCheck struct {
	Verifier string // node name
	Subject  string // node name
	Report   client.LedgerReport
	// Kinds counts the entries of the verified ledger by kind (e.g.
	// "job.executed"), as the verifier fetched them (at most
	// maxDemoLedgerEntries); nil when the ledger does not verify.
	Kinds map[string]int
}

// maxDemoLedgerEntries bounds the entries VerifyLedgers reads to count kinds.
const maxDemoLedgerEntries = 4096

// VerifyLedgers has node verifier fetch and verify the ledger of every
// other running node (as `shoal ledger verify --peer` does) and count the
// kinds of its entries. A ledger that fails verification is reported in
// its check, not as an error; the error is for a check that could not run.
// The checks are in node order.
func (tn *Testnet) VerifyLedgers(ctx context.Context, verifier int) ([]LedgerCheck, error) {
	v := tn.Node(verifier)
	c := v.Client()
	if c == nil {
		return nil, fmt.Errorf("testnet: %s does not run; see %s", v.Name, filepath.Join(v.Repo, LogFileName))
	}
	nodes := tn.Nodes()
	checks := make([]*LedgerCheck, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, nd := range nodes {
		if nd == v || !nd.Running() {
			continue
		}
		wg.Go(func() {
			id := nd.PeerID.String()
			rep, err := c.LedgerVerify(ctx, id)
			if err != nil {
				errs[i] = fmt.Errorf("testnet: %s could not verify the ledger of %s: %w", v.Name, nd.Name, err)
				return
			}
			ch := &LedgerCheck{Verifier: v.Name, Subject: nd.Name, Report: rep}
			checks[i] = ch
			if !rep.OK || rep.Entries == 0 {
				return
			}
			ch.Kinds = map[string]int{}
			for from := uint64(0); from < min(rep.Entries, maxDemoLedgerEntries); {
				es, err := c.LedgerEntries(ctx, id, from, maxDemoLedgerEntries)
				if err != nil {
					errs[i] = fmt.Errorf("testnet: %s could not read the ledger of %s: %w", v.Name, nd.Name, err)
					return
				}
				if len(es) == 0 {
					break
				}
				for _, e := range es {
					ch.Kinds[e.Kind]++
				}
				from += uint64(len(es))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var out []LedgerCheck
	for _, ch := range checks {
		if ch != nil {
			out = append(out, *ch)
		}
	}
	return out, nil
}

// A DemoError is the failure of one stage of [RunDemo].
type DemoError struct {
	Stage string // "prepare", "capacity", "job 2 (pi)", "ledgers"
	Err   error  // what went wrong and what to do
}

func (e *DemoError) Error() string { return fmt.Sprintf("testnet: demo stage %s: %v", e.Stage, e.Err) }

func (e *DemoError) Unwrap() error { return e.Err }

// A DemoReport is what [RunDemo] did.
type DemoReport struct {
	Plan    *DemoPlan
	Results []DemoResult
	Ledgers []LedgerCheck
}

// RunDemo shows what Shoal is for on a started testnet whose nodes see
// each other, writing its progress to opts.Out. It runs the demo's
// stages, each a plain function of its own: it prepares the modules
// and input, waits until every node knows every node's capacity, runs
// each job of [DemoJobs] in turn, and has node0 verify the other nodes'
// ledgers. It stops at the first failed stage with a [*DemoError] that
// names the stage and says what to do; a ledger that does not verify is
// such a failure.
func RunDemo(ctx context.Context, tn *Testnet, opts DemoOptions) (*DemoReport, error) {
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	rep := &DemoReport{}
	how := "building the example programs (GOOS=wasip1 GOARCH=wasm go build)"
	if opts.Modules != "" {
		how = "using the prebuilt modules in " + opts.Modules
	}
	fmt.Fprintf(out, "demo: %s...\n", how)
	t0 := time.Now()
	plan, err := PrepareDemo(ctx, tn, opts)
	if err != nil {
		return rep, &DemoError{Stage: "prepare", Err: err}
	}
	rep.Plan = plan
	fmt.Fprintf(out, "demo: %d modules ready in %s (%.1fs)\n", len(plan.Modules), filepath.Dir(plan.Modules["hello"]), time.Since(t0).Seconds())
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = tn.WaitCapacity(wctx)
	cancel()
	if err != nil {
		return rep, &DemoError{Stage: "capacity", Err: fmt.Errorf("testnet: the nodes did not all learn each other's capacity within a minute (logs: %s): %w",
			filepath.Join(tn.Dir(), "node*", LogFileName), err)}
	}
	fmt.Fprintf(out, "demo: every node knows the job slots of all %d nodes\n", tn.N())
	for i, j := range plan.Jobs {
		fmt.Fprintf(out, "\n[%d/%d] %s\n", i+1, len(plan.Jobs), j.Title())
		res, err := tn.RunDemoJob(ctx, plan.Modules, j)
		rep.Results = append(rep.Results, res)
		if err != nil {
			return rep, &DemoError{Stage: fmt.Sprintf("job %d (%s)", i+1, j.Example), Err: err}
		}
		PrintDemoResult(out, res)
	}
	fmt.Fprintf(out, "\n(each time includes the workers compiling the module on its first run there; run a job again to see it warm)\n")
	fmt.Fprintf(out, "\nledgers, each fetched and checked by node0 (every signature, every prev link, the tree against the newest checkpoint):\n")
	checks, err := tn.VerifyLedgers(ctx, 0)
	rep.Ledgers = checks
	if err != nil {
		return rep, &DemoError{Stage: "ledgers", Err: err}
	}
	PrintLedgerChecks(out, checks)
	for _, ch := range checks {
		if !ch.Report.OK {
			return rep, &DemoError{Stage: "ledgers", Err: fmt.Errorf("testnet: the ledger of %s does not verify: %s; see: shoal --repo %s ledger verify --peer %s",
				ch.Subject, ch.Report.Reason, tn.Node(0).Repo, tn.peerIDOf(ch.Subject))}
		}
	}
	return rep, nil
}

func (tn *Testnet) peerIDOf(name string) string {
	for _, nd := range tn.Nodes() {
		if nd.Name == name {
			return nd.PeerID.String()
		}
	}
	return name
}

// maxStdoutLines is how many lines of a job's stdout PrintDemoResult shows.
const maxStdoutLines = 4

// PrintDemoResult writes r as a few indented lines: job ID, workers,
// verdict, the first lines of stdout, the fetched file and the time taken.
func PrintDemoResult(w io.Writer, r DemoResult) {
	fmt.Fprintf(w, "      job      %s  (args: %s)\n", r.ID, strings.Join(r.Job.Args, " "))
	fmt.Fprintf(w, "      workers  %s\n", strings.Join(r.Workers, ", "))
	verdict := r.Verdict
	if verdict == "" {
		verdict = r.State
	}
	if r.Reason != "" {
		verdict += ": " + r.Reason
	}
	fmt.Fprintf(w, "      verdict  %s\n", verdict)
	sc := bufio.NewScanner(strings.NewReader(r.Stdout))
	label := "stdout"
	for n := 0; sc.Scan(); n++ {
		if n == maxStdoutLines {
			fmt.Fprintf(w, "               …\n")
			break
		}
		fmt.Fprintf(w, "      %-8s %s\n", label, sc.Text())
		label = ""
	}
	if r.OutputFile != "" {
		fmt.Fprintf(w, "      fetched  %s%s\n", r.OutputFile, pngSize(r.OutputFile))
	}
	fmt.Fprintf(w, "      took     %.2fs from submission to verdict\n", r.Took.Seconds())
}

// pngSize returns " (W×H PNG)" for a PNG file, else "".
func pngSize(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		return ""
	}
	return fmt.Sprintf(" (%d×%d PNG)", cfg.Width, cfg.Height)
}

// PrintLedgerChecks writes one line per check.
func PrintLedgerChecks(w io.Writer, checks []LedgerCheck) {
	for _, ch := range checks {
		r := ch.Report
		switch {
		case r.OK && r.Entries == 0:
			fmt.Fprintf(w, "  %-6s ok      empty: no entries recorded yet\n", ch.Subject)
			continue
		case r.OK:
			fmt.Fprintf(w, "  %-6s ok      %d entries%s, checkpoint of %d entries, root %s\n", ch.Subject, r.Entries, kindsText(ch.Kinds), r.CheckpointSize, r.Root)
			continue
		}
		where := "the ledger"
		if r.BadSeq != nil {
			where = fmt.Sprintf("entry %d", *r.BadSeq)
		}
		fmt.Fprintf(w, "  %-6s FAILED  %s: %s\n", ch.Subject, where, r.Reason)
	}
}

// kindsText returns " (2 job.executed, 1 job.submitted)" for kinds, or "".
func kindsText(kinds map[string]int) string {
	if len(kinds) == 0 {
		return ""
	}
	names := slices.Sorted(maps.Keys(kinds))
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%d %s", kinds[k], k)
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// PrintDemoHints writes the commands that continue the demo by hand.
// shoal is how to run the shoal command, e.g. "shoal" or "go run ./cmd/shoal".
func PrintDemoHints(w io.Writer, tn *Testnet, plan *DemoPlan, shoal string) {
	n := tn.N()
	sub := tn.Node(min(3, n-1))
	led := tn.Node(1)
	fmt.Fprintf(w, "\ncontinue by hand (the nodes keep running):\n")
	if plan != nil {
		fmt.Fprintf(w, "  %s --repo %s job run %s --replicas 3 -- again\n", shoal, sub.Repo, plan.Modules["hello"])
		fmt.Fprintf(w, "  %s --repo %s job run %s --input text=%s -- -top 5\n", shoal, sub.Repo, plan.Modules["wordcount"], filepath.Join(plan.Dir, "text"))
	}
	fmt.Fprintf(w, "  %s --repo %s peers --capacity\n", shoal, sub.Repo)
	fmt.Fprintf(w, "  %s --repo %s job list\n", shoal, led.Repo)
	fmt.Fprintf(w, "  %s --repo %s ledger show\n", shoal, led.Repo)
	fmt.Fprintf(w, "  %s --repo %s ledger verify --peer %s\n", shoal, tn.Node(0).Repo, led.PeerID)
	fmt.Fprintf(w, "  %s testnet status --dir %s\n", shoal, tn.Dir())
}
