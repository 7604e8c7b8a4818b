// Package istiodmetrics reads istiod's own Prometheus metrics (its
// /metrics on the monitoring port, 15014) and judges the control plane's
// health by them, as Istio's multicluster best practices ask operators to
// alert: every remote cluster synced, and agreeing with istiod's own
// debug/clusterz; no remote sync timing out; no xDS config rejected by a
// proxy; pushes going out; proxies converging within a budget.
//
// A Reading is one replica's metrics at one time; the judges compare two
// readings of the same replica (counters and histograms are cumulative
// since istiod started), so a figure is what happened between them.
package istiodmetrics

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The metrics read, as istiod 1.29 exports them (Istio's monitoring
// package; a counter may carry the exporter's _total suffix).
const (
	RemoteSyncStatus   = "istiod_remote_cluster_sync_status"
	RemoteSyncTimeouts = "remote_cluster_sync_timeouts_total"
	XDSRejects         = "pilot_total_xds_rejects"
	XDSPushes          = "pilot_xds_pushes"
	Convergence        = "pilot_proxy_convergence_time"
	// ProcessStart is the Go process collector's start time: a replica
	// whose container restarted between two readings shows a new one.
	ProcessStart = "process_start_time_seconds"
)

// xdsTypes are the push types that carry configuration to proxies.
var xdsTypes = []string{"cds", "eds", "lds", "rds"}

// Reading is what one istiod replica's /metrics said at At: only the
// figures the judges read, so a run can keep many.
type Reading struct {
	Pod string
	At  time.Time
	// Started is when the istiod process started (zero when not
	// exported).
	Started time.Time
	// RemoteSync maps each remote cluster to the state its sync-status
	// gauge is 1 in; nil when istiod does not export the gauge.
	RemoteSync map[string]string
	// Counters are the sums over every series of each counter read, by
	// the names above; a counter not exported (yet) is absent.
	Counters map[string]float64
	// PushesByType is pilot_xds_pushes by its type label (cds, eds,
	// lds, rds, their _senderr, and debug requests).
	PushesByType map[string]float64
	// Convergence is pilot_proxy_convergence_time's cumulative buckets.
	Convergence *Histogram
}

// Histogram is a cumulative Prometheus histogram.
type Histogram struct {
	// Bounds are the buckets' upper bounds, in seconds, ascending; Counts
	// the cumulative counts of observations at or below each.
	Bounds []float64
	Counts []uint64
	Count  uint64
}

// Parse reads the text exposition format istiod serves.
func Parse(pod string, at time.Time, raw []byte) (Reading, error) {
	// The format ends every line with a newline; a reader that trimmed
	// the output (pilot-discovery request's, read through exec) lost the
	// last one, and the parser takes that for a cut stream.
	if !bytes.HasSuffix(raw, []byte("\n")) {
		raw = append(raw[:len(raw):len(raw)], '\n')
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		return Reading{}, fmt.Errorf("istiod %s: metrics: %w", pod, err)
	}
	r := Reading{Pod: pod, At: at, Counters: map[string]float64{}}
	for name, f := range fams {
		base := strings.TrimSuffix(name, "_total")
		switch {
		case name == RemoteSyncStatus:
			r.RemoteSync = map[string]string{}
			for _, m := range f.GetMetric() {
				if m.GetGauge().GetValue() == 1 {
					r.RemoteSync[label(m, "cluster")] = label(m, "status")
				}
			}
		case base == XDSPushes:
			r.PushesByType = map[string]float64{}
			for _, m := range f.GetMetric() {
				t := label(m, "type")
				r.PushesByType[t] += value(m)
				// Pushes to proxies only: debug requests (the run's own
				// debug/syncz reads count as type istio.io/debug/syncz)
				// and send or build errors are not configuration going out.
				if slices.Contains(xdsTypes, t) {
					r.Counters[XDSPushes] += value(m)
				}
			}
		case name == Convergence && f.GetType() == dto.MetricType_HISTOGRAM:
			r.Convergence = histogram(f)
		case name == ProcessStart && len(f.GetMetric()) > 0:
			sec := value(f.GetMetric()[0])
			r.Started = time.Unix(0, int64(sec*float64(time.Second)))
		case name == RemoteSyncTimeouts:
			r.Counters[RemoteSyncTimeouts] = sum(f)
		case base == XDSRejects:
			r.Counters[XDSRejects] = sum(f)
		}
	}
	return r, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

func sum(f *dto.MetricFamily) float64 {
	var s float64
	for _, m := range f.GetMetric() {
		s += value(m)
	}
	return s
}

// histogram sums the family's series into one histogram (istiod labels
// none of convergence's series today; summing keeps a label added later
// from splitting the figure).
func histogram(f *dto.MetricFamily) *Histogram {
	h := &Histogram{}
	idx := map[float64]int{}
	for _, m := range f.GetMetric() {
		hm := m.GetHistogram()
		h.Count += hm.GetSampleCount()
		for _, b := range hm.GetBucket() {
			ub := b.GetUpperBound()
			i, ok := idx[ub]
			if !ok {
				i = len(h.Bounds)
				idx[ub] = i
				h.Bounds = append(h.Bounds, ub)
				h.Counts = append(h.Counts, 0)
			}
			h.Counts[i] += b.GetCumulativeCount()
		}
	}
	order := make([]int, len(h.Bounds))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return h.Bounds[order[a]] < h.Bounds[order[b]] })
	bounds, counts := make([]float64, len(order)), make([]uint64, len(order))
	for i, o := range order {
		bounds[i], counts[i] = h.Bounds[o], h.Counts[o]
	}
	h.Bounds, h.Counts = bounds, counts
	return h
}

// Since is the histogram of what was observed after earlier (the same
// replica's reading before): cumulative counts subtracted.
func (h *Histogram) Since(earlier *Histogram) (*Histogram, error) {
	if earlier == nil {
		return h, nil
	}
	if h == nil {
		return nil, fmt.Errorf("the later reading has no histogram")
	}
	if len(earlier.Bounds) != len(h.Bounds) || earlier.Count > h.Count {
		return nil, fmt.Errorf("the readings are not of one istiod run (buckets %d and %d, counts %d then %d): it restarted between them", len(earlier.Bounds), len(h.Bounds), earlier.Count, h.Count)
	}
	out := &Histogram{Bounds: h.Bounds, Counts: make([]uint64, len(h.Counts)), Count: h.Count - earlier.Count}
	for i := range h.Counts {
		if earlier.Bounds[i] != h.Bounds[i] || earlier.Counts[i] > h.Counts[i] {
			return nil, fmt.Errorf("the readings are not of one istiod run (bucket %g)", h.Bounds[i])
		}
		out.Counts[i] = h.Counts[i] - earlier.Counts[i]
	}
	return out, nil
}

// Quantile is the upper bound of the bucket holding quantile q of the
// observations, as Prometheus's histogram_quantile bounds it from above
// (no interpolation: a figure judged against a budget is never flattered);
// +Inf when it lies past the last finite bucket. Zero observations is an
// error: no figure.
func (h *Histogram) Quantile(q float64) (float64, error) {
	if h == nil || h.Count == 0 {
		return 0, fmt.Errorf("no observation")
	}
	rank := uint64(math.Ceil(q * float64(h.Count)))
	for i, c := range h.Counts {
		if c >= rank {
			return h.Bounds[i], nil
		}
	}
	return math.Inf(1), nil
}
