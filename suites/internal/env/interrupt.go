package env

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/onsi/ginkgo/v2/types"
)

// interrupts records whether the run was interrupted, by a signal (SIGINT
// or SIGTERM, which Ginkgo treats alike) or by Ginkgo itself (its -timeout,
// an interrupted spec): an interrupted run spends its grace period on
// deleting what it made, not on dumps and log exports.
type interrupts struct {
	n atomic.Int32
	// signalled is closed at the first signal.
	signalled chan struct{}
}

// watchInterrupts counts the signals that interrupt the suite (Ginkgo
// handles them; this only listens too), and keeps the process alive when
// its standard output breaks: `go test` dies on SIGTERM at once, and the
// suite's next line to the pipe it held would otherwise kill the suite
// with SIGPIPE in the middle of its teardown.
func watchInterrupts() *interrupts {
	in := &interrupts{signalled: make(chan struct{})}
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		for range ch {
			if in.n.Add(1) == 1 {
				close(in.signalled)
			}
		}
	}()
	return in
}

// until is ctx, cancelled as well when a signal comes: for diagnostics,
// which a signal cuts short so that the deletion after them starts.
func (in *interrupts) until(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-in.signalled:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// saw counts a spec Ginkgo interrupted: a signal, or the suite's
// -timeout (a spec's own NodeTimeout is no interrupt: the run goes on).
func (in *interrupts) saw(rep types.SpecReport) {
	if rep.State == types.SpecStateInterrupted ||
		rep.State == types.SpecStateTimedout && strings.Contains(rep.Failure.Message, "suite timeout") {
		in.n.Add(1)
	}
}

// happened reports whether the run was interrupted.
func (in *interrupts) happened() bool { return in != nil && in.n.Load() > 0 }
