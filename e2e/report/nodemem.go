package report

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultNodeMemoryInterval is how often the node-memory sampler reads the
// node containers' cgroups: memory moves slower than CPU, and the peak of a
// run (every pod of both clusters up) lasts minutes, not seconds.
const DefaultNodeMemoryInterval = 2 * time.Second

// nodeMemoryRelist is how often the sampler asks for the node containers
// again. Listing them spawns `docker ps`; reading the cgroup files does not,
// so the list is cached between, and clusters created or removed during the
// run are seen within this delay.
const nodeMemoryRelist = 10 * time.Second

// CgroupRoot is where the host's cgroup file systems are mounted.
const CgroupRoot = "/sys/fs/cgroup"

// NodeContainer is one kind node container: its full Docker ID (the name of
// its cgroup) and its kind cluster (the label io.x-k8s.kind.cluster).
type NodeContainer struct {
	ID, Cluster string
}

// NodeMemory is the node containers' memory use over a run, as `docker
// stats` counts it (usage without inactive page cache).
type NodeMemory struct {
	// Samples counts the readings that found at least one node container.
	Samples int `json:"samples"`
	// PeakBytes is the largest sum over all node containers at one reading:
	// what the machine had to hold at once, not the sum of per-container
	// peaks reached at different times.
	PeakBytes uint64 `json:"peak_bytes"`
	// ClusterPeakBytes is the same peak per kind cluster.
	ClusterPeakBytes map[string]uint64 `json:"cluster_peak_bytes"`
	// Error is the first failed listing or reading, if any.
	Error string `json:"error,omitempty"`
}

// Figures returns the record as a run's figures: node_memory_samples,
// node_memory_peak_mib and node_memory_peak_mib_<cluster>. Without a single
// sample the peak says "no samples" (and why, when something failed): a 0
// would read as a measurement.
func (m NodeMemory) Figures() map[string]any {
	f := map[string]any{"node_memory_samples": m.Samples}
	if m.Samples == 0 {
		why := "no samples"
		if m.Error != "" {
			why += ": " + m.Error
		}
		f["node_memory_peak_mib"] = why
		return f
	}
	f["node_memory_peak_mib"] = mib(m.PeakBytes)
	for c, b := range m.ClusterPeakBytes {
		f["node_memory_peak_mib_"+c] = mib(b)
	}
	if m.Error != "" {
		// Samples were taken, but some reading failed: the peak may be low.
		f["node_memory_error"] = m.Error
	}
	return f
}

func mib(b uint64) float64 { return round(float64(b)/(1<<20), 1) }

// memoryInUse is a cgroup's usage minus its inactive file cache, the figure
// `docker stats` shows (the docker CLI's calculateMemUsageUnixNoCache):
// inactive page cache is reclaimed before anything is pushed out, so it is
// not memory the node needs. inactiveKey is total_inactive_file on cgroup v1
// (total_ counts the child cgroups: the node's pods) and inactive_file on
// v2 (always hierarchical). A memory.stat without the key leaves usage as
// it is, as docker does.
func memoryInUse(usage, stat []byte, inactiveKey string) (uint64, error) {
	u, err := strconv.ParseUint(strings.TrimSpace(string(usage)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("memory usage: %w", err)
	}
	for line := range bytes.Lines(stat) {
		k, v, ok := strings.Cut(strings.TrimSpace(string(line)), " ")
		if !ok || k != inactiveKey {
			continue
		}
		inactive, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("memory.stat %s: %w", k, err)
		}
		if inactive < u {
			return u - inactive, nil
		}
		return u, nil
	}
	return u, nil
}

// cgroupLayouts are where Docker puts a container's memory cgroup, by cgroup
// version and cgroup driver. This machine's kind is v1 (hybrid) with the
// cgroupfs driver, the first; the others keep the sampler right elsewhere.
var cgroupLayouts = []struct {
	dir         func(id string) string // under the cgroup root
	usage, stat string                 // file, memory.stat key of inactive cache
}{
	{func(id string) string { return filepath.Join("memory", "docker", id) }, "memory.usage_in_bytes", "total_inactive_file"},
	{func(id string) string { return filepath.Join("memory", "system.slice", "docker-"+id+".scope") }, "memory.usage_in_bytes", "total_inactive_file"},
	{func(id string) string { return filepath.Join("system.slice", "docker-"+id+".scope") }, "memory.current", "inactive_file"},
	{func(id string) string { return filepath.Join("docker", id) }, "memory.current", "inactive_file"},
}

// readCgroupMemory reads a container's memory in use from its cgroup files
// under root, with no process spawned. An error satisfying
// errors.Is(err, fs.ErrNotExist) means the container is gone (or was never
// running): its cgroup directory is removed with it.
func readCgroupMemory(root, id string) (uint64, error) {
	for _, l := range cgroupLayouts {
		dir := filepath.Join(root, l.dir(id))
		usage, err := os.ReadFile(filepath.Join(dir, l.usage))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		stat, err := os.ReadFile(filepath.Join(dir, "memory.stat"))
		if err != nil {
			return 0, err
		}
		return memoryInUse(usage, stat, l.stat)
	}
	return 0, fmt.Errorf("container %.12s: no memory cgroup under %s: %w", id, root, fs.ErrNotExist)
}

