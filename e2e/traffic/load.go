// Package traffic keeps traffic running through the mesh while something
// changes under it (an upgrade, a fault), records every request, and judges
// the time line phase by phase against stated budgets.
//
// The load runs from this machine: each request is one GET /call?n=1 to a
// frontend's LoadBalancer address, so one request is one gRPC call through
// the mesh, and a frontend that cannot be reached counts as a failed
// request like a failed call does. Loops are bounded by a duration and a
// request count and stop by themselves.
package traffic

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/frontend"
)

// Stream is one flow of requests: from a cluster's frontend, to any
// backend, or (Only) to one cluster's backends only.
type Stream struct {
	Name string
	// From is the frontend's cluster, Base its URL (http://addr).
	From, Base string
	// Headers go with every call ("key:value"); Only is the cluster every
	// answer must come from, when the stream targets one.
	Headers []string
	Only    string
}

// Sample is one request and what became of it.
type Sample struct {
	Stream  string
	At      time.Time
	Latency time.Duration
	// Err is why the request failed ("" when answered).
	Err string
	// ServedBy is the cluster that holds the address the frontend's
	// connection reached, Peer (proven by the network or the API servers,
	// not by the backend's word); Claimed is the cluster the backend named.
	ServedBy, Claimed string
	Peer              netip.Addr
	// Frontend is the frontend pod; CallerProxy and ServerProxy the Istio
	// versions the frontend's and the backend's agents report.
	Frontend, CallerProxy, ServerProxy string
}

// OK reports whether the request was answered.
func (s Sample) OK() bool { return s.Err == "" }

// Mark starts a phase at At. Steady, when set, is when the phase's action
// had finished and the mesh was expected to be settled: the span from
// Steady to the phase's end is judged for versions.
type Mark struct {
	Name   string
	At     time.Time
	Steady time.Time
}

// Config bounds a load.
type Config struct {
	// Rate is requests per second per stream.
	Rate float64
	// MaxDuration and MaxRequests bound the load; it stops at whichever
	// comes first, or at Stop.
	MaxDuration time.Duration
	MaxRequests int
	// Placement proves where an answer came from: the cluster that holds
	// the address the frontend's connection reached (checks.Placement.
	// ClusterOf, by pod range or by the pods listed before the load: it is
	// safe to share with checks that add pods to it).
	Placement *checks.Placement
}

// Validate rejects a load that is unbounded or cannot be judged.
func (c Config) Validate(streams []Stream) error {
	switch {
	case c.Rate <= 0 || c.Rate > 100:
		return fmt.Errorf("rate %.1f/s per stream: want 0 < rate ≤ 100", c.Rate)
	case c.MaxDuration <= 0 || c.MaxRequests <= 0:
		return fmt.Errorf("a load needs a maximum duration and a maximum request count")
	case len(streams) == 0:
		return fmt.Errorf("no stream: nothing to load")
	case c.Placement == nil:
		return fmt.Errorf("no placement: answers could not be placed")
	}
	for _, s := range streams {
		if s.Base == "" || s.Name == "" {
			return fmt.Errorf("stream %q has no name or no frontend address", s.Name)
		}
	}
	return nil
}

// Load is a running load.
type Load struct {
	cfg     Config
	streams []Stream
	start   time.Time
	cancel  context.CancelFunc
	done    chan struct{}

	mu      sync.Mutex
	samples []Sample
	marks   []Mark
	sent    int
}

// Start starts the streams, each at cfg.Rate, until ctx ends, a bound is
// reached or Stop is called. The first phase is named first.
func Start(ctx context.Context, cfg Config, streams []Stream, first string) (*Load, error) {
	if err := cfg.Validate(streams); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.MaxDuration)
	l := &Load{cfg: cfg, streams: streams, start: time.Now(), cancel: cancel, done: make(chan struct{})}
	l.marks = []Mark{{Name: first, At: l.start}}
	var wg sync.WaitGroup
	for _, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.run(ctx, s)
		}()
	}
	go func() {
		wg.Wait()
		close(l.done)
	}()
	return l, nil
}

