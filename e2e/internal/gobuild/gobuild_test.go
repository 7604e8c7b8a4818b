package gobuild

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestRenderGoModPinsReplacesInOrder(t *testing.T) {
	m := Module{
		Name: "kubernetes", Path: "k8s.io/kubernetes", Version: "v1.33.13",
		Replace: map[string]string{"k8s.io/client-go": "v0.33.13", "k8s.io/api": "v0.33.13"},
		Require: map[string]string{"istio.io/api": "v1.29.2"},
	}
	got := RenderGoMod(m)
	want := "module meshconform.build/kubernetes\n\ngo 1.24\n\nrequire k8s.io/kubernetes v1.33.13\n" +
		"require istio.io/api v1.29.2\n" +
		"replace k8s.io/api => k8s.io/api v0.33.13\n" +
		"replace k8s.io/client-go => k8s.io/client-go v0.33.13\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// The key is the build's whole plan: what Build hands the go command
// (module file, arguments, environment) changes it, field by field.
func TestKeyCoversThePlan(t *testing.T) {
	base := func() Module {
		return Module{Name: "metallb", Path: "go.universe.tf/metallb", Version: "v0.15.2",
			Packages: []string{"go.universe.tf/metallb/speaker"}, LDFlags: []string{"-s", "-w"}}
	}
	key := base().Key()
	changes := map[string]func(*Module){
		"a tag":                func(m *Module) { m.Tags = []string{"netgo"} },
		"an ldflag":            func(m *Module) { m.LDFlags = []string{"-s"} },
		"a package":            func(m *Module) { m.Packages = append(m.Packages, "go.universe.tf/metallb/controller") },
		"a require (go.mod)":   func(m *Module) { m.Require = map[string]string{"k8s.io/api": "v0.33.0"} },
		"a replace (go.mod)":   func(m *Module) { m.Replace = map[string]string{"k8s.io/api": "v0.33.0"} },
		"GONOSUMDB (env)":      func(m *Module) { m.NoSumDB = []string{"go.universe.tf"} },
		"a generated file":     func(m *Module) { m.Files = map[string]string{"cmd/x/main.go": "package main"} },
		"a binary's name":      func(m *Module) { m.Rename = map[string]string{"go.universe.tf/metallb/speaker": "spk"} },
		"the module's version": func(m *Module) { m.Version = "v0.15.3" },
		"a pinned go.sum line": func(m *Module) { m.Sums = []string{"go.universe.tf/metallb v0.15.2 h1:x="} },
	}
	for what, change := range changes {
		m := base()
		change(&m)
		if m.Key() == key {
			t.Errorf("changing %s keeps the key", what)
		}
	}
	// Nice changes the priority, not the output: the same key.
	m := base()
	m.Nice = 10
	if m.Key() != key {
		t.Error("the CPU priority changed the key")
	}
	// What the key digests is what the go command gets.
	if got := buildArgs(base(), "/out"); strings.Join(got, " ") != "build -trimpath -o /out/ -ldflags -s -w go.universe.tf/metallb/speaker" {
		t.Errorf("buildArgs = %q", got)
	}
}

func TestKeyChangesWithInputs(t *testing.T) {
	a := Module{Name: "etcd", Path: "go.etcd.io/etcd/server/v3", Version: "v3.5.24"}
	b := a
	b.LDFlags = []string{"-s"}
	if a.Key() == b.Key() {
		t.Error("different ldflags gave the same key")
	}
	if a.Key() != (Module{Name: "etcd", Path: "go.etcd.io/etcd/server/v3", Version: "v3.5.24"}).Key() {
		t.Error("same inputs gave different keys")
	}
}

func TestLocalReplaces(t *testing.T) {
	gomod := `module k8s.io/kubernetes
go 1.24
require k8s.io/api v0.0.0
replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/client-go => ./staging/src/k8s.io/client-go
	github.com/other/thing => github.com/fork/thing v1.0.0
)
`
	got, err := localReplaces([]byte(gomod), "./staging/", "v0.33.13")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"k8s.io/api": "v0.33.13", "k8s.io/client-go": "v0.33.13"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v want %v", got, want)
	}
	if _, err := localReplaces([]byte("module x\nreplace ((("), "./", "v"); err == nil || !strings.Contains(err.Error(), "go.mod") {
		t.Errorf("want parse error, got %v", err)
	}
}

func TestBinaryName(t *testing.T) {
	for pkg, want := range map[string]string{
		"go.etcd.io/etcd/server/v3":                            "server",
		"k8s.io/kubernetes/cmd/kubelet":                        "kubelet",
		"github.com/distribution/distribution/v3/cmd/registry": "registry",
		"github.com/coredns/coredns":                           "coredns",
		"example.com/tools/v":                                  "v",
	} {
		if got := BinaryName(pkg); got != want {
			t.Errorf("%s: got %s want %s", pkg, got, want)
		}
	}
}

func TestMergeSums(t *testing.T) {
	a := []byte("b.io/x v1.0.0 h1:aaa=\na.io/y v1.0.0/go.mod h1:bbb=\n")
	b := []byte("a.io/y v1.0.0/go.mod h1:bbb=\nc.io/z v2.0.0 h1:ccc=\n\n")
	want := "a.io/y v1.0.0/go.mod h1:bbb=\nb.io/x v1.0.0 h1:aaa=\nc.io/z v2.0.0 h1:ccc=\n"
	if got := string(MergeSums(a, b)); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestWriteModulePinsSums(t *testing.T) {
	dir := t.TempDir()
	m := Module{Name: "x", Path: "example.com/x", Version: "v1.0.0", Packages: []string{"example.com/x/cmd/x"},
		Sums: []string{"example.com/x v1.0.0 h1:abc=", "example.com/x v1.0.0/go.mod h1:def="}}
	if err := (&Builder{}).writeModule(dir, m); err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if string(sum) != "example.com/x v1.0.0 h1:abc=\nexample.com/x v1.0.0/go.mod h1:def=\n" {
		t.Errorf("go.sum = %q", sum)
	}
	tools, _ := os.ReadFile(filepath.Join(dir, "tools.go"))
	if !strings.Contains(string(tools), `_ "example.com/x/cmd/x"`) {
		t.Errorf("tools.go = %s", tools)
	}
}
