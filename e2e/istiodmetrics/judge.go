package istiodmetrics

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/meshconform/meshconform/e2e/checks"
)

// Synced is the state of a remote istiod has fully synced, in the
// sync-status gauge and in debug/clusterz alike.
const Synced = "synced"

// SyncAgrees rejects a replica whose sync-status gauge does not say every
// one of remotes (Istio cluster IDs) is synced, or that disagrees with
// what the same replica's debug/clusterz lists (istio/istio#60082: the
// metric and `istioctl remote-clusters` told different stories). A gauge
// istiod does not export is an error: nothing to judge.
func SyncAgrees(r Reading, clusterz []checks.RemoteCluster, remotes []string) error {
	if r.RemoteSync == nil {
		return fmt.Errorf("istiod %s exports no %s: its remotes' sync cannot be read from its metrics", r.Pod, RemoteSyncStatus)
	}
	if len(remotes) == 0 {
		return fmt.Errorf("istiod %s: no remote to judge", r.Pod)
	}
	listed := map[string]string{}
	for _, c := range clusterz {
		listed[c.ID] = c.SyncStatus
	}
	var errs []error
	for _, id := range remotes {
		got, ok := r.RemoteSync[id]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("remote %s has no sync state in %s", id, RemoteSyncStatus))
		case got != Synced:
			errs = append(errs, fmt.Errorf("remote %s is %q in %s, want %s", id, got, RemoteSyncStatus, Synced))
		}
		if z, ok := listed[id]; !ok {
			errs = append(errs, fmt.Errorf("remote %s is not in debug/clusterz", id))
		} else if ok && z != got {
			errs = append(errs, fmt.Errorf("remote %s: the metric says %q, debug/clusterz %q", id, got, z))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("istiod %s: %w", r.Pod, err)
	}
	return nil
}

// Window is what one replica's counters and histograms did between two
// readings.
type Window struct {
	Pod          string
	From, To     time.Time
	SyncTimeouts float64
	Rejects      float64
	Pushes       float64
	// ConvergenceP99 is the p99 of pilot_proxy_convergence_time over the
	// window, in seconds (+Inf past the last bucket); Converged how many
	// pushes it is over.
	ConvergenceP99 float64
	Converged      uint64
}

// Between is the window from earlier to later, two readings of one
// replica. Counters that went down mean istiod restarted between them:
// an error, not a figure.
func Between(earlier, later Reading) (Window, error) {
	w := Window{Pod: later.Pod, From: earlier.At, To: later.At}
	if earlier.Pod != later.Pod {
		return w, fmt.Errorf("readings of two replicas (%s, %s)", earlier.Pod, later.Pod)
	}
	delta := func(name string) (float64, error) {
		a, okA := earlier.Counters[name]
		b, okB := later.Counters[name]
		switch {
		case !okB && !okA:
			// Istio exports a counter once it first counts: none yet is
			// zero, in both readings.
			return 0, nil
		case b < a:
			return 0, fmt.Errorf("istiod %s: %s went from %g to %g: it restarted between the readings", later.Pod, name, a, b)
		}
		return b - a, nil
	}
	var err error
	if w.SyncTimeouts, err = delta(RemoteSyncTimeouts); err != nil {
		return w, err
	}
	if w.Rejects, err = delta(XDSRejects); err != nil {
		return w, err
	}
	if w.Pushes, err = delta(XDSPushes); err != nil {
		return w, err
	}
	if later.Convergence != nil {
		h, err := later.Convergence.Since(earlier.Convergence)
		if err != nil {
			return w, fmt.Errorf("istiod %s: %s: %w", later.Pod, Convergence, err)
		}
		w.Converged = h.Count
		if h.Count > 0 {
			w.ConvergenceP99, _ = h.Quantile(0.99)
		}
	}
	return w, nil
}

// Budget is what a window of istiod's metrics may show.
type Budget struct {
	// SyncTimeouts allowed (a fault that cuts a remote off expects some).
	SyncTimeouts float64
	// ConvergenceP99 bounds the p99 convergence time.
	ConvergenceP99 time.Duration
}

// Judge rejects a window that broke its budget: a remote sync timed out,
// a proxy rejected configuration, istiod pushed nothing (the guide's
// alert: pilot_xds_pushes flat for a cluster), or proxies took longer to
// converge than the budget. A window with no push to judge convergence
// by is an error too: the run makes changes, so pushes must go out.
func (b Budget) Judge(w Window) error {
	var errs []error
	if w.SyncTimeouts > b.SyncTimeouts {
		errs = append(errs, fmt.Errorf("%s rose by %g (budget %g): a remote cluster took too long to sync", RemoteSyncTimeouts, w.SyncTimeouts, b.SyncTimeouts))
	}
	if w.Rejects > 0 {
		errs = append(errs, fmt.Errorf("%s rose by %g: proxies rejected istiod's configuration", XDSRejects, w.Rejects))
	}
	if w.Pushes <= 0 {
		errs = append(errs, fmt.Errorf("%s did not rise: istiod pushed nothing", XDSPushes))
	}
	switch {
	case w.Converged == 0:
		errs = append(errs, fmt.Errorf("%s observed no push: no convergence to judge", Convergence))
	case w.ConvergenceP99 > b.ConvergenceP99.Seconds():
		errs = append(errs, fmt.Errorf("%s p99 ≤ %s over %d pushes, budget %s", Convergence, seconds(w.ConvergenceP99), w.Converged, b.ConvergenceP99))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("istiod %s, %s–%s: %w", w.Pod, w.From.Format(time.TimeOnly), w.To.Format(time.TimeOnly), err)
	}
	return nil
}

func seconds(s float64) string {
	if math.IsInf(s, 1) {
		return "+Inf (past the last bucket)"
	}
	return (time.Duration(s * float64(time.Second))).String()
}

// Describe is a window in one line, for the report.
func (w Window) Describe() string {
	return fmt.Sprintf("%s: %g pushes, %g rejects, %g sync timeouts, convergence p99 ≤ %s over %d", w.Pod, w.Pushes, w.Rejects, w.SyncTimeouts, seconds(w.ConvergenceP99), w.Converged)
}

// States lists a reading's remote sync states, sorted, for messages.
func (r Reading) States() string {
	var out []string
	for id, s := range r.RemoteSync {
		out = append(out, id+"="+s)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// NotSynced lists the remotes of ids a reading does not show synced.
func (r Reading) NotSynced(ids []string) []string {
	var out []string
	for _, id := range ids {
		if r.RemoteSync[id] != Synced {
			out = append(out, id)
		}
	}
	return slices.Clip(out)
}
