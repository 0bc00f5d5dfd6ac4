package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/node/blocks"
	"github.com/shoalnet/shoal/node/client"
)

// BlocksConfig is the [blocks] table.
type BlocksConfig struct {
	FetchTimeout      Duration `toml:"fetch_timeout" comment:"How long fetching a CID may go without receiving a block from any peer before it fails with \"no provider found\". Default \"30s\"."`
	ReprovideInterval Duration `toml:"reprovide_interval" comment:"How often the roots of pinned content are announced in the DHT again; \"0s\" disables reproviding. Default \"12h\"."`
	SizeCapMB         uint64   `toml:"size_cap_mb" comment:"When stored blocks exceed this many MiB, unpinned blocks are garbage-collected automatically (at most once a minute); 0 disables. Default 0."`
	MaxDAGStreams     int      `toml:"max_dag_streams" comment:"Most DAG streams (/shoal/dag/1.0.0) this node serves to peers at once; more are answered \"busy\". Default 32."`
}

// DefaultBlocksConfig returns the defaults of the [blocks] table.
func DefaultBlocksConfig() BlocksConfig {
	return BlocksConfig{
		FetchTimeout:      Duration(blocks.DefaultFetchTimeout),
		ReprovideInterval: Duration(blocks.DefaultReprovideInterval),
		MaxDAGStreams:     blocks.DefaultMaxDAGStreams,
	}
}

// Validate checks the [blocks] table.
func (c *BlocksConfig) Validate() error {
	if c.FetchTimeout <= 0 || c.FetchTimeout.Std() > time.Hour {
		return fmt.Errorf("config: blocks.fetch_timeout = %s; want more than 0 and at most 1h, e.g. \"30s\"", c.FetchTimeout.Std())
	}
	if r := c.ReprovideInterval.Std(); r != 0 && (r < time.Minute || r > 48*time.Hour) {
		return fmt.Errorf("config: blocks.reprovide_interval = %s; want \"0s\" (off) or 1m to 48h, e.g. \"12h\"", r)
	}
	if c.SizeCapMB > 1<<30 {
		return fmt.Errorf("config: blocks.size_cap_mb = %d; want at most %d (1 PiB), or 0 for no cap", c.SizeCapMB, 1<<30)
	}
	if c.MaxDAGStreams < 1 || c.MaxDAGStreams > 1024 {
		return fmt.Errorf("config: blocks.max_dag_streams = %d; want 1 to 1024", c.MaxDAGStreams)
	}
	return nil
}

// BlocksDirName is the directory of the repo that holds payload blocks of
// 32 KiB and more, in pack files.
const BlocksDirName = "blocks"

// startBlocks starts the payload service: the blockstore in the datastore
// namespace /payloads and the repo directory blocks/ (large blocks, in packs), bitswap and the DAG stream protocol on the host, and
// providing through the DHT. (Not /blocks: boxo's blockstore adds its own
// /blocks prefix, and go-datastore's nested namespaces fail to list keys
// under two equal adjacent prefixes such as /blocks/blocks.)
func (n *Node) startBlocks(ctx context.Context) error {
	c := n.cfg.Blocks
	svc, err := blocks.New(ctx, n.host, n.Namespace("payloads"), n.DHT(),
		blocks.WithFetchTimeout(c.FetchTimeout.Std()),
		blocks.WithReprovideInterval(c.ReprovideInterval.Std()),
		blocks.WithSizeCap(c.SizeCapMB<<20),
		blocks.WithMaxDAGStreams(c.MaxDAGStreams),
		blocks.WithBlockDir(filepath.Join(n.repo, BlocksDirName)),
		blocks.WithLogger(n.log.With("subsystem", "blocks")),
	)
	if err != nil {
		return err
	}
	n.blocks = svc
	n.onClose("blocks", svc.Close)
	return nil
}

// Blocks returns the node's payload service: add, open, fetch, pin and
// garbage-collect content-addressed blocks.
func (n *Node) Blocks() *blocks.Service { return n.blocks }

func (n *Node) registerBlocksRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/add", n.handleAdd)
	mux.HandleFunc("GET /v1/cat/{cid}", n.handleCat)
	mux.HandleFunc("GET /v1/get/{cid}", n.handleGet)
	mux.HandleFunc("POST /v1/gc", n.handleGC)
	mux.HandleFunc("GET /v1/blocks/stat", n.handleBlockStat)
	mux.HandleFunc("GET /v1/pins", n.handlePins)
	mux.HandleFunc("POST /v1/pins/{cid}", n.handlePin)
	mux.HandleFunc("DELETE /v1/pins/{cid}", n.handleUnpin)
}

// blocksStatus maps an error of package blocks to an HTTP status.
func blocksStatus(err error) int {
	switch {
	case errors.Is(err, blocks.ErrNoProvider):
		return http.StatusGatewayTimeout
	case errors.Is(err, blocks.ErrNotFile), errors.Is(err, blocks.ErrBadBlock):
		return http.StatusBadRequest
	case errors.Is(err, blocks.ErrNotPinned):
		return http.StatusNotFound
	case errors.Is(err, context.Canceled):
		return 499 // client closed the request
	}
	return http.StatusInternalServerError
}