// gone tells a container removed while being read (its cgroup files vanish,
// or, opened just before, answer ENODEV) from a real failure.
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENODEV)
}

// nodeMemoryPeaks is the sum and peak bookkeeping, apart from any I/O.
type nodeMemoryPeaks struct {
	samples   int
	peak      uint64
	byCluster map[string]uint64
}

// add records one reading: the bytes in use of each container read. An
// empty reading (no cluster yet, or all gone) is not a sample.
func (p *nodeMemoryPeaks) add(use map[NodeContainer]uint64) {
	if len(use) == 0 {
		return
	}
	p.samples++
	var sum uint64
	clusters := map[string]uint64{}
	for c, b := range use {
		sum += b
		clusters[c.Cluster] += b
	}
	p.peak = max(p.peak, sum)
	if p.byCluster == nil {
		p.byCluster = map[string]uint64{}
	}
	for c, b := range clusters {
		p.byCluster[c] = max(p.byCluster[c], b)
	}
}

// NodeMemorySampler reads the node containers' memory every interval in a
// goroutine until Stop.
type NodeMemorySampler struct {
	interval time.Duration
	relist   time.Duration
	list     func() ([]NodeContainer, error)
	read     func(id string) (uint64, error)
	now      func() time.Time

	// Only the sampling goroutine (or a test driving tick) uses these.
	nodes  []NodeContainer
	listed time.Time

	mu       sync.Mutex
	peaks    nodeMemoryPeaks
	err      error
	looping  bool
	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// StartNodeMemory samples the memory of the containers list returns every
// interval (<= 0 means DefaultNodeMemoryInterval) until Stop. list is called
// at the first reading and then every ~10 s, so clusters created after the
// start are found; containers removed meanwhile are skipped. It cannot fail
// at the start: before any cluster exists there is nothing to read.
func StartNodeMemory(interval time.Duration, list func() ([]NodeContainer, error)) *NodeMemorySampler {
	s := newNodeMemorySampler(interval, list, func(id string) (uint64, error) { return readCgroupMemory(CgroupRoot, id) }, time.Now)
	s.looping = true
	go s.loop()
	return s
}

// newNodeMemorySampler builds a sampler; tests drive tick themselves.
func newNodeMemorySampler(interval time.Duration, list func() ([]NodeContainer, error), read func(string) (uint64, error), now func() time.Time) *NodeMemorySampler {
	if interval <= 0 {
		interval = DefaultNodeMemoryInterval
	}
	return &NodeMemorySampler{interval: interval, relist: max(nodeMemoryRelist, interval), list: list, read: read, now: now,
		stop: make(chan struct{}), done: make(chan struct{})}
}

func (s *NodeMemorySampler) loop() { every(s.interval, s.stop, s.done, s.tick) }

// tick lists the containers when due, then reads each once.
func (s *NodeMemorySampler) tick() {
	now := s.now()
	var errs []error
	if s.listed.IsZero() || now.Sub(s.listed) >= s.relist {
		// A failed listing keeps the last list (and is retried at the next
		// relist, not at every tick: docker may be down for a while).
		if nodes, err := s.list(); err != nil {
			errs = append(errs, fmt.Errorf("list node containers: %w", err))
		} else {
			s.nodes = nodes
		}
		s.listed = now
	}
	use := make(map[NodeContainer]uint64, len(s.nodes))
	for _, c := range s.nodes {
		b, err := s.read(c.ID)
		if gone(err) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("read memory of container %.12s (cluster %s): %w", c.ID, c.Cluster, err))
			continue
		}
		use[c] = b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peaks.add(use)
	if s.err == nil && len(errs) > 0 {
		s.err = errs[0]
	}
}

// Stop ends the sampling and returns the record. Later calls return the
// same record. No last reading is taken: at the end of a run the clusters
// are already gone.
func (s *NodeMemorySampler) Stop() NodeMemory {
	s.stopOnce.Do(func() {
		close(s.stop)
		if s.looping {
			<-s.done // a reading under way finishes first
		}
	})
	return s.Snapshot()
}

// Snapshot returns the record so far; sampling goes on.
func (s *NodeMemorySampler) Snapshot() NodeMemory {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := NodeMemory{Samples: s.peaks.samples, PeakBytes: s.peaks.peak, ClusterPeakBytes: map[string]uint64{}}
	for c, b := range s.peaks.byCluster {
		m.ClusterPeakBytes[c] = b
	}
	if s.err != nil {
		m.Error = s.err.Error()
	}
	return m
}
