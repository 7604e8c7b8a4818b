package report

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultCPUInterval is how often the CPU sampler reads /proc/stat: fine
// enough to see a build saturate the cores, coarse enough that a two-hour
// run keeps a few thousand samples.
const DefaultCPUInterval = time.Second

// maxCPUSamples bounds a sampler's memory: when it is reached, neighbouring
// samples are merged in pairs (halving the resolution) rather than dropping
// the oldest, so the record still covers the whole run.
const maxCPUSamples = 20000

// userHZ is the unit of /proc/stat's counters (USER_HZ). The kernel fixes it
// at 100 in its ABI on every architecture kind runs on (x86, arm64), and Go
// cannot ask sysconf(_SC_CLK_TCK) without cgo. Fractions do not depend on
// it; only the CPU-seconds do.
const userHZ = 100

// CPU is the machine's CPU use over a span: per-interval samples and their
// totals. It covers the whole machine, not one process tree: Docker's kind
// nodes and builds run outside the test process, and are what costs.
type CPU struct {
	Summary CPUSummary  `json:"summary"`
	Samples []CPUSample `json:"samples"`
	// Error is the first failed read of /proc/stat, if any; the samples
	// then have a gap.
	Error string `json:"error,omitempty"`
}

// CPUSample is the machine's CPU use over one interval.
type CPUSample struct {
	// At is the end of the interval, in seconds after CPUSummary.Start.
	At float64 `json:"at"`
	// Seconds is the interval's length (longer after downsampling).
	Seconds float64 `json:"seconds"`
	// Busy is the fraction (0..1) of all cores' time spent in user, nice,
	// system, irq and softirq.
	Busy float64 `json:"busy"`
	// IOWait is the fraction of all cores' time idle with I/O outstanding.
	IOWait float64 `json:"iowait"`
}

// CPUSummary is the totals from the first reading to the last.
type CPUSummary struct {
	Start       time.Time `json:"start"`
	WallSeconds float64   `json:"wall_seconds"`
	Cores       int       `json:"cores"`
	// BusySeconds is CPU time used on all cores (user+nice+system+irq+softirq);
	// UserSeconds (user+nice) + SystemSeconds (system+irq+softirq) = BusySeconds.
	BusySeconds   float64 `json:"busy_seconds"`
	UserSeconds   float64 `json:"user_seconds"`
	SystemSeconds float64 `json:"system_seconds"`
	IOWaitSeconds float64 `json:"iowait_seconds"`
	// BusyAvg is the average busy fraction (0..1) of all cores.
	BusyAvg float64 `json:"busy_avg"`
}

// Figures returns the summary as a run's figures (rounded for reading).
func (s CPUSummary) Figures() map[string]any {
	return map[string]any{
		"cpu_busy_seconds":   round(s.BusySeconds, 1),
		"cpu_user_seconds":   round(s.UserSeconds, 1),
		"cpu_system_seconds": round(s.SystemSeconds, 1),
		"cpu_cores":          s.Cores,
		"cpu_busy_avg":       round(s.BusyAvg, 3),
	}
}

// cpuTicks are the aggregate "cpu" line's counters, in USER_HZ ticks.
// guest and guest_nice are left out: the kernel already counts them in
// user and nice.
type cpuTicks struct {
	user, nice, system, idle, iowait, irq, softirq, steal uint64
}

func (t cpuTicks) busy() uint64 { return t.user + t.nice + t.system + t.irq + t.softirq }

// total counts steal (time the hypervisor gave to another guest) as neither
// busy nor idle: it is time the cores were not ours.
func (t cpuTicks) total() uint64 { return t.busy() + t.idle + t.iowait + t.steal }

// sub is t - o per counter. A counter that went back (a CPU taken offline
// drops out of the aggregate) counts as 0 rather than wrapping around.
func (t cpuTicks) sub(o cpuTicks) cpuTicks {
	d := func(a, b uint64) uint64 {
		if a < b {
			return 0
		}
		return a - b
	}
	return cpuTicks{d(t.user, o.user), d(t.nice, o.nice), d(t.system, o.system), d(t.idle, o.idle),
		d(t.iowait, o.iowait), d(t.irq, o.irq), d(t.softirq, o.softirq), d(t.steal, o.steal)}
}

// procStat is one reading of /proc/stat.
type procStat struct {
	ticks cpuTicks
	cores int // the per-CPU "cpuN" lines: online cores
}

// parseProcStat reads the aggregate "cpu" line and counts the "cpuN" lines
// of /proc/stat (proc(5)). Kernels before 2.6.11 lack the later fields;
// those stay 0.
func parseProcStat(text []byte) (procStat, error) {
	var st procStat
	found := false
	for line := range bytes.Lines(text) {
		f := strings.Fields(string(line))
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if f[0] != "cpu" {
			if _, err := strconv.Atoi(f[0][3:]); err == nil {
				st.cores++
			}
			continue
		}
		if len(f) < 5 {
			return st, fmt.Errorf("/proc/stat: cpu line has %d fields, want at least 4 counters: %q", len(f), strings.TrimSpace(string(line)))
		}
		dst := []*uint64{&st.ticks.user, &st.ticks.nice, &st.ticks.system, &st.ticks.idle,
			&st.ticks.iowait, &st.ticks.irq, &st.ticks.softirq, &st.ticks.steal}
		for i, p := range dst {
			if i+1 >= len(f) {
				break
			}
			v, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return st, fmt.Errorf("/proc/stat: cpu field %d: %w", i+1, err)
			}
			*p = v
		}
		found = true
	}
	if !found {
		return st, fmt.Errorf("/proc/stat: no aggregate cpu line")
	}
	if st.cores == 0 {
		st.cores = 1
	}
	return st, nil
}

