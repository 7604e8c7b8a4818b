package oci

import (
	"archive/tar"
	"io"
	"reflect"
	"testing"
)

func TestFilesLayerIsReproducibleAndHasParents(t *testing.T) {
	files := []File{
		{Path: "/usr/local/bin/tool", Mode: 0o755, Data: []byte("#!/bin/sh\n")},
		{Path: "/etc/tool/config", Data: []byte("x=1\n")},
		{Path: "/bin/sh", Link: "/usr/bin/dash"},
	}
	a, err := FilesLayer(files)
	if err != nil {
		t.Fatal(err)
	}
	b, err := FilesLayer([]File{files[2], files[1], files[0]})
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.DiffID()
	db, _ := b.DiffID()
	if da != db {
		t.Errorf("same files in another order gave diff IDs %s and %s", da, db)
	}

	f, err := a.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	modes := map[string]int64{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		modes[h.Name] = h.Mode
	}
	want := []string{"bin/", "bin/sh", "etc/", "etc/tool/", "etc/tool/config", "usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/tool"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("entries = %v, want %v", names, want)
	}
	if modes["usr/local/bin/tool"] != 0o755 || modes["etc/tool/config"] != 0o644 {
		t.Errorf("modes = %v", modes)
	}
}

func TestNewImageSetsPathAndPlatform(t *testing.T) {
	img, err := NewImage(Config{Entrypoint: []string{"/pause"}})
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	if len(cf.Config.Env) != 1 || cf.Config.Env[0] != DefaultPath {
		t.Errorf("env = %v", cf.Config.Env)
	}
}
