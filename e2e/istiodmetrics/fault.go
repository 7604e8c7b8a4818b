package istiodmetrics

import "time"

// Fault is a span in which a fault the suite injected may leave a remote
// not synced: readings in it are noted, not judged by Sync, and a
// replica started in it may count Timeouts sync timeouts (one per remote
// it cannot reach: its initial sync times out).
type Fault struct {
	Name     string
	From, To time.Time // To zero: the fault is still going
	Timeouts float64
}

// FaultAt is the fault whose span holds t, or nil.
func FaultAt(fs []Fault, t time.Time) *Fault {
	for i := range fs {
		f := &fs[i]
		if !t.Before(f.From) && (f.To.IsZero() || !t.After(f.To)) {
			return f
		}
	}
	return nil
}

// TimeoutsExpected is how many sync timeouts a replica whose process
// started at started may count: those of the fault it started in, none
// outside one (a replica started before sampling, zero time, too).
func TimeoutsExpected(fs []Fault, started time.Time) float64 {
	if started.IsZero() {
		return 0
	}
	if f := FaultAt(fs, started); f != nil {
		return f.Timeouts
	}
	return 0
}

// Confirm holds, per replica, a disagreement until it has lasted
// ConfirmAfter: one still there at a reading that long after the first is
// confirmed; one gone before was a reading taken mid-transition (a
// remote's state changing between istiod's gauge write, which some
// versions make every 15 s, and its clusterz).
type Confirm struct{ pending map[string]seen }

type seen struct {
	at  time.Time
	msg string
}

// ConfirmAfter is how long a disagreement must last to count.
const ConfirmAfter = GaugeGrace

// Observe takes the outcome of one reading of pod at at (msg "" when it
// agreed). It returns the disagreement this reading confirms (the first
// reading's message, "" for none) and whether one pending is gone.
func (c *Confirm) Observe(pod string, at time.Time, msg string) (confirmed string, cleared bool) {
	if c.pending == nil {
		c.pending = map[string]seen{}
	}
	prev, had := c.pending[pod]
	switch {
	case msg == "":
		delete(c.pending, pod)
		return "", had
	case !had:
		c.pending[pod] = seen{at, msg}
		return "", false
	case at.Sub(prev.at) >= ConfirmAfter:
		c.pending[pod] = seen{at, msg}
		return prev.msg, false
	}
	return "", false
}

// Forget drops what is pending for pod (its next reading starts afresh).
func (c *Confirm) Forget(pod string) { delete(c.pending, pod) }

// Pending are the disagreements not yet confirmed or cleared, by pod.
func (c *Confirm) Pending() map[string]string {
	out := map[string]string{}
	for pod, s := range c.pending {
		out[pod] = s.msg
	}
	return out
}
