package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shoalnet/shoal/node/client"
)

// maxJSONBody bounds JSON request bodies; streams (uploads) are not JSON.
const maxJSONBody = 1 << 20

// maxBatchBody bounds the body of POST /v1/jobs/batch.
const maxBatchBody = 16 << 20

type apiServer struct {
	addr  string // host:port actually bound
	srv   *http.Server
	done  chan struct{}
	token string
}

// startAPI binds the API address, writes it to REPO/api and serves the
// routes until Close.
func (n *Node) startAPI(context.Context) error {
	tok, err := ReadToken(n.repo)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", n.cfg.API.Address)
	if err != nil {
		return fmt.Errorf("listen on api.address %s (is another daemon or program using it? pick another with --api or in config.toml): %w", n.cfg.API.Address, err)
	}
	mux := http.NewServeMux()
	n.registerRoutes(mux)
	a := &apiServer{
		addr:  ln.Addr().String(),
		token: tok,
		done:  make(chan struct{}),
	}
	a.srv = &http.Server{
		Handler:           n.auth(a.token, mux),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          nil,
	}
	n.api = a
	apiFile := filepath.Join(n.repo, APIFileName)
	if err := writeFileAtomic(apiFile, []byte(a.addr+"\n"), 0o600); err != nil {
		ln.Close()
		return err
	}
	go func() {
		defer close(a.done)
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("api server stopped", "err", err)
		}
	}()
	n.onClose("api", func() error {
		os.Remove(apiFile)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := a.srv.Shutdown(ctx)
		if err != nil {
			a.srv.Close()
		}
		<-a.done
		return err
	})
	return nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

// auth requires "Authorization: Bearer <token>" on every request.
func (n *Node) auth(token string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !tokenEqual(got, token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shoal"`)
			writeError(w, http.StatusUnauthorized, fmt.Errorf("missing or wrong API token; send the token of %s as: Authorization: Bearer <token>", filepath.Join(n.repo, TokenFileName)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// registerRoutes registers every area's routes, one call per area.
func (n *Node) registerRoutes(mux *http.ServeMux) {
	n.registerCoreRoutes(mux)
	n.registerCapacityRoutes(mux)
	n.registerLedgerRoutes(mux)
	n.registerJobsRoutes(mux)
	n.registerJobsNetRoutes(mux)
	n.registerBlocksRoutes(mux)
	// Areas plug in above, one line each: n.register<Area>Routes(mux).
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no API route %s %s; is the CLI newer than the daemon?", r.Method, r.URL.Path))
	})
}

func (n *Node) registerCoreRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/id", n.handleID)
	mux.HandleFunc("GET /v1/peers", n.handlePeers)
	mux.HandleFunc("GET /v1/health", n.handleHealth)
	metrics := promhttp.HandlerFor(n.metrics, promhttp.HandlerOpts{})
	mux.Handle("GET /metrics", metrics)
	mux.Handle("GET /v1/metrics", metrics)
	// Profiles for operators (behind the token like every route):
	// go tool pprof -http :0 'http://API/debug/pprof/profile?seconds=10'
	// with the header Authorization: Bearer TOKEN.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

func (n *Node) handleID(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, client.IDInfo{
		ID:        n.id.String(),
		Addrs:     n.p2pAddrs(),
		Network:   n.cfg.Network.Name,
		Version:   Version,
		APIAddr:   n.api.addr,
		StartedAt: n.started.UTC().Format(time.RFC3339),
	})
}

func (n *Node) handlePeers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, n.peers())
}

// peers returns the connected peers, sorted by ID.
func (n *Node) peers() []client.PeerInfo {
	ids := n.host.Network().Peers()
	out := make([]client.PeerInfo, 0, len(ids))
	for _, p := range ids {
		if n.host.Network().Connectedness(p) != network.Connected {
			continue
		}
		var addrs []string
		for _, c := range n.host.Network().ConnsToPeer(p) {
			addrs = append(addrs, c.RemoteMultiaddr().String())
		}
		pi := client.PeerInfo{ID: p.String(), Addrs: addrs, Member: n.disc.IsMember(p)}
		if l := n.host.Peerstore().LatencyEWMA(p); l > 0 {
			ms := float64(l.Microseconds()) / 1000
			pi.LatencyMS = &ms
		}
		out = append(out, pi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (n *Node) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, client.Health{
		OK:      true,
		ID:      n.id.String(),
		Network: n.cfg.Network.Name,
		Peers:   len(n.host.Network().Peers()),
		Uptime:  time.Since(n.started).Seconds(),
	})
}

// writeJSON writes v as the JSON body of a response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// writeError writes {"error": err.Error()} with status. The message should
// say what to do.
func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// readJSON decodes a JSON request body (at most 1 MiB, no unknown fields)
// into v, writing a 400 answer and returning false when it cannot.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	return readJSONLimit(w, r, v, maxJSONBody)
}

// readJSONLimit is readJSON for a body of at most limit bytes.
func readJSONLimit(w http.ResponseWriter, r *http.Request, v any, limit int64) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("request body is not the expected JSON: %w", err))
		return false
	}
	return true
}
