package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshconform/meshconform/e2e/harness"
)

func TestCacheSize(t *testing.T) {
	dir := t.TempDir()
	for rel, n := range map[string]int{"bin/etcd-v3.5.24-0123456789abcdef/etcd": 3 << 20, "registry/docker/x": 1 << 20, "stray": 10} {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	if err := runCache(context.Background(), harness.Config{CacheDir: dir}, []string{"size"}, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "4.0 MiB") ||
		!strings.Contains(lines[1], "bin") || !strings.Contains(lines[1], "3.0 MiB") ||
		!strings.Contains(lines[3], "stray") || !strings.Contains(lines[3], "not a directory of meshconform's cache") {
		t.Errorf("cache size printed:\n%s", out.String())
	}
}

func TestCacheUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"grow"}, {"size", "now"}, {"prune", "-force"}, {"prune", "extra"}} {
		var out strings.Builder
		err := runCache(context.Background(), harness.Config{CacheDir: t.TempDir()}, args, &out)
		if err == nil || !strings.Contains(err.Error(), "usage: meshconform cache") {
			t.Errorf("cache %q = %v, want a usage error", args, err)
		}
	}
}
