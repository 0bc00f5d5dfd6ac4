package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNewNoRepoNoDaemon(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(dir); err == nil || !strings.Contains(err.Error(), "shoal init --repo "+dir) {
		t.Errorf("New(empty dir) = %v, want an error saying to run shoal init", err)
	}
	os.WriteFile(filepath.Join(dir, "config.toml"), nil, 0o644)
	_, err := New(dir)
	if !errors.Is(err, ErrNoDaemon) || !strings.Contains(err.Error(), "shoal daemon --repo "+dir) {
		t.Errorf("New(repo without daemon) = %v, want ErrNoDaemon saying how to start one", err)
	}
	os.WriteFile(filepath.Join(dir, "api"), []byte("garbage"), 0o600)
	if _, err := New(dir); err == nil || errors.Is(err, ErrNoDaemon) {
		t.Errorf("New(corrupt api file) = %v, want an error about the file", err)
	}
}

func TestDoErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"wrong token"}`))
			return
		}
		switch r.URL.Path {
		case "/json-error":
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"error":"it is busy; retry"}`))
		case "/text-error":
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("plain words"))
		case "/empty-error":
			w.WriteHeader(http.StatusTeapot)
		case "/bad-json":
			w.Write([]byte(`{"id": 3`))
		default:
			w.Write([]byte(`{"id":"x","addrs":["/a"],"network":"n"}`))
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	c := NewWithToken("r", addr, "tok")
	ctx := context.Background()

	id, err := c.ID(ctx)
	if err != nil || id.ID != "x" || id.Network != "n" {
		t.Fatalf("ID = %+v, %v", id, err)
	}
	tests := []struct {
		path   string
		status int
		msg    string
	}{
		{"/json-error", 409, "it is busy; retry"},
		{"/text-error", 502, "plain words"},
		{"/empty-error", 418, "I'm a teapot"},
	}
	for _, tt := range tests {
		err := c.Do(ctx, "GET", tt.path, nil, nil)
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != tt.status || ae.Message != tt.msg {
			t.Errorf("Do(%s) = %v, want APIError %d %q", tt.path, err, tt.status, tt.msg)
		}
	}
	var v IDInfo
	if err := c.Do(ctx, "GET", "/bad-json", nil, &v); err == nil || !strings.Contains(err.Error(), "decode") {
		t.Errorf("Do(bad json) = %v, want a decode error", err)
	}
	bad := NewWithToken("r", addr, "nope")
	var ae *APIError
	if _, err := bad.ID(ctx); !errors.As(err, &ae) || ae.Status != 401 {
		t.Errorf("ID with a wrong token = %v, want a 401 APIError", err)
	}
	srv.Close()
	if _, err := c.ID(ctx); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("ID after the server closed = %v, want ErrNoDaemon", err)
	}
}
