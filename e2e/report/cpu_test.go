package report

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Two readings 5 s apart on 2 cores: 1000 ticks (10 CPU-s) pass, of which
// user 300 + nice 100 + system 150 + irq 25 + softirq 25 = 600 are busy,
// idle 300, iowait 80, steal 20.
const (
	stat0 = `cpu  1000 10 500 8000 100 5 5 0 0 0
cpu0 500 5 250 4000 50 3 2 0 0 0
cpu1 500 5 250 4000 50 2 3 0 0 0
intr 12345 0 0
ctxt 999
btime 1700000000
cpufreq 3
`
	stat1 = `cpu  1300 110 650 8300 180 30 30 20 7 0
cpu0 650 55 325 4150 90 15 15 10 3 0
cpu1 650 55 325 4150 90 15 15 10 4 0
intr 12999 0 0
`
)

func TestParseProcStat(t *testing.T) {
	st, err := parseProcStat([]byte(stat1))
	if err != nil {
		t.Fatal(err)
	}
	want := procStat{ticks: cpuTicks{user: 1300, nice: 110, system: 650, idle: 8300, iowait: 180, irq: 30, softirq: 30, steal: 20}, cores: 2}
	if st != want {
		t.Errorf("parsed %+v, want %+v", st, want)
	}
	// A kernel before 2.6.11: four counters, no per-CPU lines.
	old, err := parseProcStat([]byte("cpu 1 2 3 4\n"))
	if err != nil || old.ticks != (cpuTicks{user: 1, nice: 2, system: 3, idle: 4}) || old.cores != 1 {
		t.Errorf("old format: %+v, %v", old, err)
	}
	for _, bad := range []string{"", "intr 1 2\n", "cpu 1 2 3\n", "cpu 1 x 3 4\n"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q) accepted", bad)
		}
	}
}