// sampleOf is the CPU use between two readings, ending at the given offset.
// ok is false when no tick passed (the readings were too close together).
func sampleOf(prev, cur procStat, at, seconds float64) (s CPUSample, ok bool) {
	d := cur.ticks.sub(prev.ticks)
	tot := d.total()
	if tot == 0 {
		return CPUSample{}, false
	}
	return CPUSample{
		At: round(at, 3), Seconds: round(seconds, 3),
		Busy: round(float64(d.busy())/float64(tot), 4), IOWait: round(float64(d.iowait)/float64(tot), 4),
	}, true
}

// summarize totals the counters between two readings.
func summarize(first, last procStat, start time.Time, wall float64) CPUSummary {
	d := last.ticks.sub(first.ticks)
	s := CPUSummary{
		Start: start, WallSeconds: round(wall, 3), Cores: last.cores,
		BusySeconds:   float64(d.busy()) / userHZ,
		UserSeconds:   float64(d.user+d.nice) / userHZ,
		SystemSeconds: float64(d.system+d.irq+d.softirq) / userHZ,
		IOWaitSeconds: float64(d.iowait) / userHZ,
	}
	if tot := d.total(); tot > 0 {
		s.BusyAvg = round(float64(d.busy())/float64(tot), 4)
	}
	return s
}

// mergeSamples merges each run of n neighbouring samples into one covering
// their span, its fractions weighted by interval length.
func mergeSamples(in []CPUSample, n int) []CPUSample {
	if n <= 1 {
		return append([]CPUSample(nil), in...)
	}
	out := make([]CPUSample, 0, (len(in)+n-1)/n)
	for i := 0; i < len(in); i += n {
		grp := in[i:min(i+n, len(in))]
		var m CPUSample
		for _, s := range grp {
			m.Seconds += s.Seconds
			m.Busy += s.Busy * s.Seconds
			m.IOWait += s.IOWait * s.Seconds
		}
		if m.Seconds > 0 {
			m.Busy, m.IOWait = m.Busy/m.Seconds, m.IOWait/m.Seconds
		}
		m.At, m.Seconds = grp[len(grp)-1].At, round(m.Seconds, 3)
		m.Busy, m.IOWait = round(m.Busy, 4), round(m.IOWait, 4)
		out = append(out, m)
	}
	return out
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// CPUSampler reads /proc/stat every interval in a goroutine until Stop.
type CPUSampler struct {
	interval time.Duration
	read     func() ([]byte, error)
	now      func() time.Time
	max      int

	mu       sync.Mutex
	start    time.Time
	first    procStat
	last     procStat
	lastAt   time.Time
	samples  []CPUSample
	err      error
	looping  bool // the goroutine runs: Stop waits for it
	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// StartCPUSampler takes a first reading (so a machine without /proc/stat
// fails here, not silently later) and samples every interval (<= 0 means
// DefaultCPUInterval) until Stop.
func StartCPUSampler(interval time.Duration) (*CPUSampler, error) {
	s, err := newCPUSampler(interval, func() ([]byte, error) { return os.ReadFile("/proc/stat") }, time.Now)
	if err != nil {
		return nil, err
	}
	s.looping = true
	go s.loop()
	return s, nil
}

// newCPUSampler takes the first reading; tests drive tick themselves.
func newCPUSampler(interval time.Duration, read func() ([]byte, error), now func() time.Time) (*CPUSampler, error) {
	if interval <= 0 {
		interval = DefaultCPUInterval
	}
	s := &CPUSampler{interval: interval, read: read, now: now, max: maxCPUSamples,
		stop: make(chan struct{}), done: make(chan struct{})}
	st, err := s.readStat()
	if err != nil {
		return nil, fmt.Errorf("start CPU sampling: %w", err)
	}
	s.start = s.now()
	s.first, s.last, s.lastAt = st, st, s.start
	return s, nil
}

func (s *CPUSampler) readStat() (procStat, error) {
	raw, err := s.read()
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(raw)
}

func (s *CPUSampler) loop() { every(s.interval, s.stop, s.done, s.tick) }

// every runs tick each interval until stop closes, then closes done: the
// loop of every sampler of a run.
func every(interval time.Duration, stop <-chan struct{}, done chan<- struct{}, tick func()) {
	defer close(done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			tick()
		}
	}
}

// tick takes one reading and records the interval since the previous one.
func (s *CPUSampler) tick() {
	st, err := s.readStat()
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.err == nil {
			s.err = fmt.Errorf("read at %s: %w", now.Sub(s.start).Round(time.Second), err)
		}
		return
	}
	smp, ok := sampleOf(s.last, st, now.Sub(s.start).Seconds(), now.Sub(s.lastAt).Seconds())
	if !ok {
		return
	}
	s.samples = append(s.samples, smp)
	if len(s.samples) >= s.max {
		s.samples = mergeSamples(s.samples, 2)
	}
	s.last, s.lastAt = st, now
}

// Stop ends the sampling, takes a last reading so the totals reach the
// moment of stopping, and returns the record. Later calls return the same
// record.
func (s *CPUSampler) Stop() *CPU {
	s.stopOnce.Do(func() {
		close(s.stop)
		if s.looping {
			<-s.done // so no tick races the last one
		}
		s.tick()
	})
	return s.Snapshot()
}

// Snapshot returns the record so far; sampling goes on.
func (s *CPUSampler) Snapshot() *CPU {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &CPU{
		Summary: summarize(s.first, s.last, s.start, s.lastAt.Sub(s.start).Seconds()),
		Samples: append([]CPUSample(nil), s.samples...),
	}
	if s.err != nil {
		c.Error = s.err.Error()
	}
	return c
}
