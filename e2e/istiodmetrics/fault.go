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