// pathCID parses the {cid} path value, writing a 400 answer when it is not
// a supported CID.
func pathCID(w http.ResponseWriter, r *http.Request) (cid.Cid, bool) {
	s := r.PathValue("cid")
	c, err := cid.Decode(s)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("%q is not a CID (%v); CIDs look like bafy... or Qm...", s, err))
		return cid.Undef, false
	}
	if err := blocks.ValidateCID(c); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return cid.Undef, false
	}
	return c, true
}

// handleAdd imports the raw request body as one file, or as a directory
// tree when ?format=tar.
func (n *Node) handleAdd(w http.ResponseWriter, r *http.Request) {
	var (
		c    cid.Cid
		size uint64
		err  error
	)
	switch f := r.URL.Query().Get("format"); f {
	case "", "raw":
		c, size, err = n.blocks.AddReader(r.Context(), r.Body)
	case "tar":
		c, size, err = n.blocks.AddTar(r.Context(), r.Body)
	default:
		writeError(w, http.StatusBadRequest, fmt.Errorf("format=%q; want raw (a file, the default) or tar (a directory tree)", f))
		return
	}
	if err != nil {
		writeError(w, blocksStatus(err), fmt.Errorf("add failed, nothing was added: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, client.AddResult{CID: c.String(), Size: size, Name: r.URL.Query().Get("name")})
}

// handleCat streams a UnixFS file with its Content-Length.
func (n *Node) handleCat(w http.ResponseWriter, r *http.Request) {
	c, ok := pathCID(w, r)
	if !ok {
		return
	}
	n.serveFile(w, r, c)
}

func (n *Node) serveFile(w http.ResponseWriter, r *http.Request, c cid.Cid) {
	rc, size, err := n.blocks.Open(r.Context(), c)
	if err != nil {
		writeError(w, blocksStatus(err), err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatUint(size, 10))
	w.Header().Set("X-Shoal-Kind", string(blocks.KindFile))
	w.Header().Set("X-Shoal-Size", strconv.FormatUint(size, 10))
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil {
		n.log.Debug("streaming a file stopped", "subsystem", "blocks", "cid", c, "err", err)
		// The status is sent: cut the connection so the client sees a
		// short body, never a silently truncated file.
		panic(http.ErrAbortHandler)
	}
}

// handleGet streams a UnixFS file (as cat) or a directory as a tar stream.
func (n *Node) handleGet(w http.ResponseWriter, r *http.Request) {
	c, ok := pathCID(w, r)
	if !ok {
		return
	}
	kind, _, err := n.blocks.KindOf(r.Context(), c)
	if err != nil {
		writeError(w, blocksStatus(err), err)
		return
	}
	if kind == blocks.KindFile {
		n.serveFile(w, r, c)
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("X-Shoal-Kind", string(blocks.KindDirectory))
	w.WriteHeader(http.StatusOK)
	if err := n.blocks.WriteTar(r.Context(), c, "", w); err != nil {
		n.log.Debug("streaming a directory stopped", "subsystem", "blocks", "cid", c, "err", err)
		panic(http.ErrAbortHandler)
	}
}

func (n *Node) handleGC(w http.ResponseWriter, r *http.Request) {
	removed, freed, err := n.blocks.GC(r.Context())
	if err != nil {
		writeError(w, blocksStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, client.GCResult{Removed: removed, Freed: freed})
}

func (n *Node) handleBlockStat(w http.ResponseWriter, r *http.Request) {
	st, err := n.blocks.Stat(r.Context())
	if err != nil {
		writeError(w, blocksStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, client.BlockStat{
		Blocks: st.Blocks, Bytes: st.Bytes, Pins: st.Pins, DiskUsage: st.DiskUsage, SizeCap: st.SizeCap,
	})
}

func (n *Node) handlePins(w http.ResponseWriter, r *http.Request) {
	pins, err := n.blocks.Pins(r.Context())
	if err != nil {
		writeError(w, blocksStatus(err), err)
		return
	}
	out := make([]client.PinInfo, len(pins))
	for i, p := range pins {
		out[i] = client.PinInfo{CID: p.CID.String(), Created: p.Created}
	}
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handlePin(w http.ResponseWriter, r *http.Request) {
	c, ok := pathCID(w, r)
	if !ok {
		return
	}
	if err := n.blocks.Pin(r.Context(), c); err != nil {
		writeError(w, blocksStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, client.PinInfo{CID: c.String(), Created: time.Now().UTC()})
}

func (n *Node) handleUnpin(w http.ResponseWriter, r *http.Request) {
	c, ok := pathCID(w, r)
	if !ok {
		return
	}
	if err := n.blocks.Unpin(r.Context(), c); err != nil {
		writeError(w, blocksStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"unpinned": c.String()})
}
