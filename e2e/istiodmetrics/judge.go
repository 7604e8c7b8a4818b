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
//   - istiod exports no gauge: Istio before 1.29, or within GaugeGrace of
//     istiod's start (a ticker writes it);
//   - the gauge says timeout where clusterz says synced, on a version with
//     istio/istio#60082 (the timeout timer fires after a sync that already
//     succeeded and its state sticks; fixed after 1.29.2), and istiod
//     counted no sync timeout: a defect of Istio's metric, reported, not a
//     mesh out of sync.
//
// Any other disagreement (istio/istio#60082 on a version that should have
// its fix, a timeout istiod counted, a remote missing from the gauge, a
// gauge missing on a version that has it, another state) is an error.
func Sync(r Reading, clusterz []checks.RemoteCluster, remotes []string, version string) (note string, err error) {
	return judgeSync(r, clusterz, remotes, version, false)
}

// SyncDuringFault is Sync while a fault may leave remotes not synced:
// debug/clusterz may list a remote in any state, or not at all, but the
// gauge must still say what clusterz says for every remote it lists.
func SyncDuringFault(r Reading, clusterz []checks.RemoteCluster, remotes []string, version string) (note string, err error) {
	return judgeSync(r, clusterz, remotes, version, true)
}

func judgeSync(r Reading, clusterz []checks.RemoteCluster, remotes []string, version string, faulted bool) (note string, err error) {
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
		case !inz && faulted:
			continue
		case !inz:
			errs = append(errs, fmt.Errorf("remote %s is not in debug/clusterz", id))
			continue
		case z != Synced && !faulted:
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
		case got == "timeout" && z == Synced && StaleTimeout(version) && r.Counters[RemoteSyncTimeouts] == 0:
			notes = append(notes, fmt.Sprintf("remote %s: %s says timeout, debug/clusterz synced (istio/istio#60082 in Istio %s)", id, RemoteSyncStatus, version))
		default:
			errs = append(errs, fmt.Errorf("remote %s: %s says %q, debug/clusterz %q", id, RemoteSyncStatus, got, z))
		}
	}
	switch {
	case r.RemoteSync != nil:
	case !GaugeExported(version):
		notes = append(notes, fmt.Sprintf("istiod exports no %s (Istio %s, before 1.29): judged by debug/clusterz alone", RemoteSyncStatus, version))
	case !r.Started.IsZero() && r.At.Sub(r.Started) < GaugeGrace:
		notes = append(notes, fmt.Sprintf("%s not exported yet, %s after istiod started", RemoteSyncStatus, r.At.Sub(r.Started).Round(time.Second)))
	default:
		errs = append(errs, fmt.Errorf("this istiod exports no %s, though Istio %s does", RemoteSyncStatus, version))
	}
	if err := errors.Join(errs...); err != nil {
		return "", fmt.Errorf("istiod %s: %w", r.Pod, err)
	}
	return strings.Join(notes, "; "), nil
}

// GaugeGrace is how long after istiod's start its sync-status gauge may
// be missing: a ticker writes it every 15 s.
const GaugeGrace = 20 * time.Second

// GaugeExported says whether an Istio version exports the sync-status
// gauge (added in 1.29.0). A version that does not parse is held to it.
func GaugeExported(version string) bool {
	var major, minor int
	if _, err := fmt.Sscanf(version, "%d.%d", &major, &minor); err != nil {
		return true
	}
	return major > 1 || major == 1 && minor >= 29
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
	// Readings is how many readings the window spans (Life); StartedInRun
	// says its first reading's counters count too.
	Readings     int
	StartedInRun bool
}

