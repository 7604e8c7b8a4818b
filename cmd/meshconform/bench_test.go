package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshconform/meshconform/e2e/harness"
	"github.com/meshconform/meshconform/e2e/report"
)

var update = flag.Bool("update", false, "rewrite testdata/bench.md from the current rendering")

func stepNames(steps []Step) []string {
	var n []string
	for _, s := range steps {
		n = append(n, s.Name)
	}
	return n
}

func fixtureRun(t *testing.T, name string) *RunRecord {
	t.Helper()
	doc, err := readPhases("testdata")
	if err != nil {
		t.Fatal(err)
	}
	r := &RunRecord{Name: name, Artifacts: "artifacts/bench/x/" + name}
	r.fromPhases(doc)
	return r
}

func TestFromPhases(t *testing.T) {
	r := fixtureRun(t, "report")
	wantPath := []string{
		"preflight", "local registry", "go build kubernetes", "image kindest/node:v1.34.0",
		"docker network meshconform", "create cluster cluster1", "cluster cluster1 ready",
		"istio 1.29.2 on cluster1", "metallb v0.15.2", "delete cluster cluster1",
		"remove local registry", "remove docker network",
	}
	if got := stepNames(r.CriticalPath); !slices.Equal(got, wantPath) {
		t.Errorf("critical path\n got %q\nwant %q", got, wantPath)
	}
	// 2 + 2.99 + 284.95 + 12.35 + 0.5 + 60 + 20 + 60 + 10 + 10 + 1 + 0.5
	if r.CriticalPathSeconds != 464.3 {
		t.Errorf("critical path %gs, want 464.3", r.CriticalPathSeconds)
	}
	if s := r.CriticalPath[2]; s.At != 5.1 || s.Seconds != 284.95 || !s.OK {
		t.Errorf("go build step = %+v", s)
	}
	wantTop := []string{
		"images", "go build kubernetes", "app image echo", "create cluster cluster1", "istio 1.29.2 on cluster1",
		"create cluster cluster2", "cluster cluster2 ready", "cluster cluster1 ready", "image kindest/node:v1.34.0", "metallb v0.15.2",
	}
	if got := stepNames(r.TopPhases); !slices.Equal(got, wantTop) {
		t.Errorf("top phases\n got %q\nwant %q", got, wantTop)
	}
	if r.WallSeconds != 464.5 || r.PhaseCount != 18 || r.CachedPhases != 1 {
		t.Errorf("wall %g, %d phases, %d cached; want 464.5, 18, 1", r.WallSeconds, r.PhaseCount, r.CachedPhases)
	}
	// No make commands: the CPU record is the run's own.
	if r.CPU == nil || r.CPU.BusySeconds != 700.5 || r.CPU.Cores != 2 {
		t.Errorf("cpu = %+v", r.CPU)
	}
	// As the record always had them: failed and per-image phases left out,
	// audit_* figures left out.
	if _, ok := r.Phases["metallb v0.15.2"]; ok {
		t.Error("a failed phase in phase_seconds")
	}
	if _, ok := r.Phases["image kindest/node:v1.34.0"]; ok {
		t.Error("an image phase in phase_seconds")
	}
	if r.Phases["go build kubernetes"] != 285 || r.Phases["images"] != 300.5 || len(r.Phases) != 15 {
		t.Errorf("phase_seconds = %v", r.Phases)
	}
	var keys []string
	for k := range r.Figures {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"faults_caught", "image_cache_bytes", "image_source", "kubernetes_version", "seconds_to_all_synced", "split_v2_share_from_cluster1"}; !slices.Equal(keys, want) {
		t.Errorf("figures %q, want %q", keys, want)
	}
	if r.KubernetesVersion != "v1.34.0" || r.ImageSource != "local" {
		t.Errorf("versions %v %v", r.KubernetesVersion, r.ImageSource)
	}
}

// A cold bench's record, rendered, is exactly testdata/bench.md.
func TestRenderMarkdown(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	cpu := func(wall, busy, user, sys, avg float64) *report.CPUSummary {
		return &report.CPUSummary{Start: t0, WallSeconds: wall, Cores: 2, BusySeconds: busy, UserSeconds: user, SystemSeconds: sys, BusyAvg: avg}
	}
	cold := fixtureRun(t, "cold")
	cold.Commands = []Command{
		{Command: "make test", WallSeconds: 400, OK: true, CPU: cpu(400, 720, 640, 80, 0.9)},
		{Command: "make e2e", WallSeconds: 3200, OK: true, CPU: cpu(3200, 5120, 4480, 640, 0.8)},
	}
	cold.WallSeconds, cold.CPU = 3600, sumCPU([]report.CPUSummary{*cold.Commands[0].CPU, *cold.Commands[1].CPU})
	warm := fixtureRun(t, "warm")
	warm.Commands = []Command{{Command: "make e2e", WallSeconds: 500, OK: false, Error: "make e2e ARTIFACTS=x: exit status 2", CPU: cpu(500, 400, 300, 100, 0.4)}}
	warm.WallSeconds, warm.CPU = 500, sumCPU([]report.CPUSummary{*warm.Commands[0].CPU})
	rec := &Record{
		Date: "2026-03-01T09:00:00Z", Mode: "cold", IstioVersion: "1.29.2",
		ColdCaches: &ColdCaches{Dir: "/root/.cache/meshconform-bench-cold-1", Bytes: map[string]int64{"GOMODCACHE": 2_500_000_000, "GOCACHE": 3_100_000_000, "MESHCONFORM_CACHE": 9_876_543_210}},
		Runs:       []*RunRecord{cold, warm},
	}
	if cold.CPU.BusySeconds != 5840 || cold.CPU.BusyAvg != (0.9*400+0.8*3200)/3600 {
		t.Errorf("summed CPU = %+v", cold.CPU)
	}
	got := renderMarkdown(rec)
	golden := filepath.Join("testdata", "bench.md")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("bench.md differs from %s (go test -run TestRenderMarkdown -update to accept):\n%s", golden, got)
	}
}