func TestSampleAndSummary(t *testing.T) {
	a, _ := parseProcStat([]byte(stat0))
	b, _ := parseProcStat([]byte(stat1))
	s, ok := sampleOf(a, b, 5, 5)
	if !ok || s != (CPUSample{At: 5, Seconds: 5, Busy: 0.6, IOWait: 0.08}) {
		t.Errorf("sample = %+v, %v", s, ok)
	}
	if _, ok := sampleOf(b, b, 6, 1); ok {
		t.Error("a sample from two equal readings")
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sum := summarize(a, b, t0, 5)
	want := CPUSummary{Start: t0, WallSeconds: 5, Cores: 2, BusySeconds: 6, UserSeconds: 4, SystemSeconds: 2, IOWaitSeconds: 0.8, BusyAvg: 0.6}
	if sum != want {
		t.Errorf("summary = %+v\nwant      %+v", sum, want)
	}
	figs := sum.Figures()
	if figs["cpu_busy_seconds"] != 6.0 || figs["cpu_user_seconds"] != 4.0 || figs["cpu_system_seconds"] != 2.0 ||
		figs["cpu_cores"] != 2 || figs["cpu_busy_avg"] != 0.6 {
		t.Errorf("figures = %v", figs)
	}
	// A counter that went back (a core taken offline) is not a huge delta.
	if d := a.ticks.sub(b.ticks); d != (cpuTicks{}) {
		t.Errorf("backwards delta = %+v, want zeros", d)
	}
}

func TestMergeSamples(t *testing.T) {
	in := []CPUSample{{At: 1, Seconds: 1, Busy: 1}, {At: 4, Seconds: 3, Busy: 0, IOWait: 0.4}, {At: 5, Seconds: 1, Busy: 0.5}}
	got := mergeSamples(in, 2)
	want := []CPUSample{{At: 4, Seconds: 4, Busy: 0.25, IOWait: 0.3}, {At: 5, Seconds: 1, Busy: 0.5}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("merged = %+v, want %+v", got, want)
	}
}

// fakeStat serves readings in turn; each tick advances a fake clock 1 s.
type fakeStat struct {
	readings []string
	n        int
	clock    time.Time
}

func (f *fakeStat) read() ([]byte, error) {
	if f.n >= len(f.readings) {
		return nil, errors.New("gone")
	}
	f.n++
	return []byte(f.readings[f.n-1]), nil
}

func (f *fakeStat) now() time.Time { f.clock = f.clock.Add(time.Second); return f.clock }

// reading is a /proc/stat of 1 core whose busy and idle counters are given.
func reading(busy, idle int) string {
	return strings.NewReplacer("B", itoa(busy), "I", itoa(idle)).Replace("cpu B 0 0 I 0 0 0 0\ncpu0 B 0 0 I 0 0 0 0\n")
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestSamplerTicksCapsAndStops(t *testing.T) {
	f := &fakeStat{clock: time.Unix(1000, 0)}
	// Each second: 100 ticks, busy 100, 50, 0, 100, 50, 0, ...
	busy, idle := 0, 0
	f.readings = append(f.readings, reading(busy, idle))
	for i := range 9 {
		b := []int{100, 50, 0}[i%3]
		busy, idle = busy+b, idle+100-b
		f.readings = append(f.readings, reading(busy, idle))
	}
	s, err := newCPUSampler(time.Second, f.read, f.now)
	if err != nil {
		t.Fatal(err)
	}
	s.max = 4
	for range 7 {
		s.tick()
	}
	c := s.Snapshot()
	// Busy 1, .5, 0, 1 fill the cap of 4 and merge to 2 samples; .5 and 0
	// fill it again; the 7th (busy 1) is kept as it is.
	want := []CPUSample{{At: 4, Seconds: 4, Busy: 0.625}, {At: 6, Seconds: 2, Busy: 0.25}, {At: 7, Seconds: 1, Busy: 1}}
	if !slices.Equal(c.Samples, want) {
		t.Errorf("samples %+v\nwant    %+v", c.Samples, want)
	}
	if c.Summary.WallSeconds != 7 || c.Summary.Cores != 1 {
		t.Errorf("summary %+v", c.Summary)
	}
	stopped := s.Stop()
	// Stop reads once more (8 ticks in all); the 9th reading is never taken.
	if stopped.Summary.WallSeconds != 8 || stopped.Summary.BusySeconds != 4.5 || stopped.Summary.BusyAvg != 0.5625 {
		t.Errorf("after stop: %+v", stopped.Summary)
	}
	if again := s.Stop(); again.Summary != stopped.Summary {
		t.Error("a second Stop changed the record")
	}
	if f.n != 9 {
		t.Errorf("%d readings taken, want 9", f.n)
	}
}

func TestSamplerKeepsFirstReadError(t *testing.T) {
	f := &fakeStat{clock: time.Unix(0, 0), readings: []string{reading(0, 0)}}
	s, err := newCPUSampler(0, f.read, f.now)
	if err != nil {
		t.Fatal(err)
	}
	if s.interval != DefaultCPUInterval {
		t.Errorf("interval %v, want the default", s.interval)
	}
	s.tick()
	s.tick()
	if c := s.Snapshot(); c.Error != "read at 1s: gone" || len(c.Samples) != 0 {
		t.Errorf("record = %+v", c)
	}
	if _, err := newCPUSampler(0, func() ([]byte, error) { return nil, os.ErrNotExist }, time.Now); err == nil {
		t.Error("a sampler without /proc/stat started")
	}
}

// On Linux the real sampler records into the Run's report.
func TestRunWritesCPU(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc/stat")
	}
	r := NewRun(nil)
	stop := r.StartCPU(10 * time.Millisecond)
	time.Sleep(50 * time.Millisecond) // let a few ticks pass; nothing is asserted on timing
	stop()
	path := filepath.Join(t.TempDir(), "phases.json")
	if err := r.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	var doc Document
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.CPU == nil || doc.CPU.Summary.Cores < 1 || doc.Figures["cpu_cores"] != float64(doc.CPU.Summary.Cores) {
		t.Errorf("CPU record missing or inconsistent: cpu=%+v figures=%v", doc.CPU, doc.Figures)
	}
	if r.StopCPU() == nil {
		t.Error("StopCPU after stop returned nil")
	}
}