// Between is the window from earlier to later, two readings of one
// replica. Counters that went down mean istiod restarted between them:
// an error, not a figure.
func Between(earlier, later Reading) (Window, error) {
	w := Window{Pod: later.Pod, From: earlier.At, To: later.At}
	if earlier.Pod != later.Pod {
		return w, fmt.Errorf("readings of two replicas (%s, %s)", earlier.Pod, later.Pod)
	}
	if !earlier.Started.IsZero() && !later.Started.Equal(earlier.Started) {
		return w, fmt.Errorf("istiod %s restarted between %s and %s (its process started at %s, then at %s)", later.Pod, earlier.At.Format(time.TimeOnly), later.At.Format(time.TimeOnly), earlier.Started.Format(time.TimeOnly), later.Started.Format(time.TimeOnly))
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

// Life is one replica's time in the run from its readings, in time order:
// every two consecutive ones must be of one istiod process (Between), and
// the figures are those from the first reading to the last. A replica
// whose process started after since (one the run started, or restarted)
// also answers for the sync timeouts and rejects it counted before its
// first reading: those happened during the run too. One reading is a
// window of no time (only what a replica the run started counted before
// it); none is an error.
func Life(rs []Reading, since time.Time) (Window, error) {
	if len(rs) == 0 {
		return Window{}, fmt.Errorf("no reading: no window to judge")
	}
	for i := 1; i < len(rs); i++ {
		if _, err := Between(rs[i-1], rs[i]); err != nil {
			return Window{}, err
		}
	}
	w, err := Between(rs[0], rs[len(rs)-1])
	if err != nil {
		return w, err
	}
	w.Readings = len(rs)
	if first := rs[0]; !first.Started.IsZero() && first.Started.After(since) {
		w.StartedInRun = true
		w.SyncTimeouts += first.Counters[RemoteSyncTimeouts]
		w.Rejects += first.Counters[XDSRejects]
	}
	return w, nil
}

// MinWindow is the shortest time over which pushes and convergence are
// judged: a replica read over less may simply have had nothing to push.
const MinWindow = time.Minute

// Budget is what a window of istiod's metrics may show.
type Budget struct {
	// SyncTimeouts allowed (a fault that cuts a remote off expects some).
	SyncTimeouts float64
	// ConvergenceP99 bounds the p99 convergence time.
	ConvergenceP99 time.Duration
}

// Judge rejects a window that broke its budget: a remote sync timed out,
// a proxy rejected configuration, and, over a window of MinWindow or
// more, istiod pushed nothing (the guide's alert: pilot_xds_pushes flat
// for a cluster) or proxies took longer to converge than the budget. A
// window in which no configuration changed observes no convergence (a
// proxy's first configuration is no convergence): that is judged over
// the whole run (the caller requires some replica to have observed it).
func (b Budget) Judge(w Window) error {
	var errs []error
	if w.SyncTimeouts > b.SyncTimeouts {
		errs = append(errs, fmt.Errorf("%s rose by %g (budget %g): a remote cluster took too long to sync", RemoteSyncTimeouts, w.SyncTimeouts, b.SyncTimeouts))
	}
	if w.Rejects > 0 {
		errs = append(errs, fmt.Errorf("%s rose by %g: proxies rejected istiod's configuration", XDSRejects, w.Rejects))
	}
	switch long := w.To.Sub(w.From) >= MinWindow; {
	case !long:
		// Too short to require pushes; rejects and timeouts still count.
	case w.Pushes <= 0:
		errs = append(errs, fmt.Errorf("%s did not rise over %s: istiod pushed nothing", XDSPushes, w.To.Sub(w.From).Round(time.Second)))
	}
	switch {
	case w.To.Sub(w.From) < MinWindow:
	case w.Converged == 0:
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
	conv := "no convergence observed"
	if w.Converged > 0 {
		conv = fmt.Sprintf("convergence p99 ≤ %s over %d", seconds(w.ConvergenceP99), w.Converged)
	}
	return fmt.Sprintf("%s (%d readings over %s): %g pushes, %g rejects, %g sync timeouts, %s", w.Pod, w.Readings, w.To.Sub(w.From).Round(time.Second), w.Pushes, w.Rejects, w.SyncTimeouts, conv)
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
