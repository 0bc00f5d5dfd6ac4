// Package client implements the Go client of a Shoal node's HTTP+JSON API,
// which the shoal CLI and the testnet use. A Client finds the daemon
// through its repo dir: REPO/api holds the address the API bound, and
// REPO/api-token the bearer token.
//
// Each area of the API adds its calls in its own file of this package
// (blocks.go, jobs.go, ...) on top of [Client.Do] and [Client.Stream].
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Repo file names the client reads; they match package node.
const (
	apiFileName   = "api"
	tokenFileName = "api-token"
	maxErrorBody  = 64 << 10
	maxSmallFile  = 4 << 10
)

// ErrNoDaemon is returned (wrapped) when no daemon answers for the repo.
var ErrNoDaemon = errors.New("no shoal daemon is running")

// An APIError is a non-2xx answer of the API.
type APIError struct {
	Status  int    // HTTP status code
	Message string // the "error" field of the body
}

func (e *APIError) Error() string {
	return fmt.Sprintf("shoal daemon: %s (HTTP %d)", e.Message, e.Status)
}

// A Client talks to one daemon. It is safe for concurrent use.
type Client struct {
	repo  string
	base  string // "http://host:port"
	token string
	hc    *http.Client
}

// New returns a client of the daemon that runs on the repo in repoDir. It
// fails with an error wrapping ErrNoDaemon, saying how to start one, when
// the repo has no running daemon.
func New(repoDir string) (*Client, error) {
	if _, err := os.Stat(filepath.Join(repoDir, "config.toml")); err != nil {
		return nil, fmt.Errorf("%s is not a shoal repo (no config.toml); create one with: shoal init --repo %s", repoDir, repoDir)
	}
	addr, err := readSmall(filepath.Join(repoDir, apiFileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, noDaemon(repoDir)
	}
	if err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("%s holds %q, not host:port; restart the daemon: shoal daemon --repo %s", filepath.Join(repoDir, apiFileName), addr, repoDir)
	}
	tok, err := readSmall(filepath.Join(repoDir, tokenFileName))
	if err != nil {
		return nil, fmt.Errorf("read api token: %w", err)
	}
	return NewWithToken(repoDir, addr, tok), nil
}

// NewWithToken returns a client of the API at addr (host:port) using
// token. repoDir only names the repo in error messages and may be empty.
func NewWithToken(repoDir, addr, token string) *Client {
	return &Client{
		repo:  repoDir,
		base:  "http://" + addr,
		token: token,
		hc: &http.Client{Transport: &http.Transport{
			Proxy:               nil, // the API is local; never go through a proxy
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
		}},
	}
}

// Addr returns the host:port of the API.
func (c *Client) Addr() string { return strings.TrimPrefix(c.base, "http://") }

func readSmall(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSmallFile))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func noDaemon(repo string) error {
	return fmt.Errorf("%w for repo %s; start one with: shoal daemon --repo %s", ErrNoDaemon, repo, repo)
}

// Do sends a JSON request (in, unless nil) and decodes the JSON answer into
// out (unless nil). A non-2xx answer is an *APIError.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
		ct = "application/json"
	}
	resp, err := c.Stream(ctx, method, path, body, ct)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
	}
	return nil
}

// Stream sends body (may be nil) with contentType and returns the raw
// answer for streaming. A non-2xx answer is returned as an *APIError with
// the body closed; on success the caller must close resp.Body.
func (c *Client) Stream(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("build %s %s request: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
			return nil, noDaemon(c.repo)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, ctx.Err())
		}
		return nil, fmt.Errorf("%s %s on %s: %w", method, path, c.Addr(), err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return nil, &APIError{Status: resp.StatusCode, Message: msg}
	}
	return resp, nil
}
