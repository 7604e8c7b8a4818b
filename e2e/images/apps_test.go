package images

import (
	"os"
	"path/filepath"
	"testing"
)

// An app's image key changes with a file of a package below the app's own
// directory (meshapp/api), not only with its main package's files.
func TestAppKeyCoversSubpackages(t *testing.T) {
	root := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module x\n")
	write("go.sum", "")
	write(AppsDir+"/app/main.go", "package main\n")
	write(AppsDir+"/app/api/api.go", "package api\n")
	before, err := appKey(root, "app")
	if err != nil {
		t.Fatal(err)
	}
	write(AppsDir+"/app/api/api.go", "package api\n\nconst X = 1\n")
	after, err := appKey(root, "app")
	if err != nil {
		t.Fatal(err)
	}
	if before == after {
		t.Error("editing app/api/api.go left the app's key unchanged")
	}
}