// maxInFlight bounds one stream's concurrent requests: a frontend that
// hangs holds at most this many (each ends at checks.Call's deadline).
const maxInFlight = 32

func (l *Load) run(ctx context.Context, s Stream) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / l.cfg.Rate))
	defer tick.Stop()
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !l.take() {
			return
		}
		at := time.Now()
		select {
		case sem <- struct{}{}:
		default:
			// Every slot is held by a request still waiting: this one is
			// not sent, and counts as failed.
			l.record(Sample{Stream: s.Name, At: at, Err: fmt.Sprintf("not sent: %d requests of this stream still waiting", maxInFlight)})
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			l.record(l.one(ctx, s, at))
		}()
	}
}

// take counts one more request against MaxRequests.
func (l *Load) take() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sent >= l.cfg.MaxRequests {
		return false
	}
	l.sent++
	return true
}

func (l *Load) one(ctx context.Context, s Stream, at time.Time) Sample {
	// A request started before Stop finishes: its outcome is real.
	calls, err := frontend.Call(context.WithoutCancel(ctx), s.Base, 1, s.Headers...)
	smp := Sample{Stream: s.Name, At: at, Latency: time.Since(at), Frontend: calls.Frontend.Pod, CallerProxy: calls.Frontend.ProxyVersion}
	switch {
	case err != nil:
		smp.Err = "frontend: " + err.Error()
	case len(calls.Results) != 1:
		smp.Err = fmt.Sprintf("frontend answered %d results for 1 call", len(calls.Results))
	case calls.Results[0].Error != "":
		smp.Err = calls.Results[0].Error
	default:
		r := calls.Results[0]
		smp.Claimed, smp.ServerProxy = r.Cluster, r.ProxyVersion
		if ap, err := netip.ParseAddrPort(r.PeerAddr); err == nil {
			smp.Peer = ap.Addr().Unmap()
			smp.ServedBy, _ = l.cfg.Placement.ClusterOf(smp.Peer)
		}
	}
	return smp
}

func (l *Load) record(s Sample) {
	l.mu.Lock()
	l.samples = append(l.samples, s)
	l.mu.Unlock()
}

// Phase starts a new phase now.
func (l *Load) Phase(name string) {
	l.mu.Lock()
	l.marks = append(l.marks, Mark{Name: name, At: time.Now()})
	l.mu.Unlock()
}

// Steady records that the current phase's action has finished.
func (l *Load) Steady() {
	l.mu.Lock()
	l.marks[len(l.marks)-1].Steady = time.Now()
	l.mu.Unlock()
}

// Running reports whether the load still runs (no bound reached).
func (l *Load) Running() bool {
	select {
	case <-l.done:
		return false
	default:
		return true
	}
}

// Stop ends the load, waits for requests in flight and returns the record.
func (l *Load) Stop() Record {
	l.cancel()
	<-l.done
	return l.Snapshot()
}

// Snapshot is the record so far, without stopping the load: requests
// still in flight are not in it yet. An answer not placed when it came
// (from a pod the placement had not listed yet, on clusters without pod
// ranges) is placed again now.
func (l *Load) Snapshot() Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.samples {
		if s := &l.samples[i]; s.ServedBy == "" && s.Peer.IsValid() {
			s.ServedBy, _ = l.cfg.Placement.ClusterOf(s.Peer)
		}
	}
	return Record{Streams: l.streams, Samples: append([]Sample(nil), l.samples...), Marks: append([]Mark(nil), l.marks...), Start: l.start, End: time.Now(), Rate: l.cfg.Rate}
}

// Record is a finished load: its streams, every request, the phases.
type Record struct {
	Streams    []Stream
	Samples    []Sample
	Marks      []Mark
	Start, End time.Time
	Rate       float64
}
