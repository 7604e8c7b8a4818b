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

// Sync judges one replica's remote clusters at one moment: debug/clusterz
// must list every one of remotes (Istio cluster IDs) as synced, and the
// sync-status gauge must say the same. Where it cannot, note says why
// and the verdict rests on clusterz alone:
//   - istiod exports no gauge (Istio before 1.29);
//   - the gauge says timeout where clusterz says synced, on a version with
//     istio/istio#60082 (the timeout timer fires after a sync that already
//     succeeded and its state sticks; fixed after 1.29.2): a defect of
//     Istio's metric, reported, not a mesh out of sync.
//
// Any other disagreement (istio/istio#60082 on a version that should have
// its fix, a remote missing from the gauge, another state) is an error.
func Sync(r Reading, clusterz []checks.RemoteCluster, remotes []string, version string) (note string, err error) {
	if len(remotes) == 0 {
		return "", fmt.Errorf("istiod %s: no remote to judge", r.Pod)
	}
	listed := map[string]string{}
	for _, c := range clusterz {
		listed[c.ID] = c.SyncStatus
	}
	var errs []error
	var notes []string
	for _, id := range remotes {
		z, inz := listed[id]
		switch {
		case !inz:
			errs = append(errs, fmt.Errorf("remote %s is not in debug/clusterz", id))
			continue
		case z != Synced:
			errs = append(errs, fmt.Errorf("remote %s is %q in debug/clusterz, want %s", id, z, Synced))
		}
		if r.RemoteSync == nil {
			continue
		}
		got, ok := r.RemoteSync[id]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("remote %s has no sync state in %s", id, RemoteSyncStatus))
		case got == z:
		case got == "timeout" && z == Synced && StaleTimeout(version):
			notes = append(notes, fmt.Sprintf("remote %s: %s says timeout, debug/clusterz synced (istio/istio#60082 in Istio %s)", id, RemoteSyncStatus, version))
		default:
			errs = append(errs, fmt.Errorf("remote %s: %s says %q, debug/clusterz %q", id, RemoteSyncStatus, got, z))
		}
	}
	if r.RemoteSync == nil {
		notes = append(notes, fmt.Sprintf("istiod exports no %s (Istio %s): judged by debug/clusterz alone", RemoteSyncStatus, version))
	}
	if err := errors.Join(errs...); err != nil {
		return "", fmt.Errorf("istiod %s: %w", r.Pod, err)
	}
	return strings.Join(notes, "; "), nil
}

// StaleTimeout says whether an Istio version has istio/istio#60082: the
// sync-status gauge (new in 1.29.0) stuck at timeout once the initial
// sync's timer fired, though the remote synced. Fixed by istio/istio#60098
// after 1.29.2 was released; later versions are held to the gauge.
func StaleTimeout(version string) bool {
	for _, v := range []string{"1.29.0", "1.29.1", "1.29.2"} {
		if version == v {
			return true
		}
	}
	return false
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
