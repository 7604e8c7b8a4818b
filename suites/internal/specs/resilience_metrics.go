package specs

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/istiodmetrics"
	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/verify"
	"github.com/meshconform/meshconform/suites/internal/env"
)

// istiod's metrics, read from every running istiod replica of every
// primary through the suite, with each replica's debug/clusterz at the
// same moment; bounded in time, stopped by the suite's end.
const (
	metricsEvery = 10 * time.Second
	metricsMax   = 45 * time.Minute
)

// ConvergenceBudget bounds the p99 of pilot_proxy_convergence_time over
// a replica's life in the run (Istio's buckets: 0.1, 0.5, 1, 3 s…): a
// handful of proxies converge in well under a second here; 3 s leaves a
// loaded machine room and still catches a push that stalls.
var ConvergenceBudget = istiodmetrics.Budget{ConvergenceP99: 3 * time.Second}

// metricsSampler reads istiod's metrics in the background.
type metricsSampler struct {
	vm     *verify.Mesh
	cancel context.CancelFunc
	done   chan struct{}
	// since is when sampling began: a replica whose process started
	// later was started (or restarted) during the run.
	since time.Time

	mu sync.Mutex
	// readings by replica, in time order.
	readings map[string][]istiodmetrics.Reading
	// disagreements are the readings whose remotes were not all synced,
	// or whose gauge disagreed with clusterz, with when; notes what the
	// gauge could not be judged on (istiodmetrics.Sync), counted.
	disagreements []string
	notes         map[string]int
	// errs are readings that could not be taken.
	errs []string
	// faults are the spans in which a fault may leave a remote not synced.
	faults []istiodmetrics.Fault
	// confirm holds a disagreement until it has lasted
	// istiodmetrics.ConfirmAfter: only one that lasts counts.
	confirm istiodmetrics.Confirm
}

// expectFault opens a span in which readings whose remotes are not all
// synced are what the fault expects (noted, not judged), and a replica
// started in it may count timeouts sync timeouts; end closes it, once
// the remote is back.
func (s *metricsSampler) expectFault(name string, timeouts float64) (end func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, istiodmetrics.Fault{Name: name, From: time.Now(), Timeouts: timeouts})
	i := len(s.faults) - 1
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.faults[i].To.IsZero() {
			s.faults[i].To = time.Now()
		}
	}
}

