package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/shoalnet/shoal/node/client"
)

func TestPrintPeersCapacity(t *testing.T) {
	view := []client.CapacityEntry{
		{ID: "12D3KooWA", Self: true, Slots: 4, SlotsFree: 3, Cores: 8, MemoryBytes: 16 << 30,
			Runtimes: []string{"wasm"}, Labels: map[string]string{"region": "eu", "gpu": "none"}, Version: "shoal/0.1.0", AgeMS: 1200},
		{ID: "12D3KooWB", Slots: 2, SlotsFree: 0, Cores: 2, MemoryBytes: 512 << 20,
			Runtimes: []string{"wasm"}, Labels: map[string]string{}, Version: "shoal/0.1.0", AgeMS: 30},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "GET" || r.URL.Path != "/v1/capacity" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, `{"error":"unexpected request"}`, http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(view)
	}))
	defer srv.Close()
	c := client.NewWithToken("", strings.TrimPrefix(srv.URL, "http://"), "tok")
	ctx := context.Background()

	var table bytes.Buffer
	if err := printPeersCapacity(ctx, &table, c, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PEER ID", "12D3KooWA *", "16.0 GiB", "gpu=none,region=eu", "512.0 MiB", "1.2s"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table output lacks %q:\n%s", want, table.String())
		}
	}

	var js bytes.Buffer
	if err := printPeersCapacity(ctx, &js, c, true); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(js.Bytes(), &rows); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, js.String())
	}
	if len(rows) != 2 {
		t.Fatalf("--json output has %d rows, want 2", len(rows))
	}
	for _, key := range []string{"id", "slots", "slots_free", "cores", "memory_bytes", "runtimes", "labels", "version", "age_ms"} {
		if _, ok := rows[0][key]; !ok {
			t.Errorf("--json row lacks %q: %v", key, rows[0])
		}
	}
}