func TestValue(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{12345678901.0, "12345678901"}, {12.5, "12.5"}, {0.48, "0.48"}, {"local", "local"}, {nil, "–"},
		{3, "3"}, {map[string]any{"a": 1.0}, `{"a":1}`}, {[]any{}, "[]"},
	} {
		if got := value(tc.in); got != tc.want {
			t.Errorf("value(%#v) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := humanBytes(9_876_543_210); got != "9.9 GB" {
		t.Errorf("humanBytes = %q", got)
	}
	if got := mdCell("a|b\nc"); got != `a\|b c` {
		t.Errorf("mdCell = %q", got)
	}
}

// fakeMake stands in for make: it records each call and, for e2e, writes
// the fixture as the run's phases.json, the way the suite does.
type fakeMake struct {
	calls []string
	envs  [][]string
	fail  string // a target that fails
}

func (f *fakeMake) run(_ context.Context, env []string, args ...string) error {
	f.calls = append(f.calls, strings.Join(args, " "))
	f.envs = append(f.envs, env)
	// What the run leaves in the caches: a read-only module directory, as
	// go leaves it.
	mod := filepath.Join(lookup(env, "GOMODCACHE"), "example.com", "m@v1")
	if lookup(env, "GOMODCACHE") != "" {
		if err := os.MkdirAll(mod, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module m\n"), 0o444); err != nil {
			return err
		}
		if err := os.Chmod(mod, 0o555); err != nil {
			return err
		}
	}
	if args[0] == f.fail {
		return errors.New("exit status 2")
	}
	if args[0] == "e2e" {
		dir := strings.TrimPrefix(args[1], "ARTIFACTS=")
		raw, err := os.ReadFile(filepath.Join("testdata", "phases.json"))
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, "phases.json"), raw, 0o644)
	}
	return nil
}

