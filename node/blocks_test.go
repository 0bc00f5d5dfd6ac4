package node

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shoalnet/shoal/node/client"
)

func TestBlocksAPI(t *testing.T) {
	n1 := startNode(t, testRepo(t, nil))
	n2 := startNode(t, testRepo(t, func(c *Config) { c.Blocks.FetchTimeout = Duration(2 * time.Second) }))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n2.Host().Connect(ctx, peer.AddrInfo{ID: n1.PeerID(), Addrs: n1.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	c1, err := client.New(n1.RepoDir())
	if err != nil {
		t.Fatal(err)
	}
	c2, err := client.New(n2.RepoDir())
	if err != nil {
		t.Fatal(err)
	}

	data := bytes.Repeat([]byte("shoal payload "), 100000) // 1.4 MB, several chunks
	res, err := c1.Add(ctx, bytes.NewReader(data), "p.bin")
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	if res.Size != uint64(len(data)) || !strings.HasPrefix(res.CID, "bafy") || res.Name != "p.bin" {
		t.Fatalf("Add = %+v", res)
	}
	// node2 fetches it from node1.
	rc, size, err := c2.Cat(ctx, res.CID)
	if err != nil {
		t.Fatalf("Cat on node2: %v", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) || size != int64(len(data)) {
		t.Fatalf("Cat on node2: %d bytes (Content-Length %d), %v; want the %d bytes added", len(got), size, err, len(data))
	}

	// A directory as tar, then get it back as tar.
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "a.txt", Size: 6, Mode: 0o644})
	tw.Write([]byte("alpha\n"))
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "sub/b.txt", Size: 5, Mode: 0o644})
	tw.Write([]byte("beta\n"))
	tw.Close()
	dres, err := c1.AddTar(ctx, &tb, "dir")
	if err != nil || dres.CID != "bafybeiawm7kjcgxpdxlhqj4qun2ikiqnotiln3r5bctmybgxnltwzlr4qy" {
		t.Fatalf("AddTar = %+v, %v", dres, err)
	}
	content, err := c2.Get(ctx, dres.CID)
	if err != nil || content.Kind != "directory" {
		t.Fatalf("Get(dir) = %+v, %v", content, err)
	}
	tr := tar.NewReader(content.Body)
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	content.Body.Close()
	if strings.Join(names, ",") != "a.txt,sub/,sub/b.txt" {
		t.Errorf("Get(dir) tar entries = %v", names)
	}

	// Errors: malformed CID, a CID nobody has, unpinning what is not pinned.
	var apiErr *client.APIError
	if _, _, err := c2.Cat(ctx, "not-a-cid"); !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
		t.Errorf("Cat(not-a-cid) = %v, want HTTP 400", err)
	}
	missing := "bafkreigdvoh7cnza5cwzar65hfdgwpejotszfqx2ha6uuolaofgk54ge6i"
	if _, _, err := c2.Cat(ctx, missing); !errors.As(err, &apiErr) || apiErr.Status != http.StatusGatewayTimeout ||
		!strings.Contains(apiErr.Message, "no provider found for CID "+missing) {
		t.Errorf("Cat(missing) = %v, want HTTP 504 naming the CID", err)
	}
	if err := c2.Unpin(ctx, res.CID); !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Errorf("Unpin(not pinned) = %v, want HTTP 404", err)
	}

	// Pins and GC on node2: pin keeps it, unpin + GC frees it.
	if err := c2.Pin(ctx, res.CID); err != nil {
		t.Fatalf("Pin: %v", err)
	}
	pins, err := c2.Pins(ctx)
	if err != nil || len(pins) != 1 || pins[0].CID != res.CID {
		t.Fatalf("Pins = %+v, %v", pins, err)
	}
	if err := c2.Unpin(ctx, res.CID); err != nil {
		t.Fatalf("Unpin: %v", err)
	}
	gc, err := c2.GC(ctx)
	if err != nil || gc.Removed == 0 {
		t.Fatalf("GC = %+v, %v; want blocks removed", gc, err)
	}
	st, err := c1.BlockStat(ctx)
	if err != nil || st.Pins != 2 || st.Blocks == 0 {
		t.Errorf("BlockStat(node1) = %+v, %v; want 2 pins", st, err)
	}
}

func TestBlocksConfigValidate(t *testing.T) {
	for _, edit := range []func(*BlocksConfig){
		func(c *BlocksConfig) { c.FetchTimeout = 0 },
		func(c *BlocksConfig) { c.ReprovideInterval = Duration(time.Second) },
		func(c *BlocksConfig) { c.MaxDAGStreams = 0 },
	} {
		c := DefaultBlocksConfig()
		edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "blocks.") {
			t.Errorf("Validate(%+v) = %v, want an error naming the field", c, err)
		}
	}
}