func startMetricsSampler(ctx context.Context, vm *verify.Mesh) *metricsSampler {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), metricsMax)
	s := &metricsSampler{vm: vm, cancel: cancel, done: make(chan struct{}), since: time.Now(), readings: map[string][]istiodmetrics.Reading{}, notes: map[string]int{}}
	go func() {
		defer close(s.done)
		t := time.NewTicker(metricsEvery)
		defer t.Stop()
		for {
			s.sample(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *metricsSampler) stop() {
	s.cancel()
	<-s.done
}

// sample reads every Ready istiod pod of every primary once.
func (s *metricsSampler) sample(ctx context.Context) {
	for _, p := range s.vm.Primaries() {
		pods, err := mesh.IstiodPods(ctx, p, s.vm.Istio.Revision)
		if err != nil {
			s.fail(ctx, fmt.Sprintf("%s: %v", p.Name, err))
			continue
		}
		remotes := mesh.ClusterIDs(s.vm.Others(p))
		for _, pod := range pods {
			if checks.NotReady(pod) != nil {
				// Starting (its remotes not synced yet) or going.
				continue
			}
			raw, err := mesh.IstiodMetrics(ctx, p, pod.Name)
			if err != nil {
				s.failUnlessGoing(ctx, p, pod.Name, err)
				continue
			}
			r, err := istiodmetrics.Parse(pod.Name, time.Now(), raw)
			if err != nil {
				s.fail(ctx, err.Error())
				continue
			}
			cz, err := mesh.RemoteClustersOf(ctx, p, pod.Name)
			if err != nil {
				s.failUnlessGoing(ctx, p, pod.Name, err)
				continue
			}
			s.mu.Lock()
			s.readings[pod.Name] = append(s.readings[pod.Name], r)
			note, err := istiodmetrics.Sync(r, cz, remotes, s.vm.Istio.Version)
			if f := istiodmetrics.FaultAt(s.faults, r.At); f != nil && err != nil {
				// The remote may be in any state; the gauge must still agree.
				s.notes[fmt.Sprintf("during %s, as the fault expects: %v", f.Name, err)]++
				note, err = istiodmetrics.SyncDuringFault(r, cz, remotes, s.vm.Istio.Version)
			}
			if err != nil {
				if first, _ := s.confirm.Observe(pod.Name, r.At, r.At.Format(time.TimeOnly)+" "+err.Error()); first != "" {
					s.disagreements = append(s.disagreements, fmt.Sprintf("%s (and still %s later)", first, istiodmetrics.ConfirmAfter))
				}
			} else {
				if _, cleared := s.confirm.Observe(pod.Name, r.At, ""); cleared {
					s.notes[fmt.Sprintf("a disagreement gone within %s (a reading taken while a remote's state changed)", istiodmetrics.ConfirmAfter)]++
				}
				if note != "" {
					s.notes[note]++
				}
			}
			s.mu.Unlock()
		}
	}
}

// failUnlessGoing records a reading that failed, unless its pod was
// going meanwhile (deleted, terminating or no longer Ready: a replica
// scaled down between the listing and the reading), which is noted.
func (s *metricsSampler) failUnlessGoing(ctx context.Context, cl *clusters.Cluster, pod string, err error) {
	var p corev1.Pod
	if gerr := cl.Client.Resources(cl.IstioNamespace()).Get(ctx, pod, cl.IstioNamespace(), &p); apierrors.IsNotFound(gerr) || gerr == nil && (p.DeletionTimestamp != nil || checks.NotReady(p) != nil) {
		s.mu.Lock()
		s.notes["a reading of a replica that was going, dropped"]++
		s.mu.Unlock()
		return
	}
	s.fail(ctx, err.Error())
}

// fail records a reading that could not be taken, unless the sampler was
// being stopped.
func (s *metricsSampler) fail(ctx context.Context, msg string) {
	if ctx.Err() != nil {
		return
	}
	s.mu.Lock()
	s.errs = append(s.errs, msg)
	s.mu.Unlock()
}

// judgeMetrics stops the sampler and judges what it read (reading once
// more first): every replica read at least twice over a minute, its remotes
// synced in clusterz and the gauge agreeing at every reading (or the
// reason it cannot, reported: istiodmetrics.Sync), and over its time in
// the run no sync timeout, no reject, pushes going out, convergence
// within budget.
func (rs *resilienceRun) judgeMetrics(ctx SpecContext) {
	s := rs.sampler
	Expect(s).NotTo(BeNil(), "no metrics sampler: the suite's BeforeAll did not run")
	// The background loop stops first: a reading of its own landing
	// after this one would put a replica's readings out of time order.
	s.stop()
	s.sample(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	run := env.Get().H.Run
	var pods []string
	for pod := range s.readings {
		pods = append(pods, pod)
	}
	sort.Strings(pods)
	Expect(pods).NotTo(BeEmpty(), "no istiod replica was read (errors: %s)", strings.Join(s.errs, "; "))
	long, converging := 0, 0
	var windows []string
	var errs []error
	for _, pod := range pods {
		rd := s.readings[pod]
		// Every replica answers for its rejects and sync timeouts; one
		// read over MinWindow or more for its pushes and convergence too.
		w, err := istiodmetrics.Life(rd, s.since)
		if err == nil {
			b := ConvergenceBudget
			b.SyncTimeouts = istiodmetrics.TimeoutsExpected(s.faults, rd[0].Started)
			err = b.Judge(w)
		}
		if err != nil {
			errs = append(errs, err)
		}
		if w.To.Sub(w.From) >= istiodmetrics.MinWindow {
			long++
			if w.Converged > 0 {
				converging++
			}
		}
		windows = append(windows, w.Describe())
		run.Figure("istiod_metrics_"+pod, map[string]any{
			"readings": len(rd), "seconds": w.To.Sub(w.From).Seconds(), "started_in_run": w.StartedInRun, "pushes": w.Pushes, "rejects": w.Rejects,
			"sync_timeouts": w.SyncTimeouts, "convergence_p99_seconds": w.ConvergenceP99, "converged": w.Converged,
			"remote_sync": rd[len(rd)-1].States(),
		})
	}
	AddReportEntry("istiod metrics", strings.Join(windows, "\n"))
	run.Figure("istiod_metrics_replicas", len(pods))
	run.Figure("istiod_metrics_sync_disagreements", len(s.disagreements))
	run.Figure("istiod_metrics_sync_notes", s.notes)
	for note, n := range s.notes {
		AddReportEntry("istiod metrics: not judged by the gauge", fmt.Sprintf("%s (%d readings)", note, n))
	}
	Expect(long).To(BeNumerically(">", 0), "no istiod replica was read over %s or more: pushes and convergence unjudged", istiodmetrics.MinWindow)
	// The run changes configuration (the propagation trials, the churn):
	// some replica read over MinWindow must have seen proxies converge.
	Expect(converging).To(BeNumerically(">", 0), "no istiod replica read over %s or more observed a push's convergence (%s): the convergence budget went unjudged", istiodmetrics.MinWindow, istiodmetrics.Convergence)
	for pod, msg := range s.confirm.Pending() {
		AddReportEntry("istiod metrics: a disagreement at the last reading, not confirmed", pod+": "+msg)
	}
	Expect(s.disagreements).To(BeEmpty(), "readings whose remotes were not all synced in debug/clusterz, or whose gauge disagreed with it, for %s or more", istiodmetrics.ConfirmAfter)
	Expect(errs).To(BeEmpty())
	Expect(s.errs).To(BeEmpty(), "metrics readings that failed")
}
