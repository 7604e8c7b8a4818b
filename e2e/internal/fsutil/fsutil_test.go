package fsutil

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSize(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	for p, n := range map[string]int{"x": 3, "a/y": 5, "a/b/z": 7} {
		if err := os.WriteFile(filepath.Join(dir, p), make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A symbolic link is not followed nor counted.
	if err := os.Symlink(filepath.Join(dir, "a"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if got := Size(dir); got != 15 {
		t.Errorf("Size = %d, want 15", got)
	}
	if got := Size(filepath.Join(dir, "absent")); got != 0 {
		t.Errorf("Size of an absent dir = %d, want 0", got)
	}
}