// lookup is the value exec would give the child: the last one.
func lookup(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

func newTestBencher(t *testing.T, f *fakeMake, left []string) (*bencher, string) {
	base := t.TempDir()
	return &bencher{
		dir: filepath.Join(t.TempDir(), "bench", "1.29.2-x"), out: &strings.Builder{},
		env:       []string{"GOMODCACHE=/home/u/go/pkg/mod", "MESHCONFORM_KEEP_CLUSTERS=1", "PATH=/usr/bin"},
		make:      f.run,
		leftovers: func(context.Context) ([]string, error) { return left, nil },
		cacheBase: base,
	}, base
}

func TestColdBench(t *testing.T) {
	f := &fakeMake{}
	b, base := newTestBencher(t, f, nil)
	rec := &Record{Mode: "cold"}
	if err := b.cold(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	if want := []string{"test ARTIFACTS=" + b.dir + "/cold", "e2e ARTIFACTS=" + b.dir + "/cold", "e2e ARTIFACTS=" + b.dir + "/warm"}; !slices.Equal(f.calls, want) {
		t.Errorf("make calls %q, want %q", f.calls, want)
	}
	tmp := rec.ColdCaches.Dir
	for i, env := range f.envs {
		for k, sub := range map[string]string{"GOMODCACHE": "gomod", "GOCACHE": "gobuild", "MESHCONFORM_CACHE": "meshconform"} {
			if got := lookup(env, k); got != filepath.Join(tmp, sub) {
				t.Errorf("call %d: %s=%q, want under %s", i, k, got, tmp)
			}
		}
		if got := lookup(env, "MESHCONFORM_KEEP_CLUSTERS"); got != "" {
			t.Errorf("call %d keeps clusters: %q", i, got)
		}
	}
	if filepath.Dir(tmp) != base || !strings.HasPrefix(filepath.Base(tmp), "meshconform-bench-cold-") {
		t.Errorf("caches in %s, want a new directory in %s", tmp, base)
	}
	if left, _ := os.ReadDir(base); len(left) != 0 {
		t.Errorf("left behind in %s: %v", base, left)
	}
	if rec.ColdCaches.Bytes["GOMODCACHE"] != int64(len("module m\n")) {
		t.Errorf("cache sizes %v", rec.ColdCaches.Bytes)
	}
	if len(rec.Runs) != 2 || rec.Runs[0].Name != "cold" || len(rec.Runs[0].Commands) != 2 || rec.Runs[1].Name != "warm" || len(rec.Runs[1].Commands) != 1 {
		t.Fatalf("runs = %+v", rec.Runs)
	}
	cold := rec.Runs[0]
	if len(cold.CriticalPath) != 12 || cold.Error != "" || !cold.Commands[0].OK || cold.Commands[1].Command != "make e2e" {
		t.Errorf("cold run = %+v", cold)
	}
	// The Gantt chart with the CPU strip, next to the run's directory.
	if _, err := os.Stat(filepath.Join(b.dir, "cold.svg")); err != nil && cold.Commands[1].CPU != nil {
		t.Error(err)
	}
}

func TestColdBenchCleansUpAfterFailure(t *testing.T) {
	f := &fakeMake{fail: "e2e"}
	b, base := newTestBencher(t, f, nil)
	rec := &Record{Mode: "cold"}
	err := b.cold(t.Context(), rec)
	if err == nil || !strings.Contains(err.Error(), "bench cold: exit status 2") {
		t.Errorf("error %v, want the failed make", err)
	}
	if want := []string{"test ARTIFACTS=" + b.dir + "/cold", "e2e ARTIFACTS=" + b.dir + "/cold"}; !slices.Equal(f.calls, want) {
		t.Errorf("make calls %q, want %q (no warm run after a failure)", f.calls, want)
	}
	if left, _ := os.ReadDir(base); len(left) != 0 {
		t.Errorf("left behind in %s: %v", base, left)
	}
	if len(rec.Runs) != 1 || rec.Runs[0].Commands[1].OK || rec.Runs[0].Commands[1].Error != "exit status 2" {
		t.Errorf("runs = %+v", rec.Runs)
	}
	// No phases.json from the failed run: said, not hidden.
	if !strings.Contains(rec.Runs[0].Error, "read the run's report") {
		t.Errorf("run error = %q", rec.Runs[0].Error)
	}
}

func TestColdBenchRefusesLeftovers(t *testing.T) {
	f := &fakeMake{}
	b, base := newTestBencher(t, f, []string{"container meshconform-registry"})
	err := b.cold(t.Context(), &Record{})
	if err == nil || !strings.Contains(err.Error(), "make clean") {
		t.Errorf("error %v, want a refusal naming make clean", err)
	}
	if left, _ := os.ReadDir(base); len(f.calls) != 0 || len(left) != 0 {
		t.Errorf("ran %q, created %v", f.calls, left)
	}
}

func TestColdBenchWantsSpace(t *testing.T) {
	if _, ok := diskFree(t.TempDir()); !ok {
		t.Skip("free space cannot be told here")
	}
	f := &fakeMake{}
	b, _ := newTestBencher(t, f, nil)
	b.minFree = 1 << 62
	if err := b.cold(t.Context(), &Record{}); err == nil || !strings.Contains(err.Error(), "free") || len(f.calls) != 0 {
		t.Errorf("error %v after %q, want a refusal before any make", err, f.calls)
	}
}

func TestRemoveTreeRefusesOtherPaths(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"", "relative/meshconform-bench-cold-1", dir} {
		if err := removeTree(p); err == nil {
			t.Errorf("removeTree(%q) went ahead", p)
		}
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("%s removed: %v", dir, err)
	}
}

// `bench report` reads artifacts/phases.json and writes the record beside.
func TestBenchReport(t *testing.T) {
	artifacts := t.TempDir()
	raw, err := os.ReadFile(filepath.Join("testdata", "phases.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(artifacts, "phases.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := bench(t.Context(), harness.Config{ArtifactsDir: artifacts, IstioVersion: "1.29.2"}, "report", ""); err != nil {
		t.Fatal(err)
	}
	found, _ := filepath.Glob(filepath.Join(artifacts, "bench", "1.29.2-*", "bench.json"))
	if len(found) != 1 {
		t.Fatalf("records %v, want one", found)
	}
	raw, _ = os.ReadFile(found[0])
	var rec Record
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Mode != "report" || len(rec.Runs) != 1 || rec.Runs[0].CriticalPathSeconds != 464.3 {
		t.Errorf("record = %+v", rec)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(found[0]), "bench.md")); err != nil {
		t.Error(err)
	}
	if err := bench(t.Context(), harness.Config{ArtifactsDir: t.TempDir()}, "report", ""); err == nil || !strings.Contains(err.Error(), "run make e2e first") {
		t.Errorf("without a run: %v", err)
	}
	if err := bench(t.Context(), harness.Config{ArtifactsDir: artifacts}, "lukewarm", ""); err == nil {
		t.Error("an unknown mode ran")
	}
}
