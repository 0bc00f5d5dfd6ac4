package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// AddResult is the answer of POST /v1/add.
type AddResult struct {
	CID  string `json:"cid"`  // root CID (CIDv1, as `ipfs add --cid-version=1` prints)
	Size uint64 `json:"size"` // file bytes imported
	Name string `json:"name,omitempty"`
}

// GCResult is the answer of POST /v1/gc.
type GCResult struct {
	Removed int    `json:"removed"` // blocks removed
	Freed   uint64 `json:"freed"`   // bytes of blocks removed
}

// BlockStat is the answer of GET /v1/blocks/stat.
type BlockStat struct {
	Blocks    int    `json:"blocks"`     // blocks stored
	Bytes     uint64 `json:"bytes"`      // sum of block sizes
	Pins      int    `json:"pins"`       // pinned roots
	DiskUsage uint64 `json:"disk_usage"` // datastore size on disk (all node data), 0 if unknown
	SizeCap   uint64 `json:"size_cap"`   // automatic GC threshold, 0 for none
}

// PinInfo is one element of the answer of GET /v1/pins.
type PinInfo struct {
	CID     string    `json:"cid"`
	Created time.Time `json:"created"`
}

// Content is a UnixFS root being downloaded by Get.
type Content struct {
	// Kind is "file" (Body is the file's bytes, Size its length) or
	// "directory" (Body is a tar stream of the tree, Size is -1).
	Kind string
	Size int64
	Body io.ReadCloser // the caller must close it
}

// Add uploads r as one file (streamed, never buffered whole) and returns
// its CID; the daemon pins it. name is only echoed back.
func (c *Client) Add(ctx context.Context, r io.Reader, name string) (AddResult, error) {
	return c.add(ctx, "/v1/add?name="+url.QueryEscape(name), r, "application/octet-stream")
}

// AddTar uploads a directory tree as a tar stream (entries relative to the
// tree's root) and returns the directory's CID; the daemon pins it.
func (c *Client) AddTar(ctx context.Context, r io.Reader, name string) (AddResult, error) {
	return c.add(ctx, "/v1/add?format=tar&name="+url.QueryEscape(name), r, "application/x-tar")
}

func (c *Client) add(ctx context.Context, path string, r io.Reader, ct string) (AddResult, error) {
	resp, err := c.Stream(ctx, http.MethodPost, path, r, ct)
	if err != nil {
		return AddResult{}, err
	}
	defer resp.Body.Close()
	var v AddResult
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return AddResult{}, fmt.Errorf("decode answer of POST /v1/add: %w", err)
	}
	return v, nil
}

// Cat streams the UnixFS file cid; size is its length in bytes. The caller
// must close the reader.
func (c *Client) Cat(ctx context.Context, cid string) (io.ReadCloser, int64, error) {
	resp, err := c.Stream(ctx, http.MethodGet, "/v1/cat/"+url.PathEscape(cid), nil, "")
	if err != nil {
		return nil, 0, err
	}
	return resp.Body, resp.ContentLength, nil
}

// Get streams the UnixFS file or directory cid.
func (c *Client) Get(ctx context.Context, cid string) (Content, error) {
	resp, err := c.Stream(ctx, http.MethodGet, "/v1/get/"+url.PathEscape(cid), nil, "")
	if err != nil {
		return Content{}, err
	}
	kind := resp.Header.Get("X-Shoal-Kind")
	size := resp.ContentLength
	if s := resp.Header.Get("X-Shoal-Size"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			size = n
		}
	}
	return Content{Kind: kind, Size: size, Body: resp.Body}, nil
}

// GC removes every unpinned block from the daemon's store.
func (c *Client) GC(ctx context.Context) (GCResult, error) {
	var v GCResult
	err := c.Do(ctx, http.MethodPost, "/v1/gc", nil, &v)
	return v, err
}

// BlockStat returns the daemon's block store figures.
func (c *Client) BlockStat(ctx context.Context) (BlockStat, error) {
	var v BlockStat
	err := c.Do(ctx, http.MethodGet, "/v1/blocks/stat", nil, &v)
	return v, err
}

// Pin makes the daemon fetch the whole DAG of cid (from peers if needed)
// and keep it across garbage collection.
func (c *Client) Pin(ctx context.Context, cid string) error {
	return c.Do(ctx, http.MethodPost, "/v1/pins/"+url.PathEscape(cid), nil, nil)
}

// Unpin removes the pin on cid.
func (c *Client) Unpin(ctx context.Context, cid string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/pins/"+url.PathEscape(cid), nil, nil)
}

// Pins lists the pinned roots.
func (c *Client) Pins(ctx context.Context) ([]PinInfo, error) {
	var v []PinInfo
	err := c.Do(ctx, http.MethodGet, "/v1/pins", nil, &v)
	return v, err
}
