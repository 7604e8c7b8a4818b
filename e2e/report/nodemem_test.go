package report

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Shortened from a kind node's cgroup v1 memory.stat: the node's own
// inactive_file is small, total_inactive_file counts its pods' cgroups too.
const v1Stat = `cache 524288000
rss 314572800
inactive_file 4096
active_file 1048576
total_cache 734003200
total_rss 629145600
total_inactive_file 209715200
total_active_file 419430400
`

// Shortened from a cgroup v2 memory.stat.
const v2Stat = `anon 629145600
file 734003200
inactive_file 209715200
active_file 419430400
`

func TestMemoryInUse(t *testing.T) {
	for _, tc := range []struct {
		name, usage, stat, key string
		want                   uint64
	}{
		{"v1 counts the pods' inactive cache", "1258291200\n", v1Stat, "total_inactive_file", 1048576000},
		{"v2", "1258291200\n", v2Stat, "inactive_file", 1048576000},
		{"inactive above usage leaves usage", "1000\n", "total_inactive_file 5000\n", "total_inactive_file", 1000},
		{"no inactive line leaves usage", "1000\n", "rss 10\n", "total_inactive_file", 1000},
	} {
		got, err := memoryInUse([]byte(tc.usage), []byte(tc.stat), tc.key)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
	if _, err := memoryInUse([]byte("max\n"), nil, "inactive_file"); err == nil {
		t.Error("a non-numeric usage parsed")
	}
	if _, err := memoryInUse([]byte("1000\n"), []byte("total_inactive_file x\n"), "total_inactive_file"); err == nil {
		t.Error("a non-numeric memory.stat value parsed")
	}
}

func writeCgroup(t *testing.T, dir, usageFile, usage, stat string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{usageFile: usage, "memory.stat": stat} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadCgroupMemoryLayouts(t *testing.T) {
	root := t.TempDir()
	writeCgroup(t, filepath.Join(root, "memory", "docker", "aaa"), "memory.usage_in_bytes", "1258291200\n", v1Stat)
	writeCgroup(t, filepath.Join(root, "system.slice", "docker-bbb.scope"), "memory.current", "1258291200\n", v2Stat)
	for _, id := range []string{"aaa", "bbb"} {
		if got, err := readCgroupMemory(root, id); err != nil || got != 1048576000 {
			t.Errorf("container %s: got %d, %v", id, got, err)
		}
	}
	if _, err := readCgroupMemory(root, "gone"); !gone(err) {
		t.Errorf("a missing container: %v, want not-exist", err)
	}
}

// The peak is the largest sum at one reading: 120 MiB here, not the 200 MiB
// the per-container peaks (100 + 100, at different times) add up to.
func TestNodeMemoryPeakIsPeakOfSum(t *testing.T) {
	a, b, c := NodeContainer{"a", "cluster1"}, NodeContainer{"b", "cluster2"}, NodeContainer{"c", "cluster2"}
	var p nodeMemoryPeaks
	p.add(map[NodeContainer]uint64{a: 100 << 20, b: 10 << 20})
	p.add(map[NodeContainer]uint64{a: 20 << 20, b: 60 << 20, c: 40 << 20})
	p.add(nil) // nothing to read: not a sample
	if p.samples != 2 || p.peak != 120<<20 {
		t.Errorf("samples %d, peak %d MiB; want 2, 120", p.samples, p.peak>>20)
	}
	if p.byCluster["cluster1"] != 100<<20 || p.byCluster["cluster2"] != 100<<20 {
		t.Errorf("cluster peaks %v", p.byCluster)
	}
}

type fakeNodes struct {
	clock   time.Time
	lists   [][]NodeContainer // one per call; the last repeats
	listed  int
	listErr error
	use     map[string]uint64 // by ID; absent means gone
}

func (f *fakeNodes) list() ([]NodeContainer, error) {
	f.listed++
	if f.listErr != nil {
		return nil, f.listErr
	}
	return f.lists[min(f.listed, len(f.lists))-1], nil
}

func (f *fakeNodes) read(id string) (uint64, error) {
	b, ok := f.use[id]
	if !ok {
		return 0, fs.ErrNotExist
	}
	return b, nil
}

func (f *fakeNodes) now() time.Time { f.clock = f.clock.Add(2 * time.Second); return f.clock }

// Clusters appear after the start and vanish before the end: the list is
// asked again every 10 s, and a container whose cgroup is gone is skipped.
func TestNodeMemorySamplerFollowsContainers(t *testing.T) {
	cp1, cp2 := NodeContainer{"id1", "cluster1"}, NodeContainer{"id2", "cluster2"}
	f := &fakeNodes{clock: time.Unix(0, 0), lists: [][]NodeContainer{nil, {cp1, cp2}}, use: map[string]uint64{}}
	s := newNodeMemorySampler(0, f.list, f.read, f.now)
	if s.interval != DefaultNodeMemoryInterval {
		t.Errorf("interval %v, want the default", s.interval)
	}
	for range 5 { // 2 s .. 10 s: one listing, empty
		s.tick()
	}
	if m := s.Snapshot(); f.listed != 1 || m.Samples != 0 {
		t.Fatalf("before the clusters: %d listings, %+v", f.listed, m)
	}
	f.use = map[string]uint64{"id1": 300 << 20, "id2": 200 << 20}
	s.tick() // 12 s: listed again, both read
	f.use = map[string]uint64{"id1": 400 << 20}
	s.tick() // 14 s: cluster2 removed, still listed: skipped, no error
	m := s.Stop()
	if f.listed != 2 || m.Samples != 2 || m.PeakBytes != 500<<20 || m.Error != "" {
		t.Errorf("%d listings, record %+v", f.listed, m)
	}
	want := map[string]any{"node_memory_samples": 2, "node_memory_peak_mib": 500.0,
		"node_memory_peak_mib_cluster1": 400.0, "node_memory_peak_mib_cluster2": 200.0}
	if got := m.Figures(); !equalFigures(got, want) {
		t.Errorf("figures %v\nwant    %v", got, want)
	}
	if again := s.Stop(); again.Samples != m.Samples || again.PeakBytes != m.PeakBytes {
		t.Errorf("second Stop: %+v", again)
	}
}

// No sample gives no number: the peak says why there is none.
func TestNodeMemoryNoSamples(t *testing.T) {
	f := &fakeNodes{clock: time.Unix(0, 0), listErr: errors.New("docker: daemon down")}
	s := newNodeMemorySampler(time.Second, f.list, f.read, f.now)
	s.tick()
	s.tick()
	got := s.Stop().Figures()
	want := map[string]any{"node_memory_samples": 0,
		"node_memory_peak_mib": "no samples: list node containers: docker: daemon down"}
	if !equalFigures(got, want) {
		t.Errorf("figures %v\nwant    %v", got, want)
	}
	if got := (NodeMemory{}).Figures(); got["node_memory_peak_mib"] != "no samples" || len(got) != 2 {
		t.Errorf("empty record: %v", got)
	}
}

// A real sampler with nothing to read starts and stops promptly.
func TestStartNodeMemoryStops(t *testing.T) {
	s := StartNodeMemory(time.Millisecond, func() ([]NodeContainer, error) { return nil, nil })
	time.Sleep(10 * time.Millisecond)
	if m := s.Stop(); m.Samples != 0 {
		t.Errorf("record %+v", m)
	}
}

func equalFigures(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A reading that fails for another reason than a removed container is kept
// as an error figure beside the peak: the peak may miss that container.
func TestNodeMemoryKeepsReadError(t *testing.T) {
	ok, bad := NodeContainer{"ok", "cluster1"}, NodeContainer{"bad", "cluster1"}
	read := func(id string) (uint64, error) {
		if id == "bad" {
			return 0, errors.New("memory usage: invalid syntax")
		}
		return 64 << 20, nil
	}
	f := &fakeNodes{clock: time.Unix(0, 0)}
	s := newNodeMemorySampler(0, func() ([]NodeContainer, error) { return []NodeContainer{ok, bad}, nil }, read, f.now)
	s.tick()
	got := s.Stop().Figures()
	if got["node_memory_peak_mib"] != 64.0 || got["node_memory_error"] != "read memory of container bad (cluster cluster1): memory usage: invalid syntax" {
		t.Errorf("figures %v", got)
	}
}
