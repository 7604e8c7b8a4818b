package harness

import (
	"context"
	"sync"
)

// background runs work that outlives the step that starts it (the
// prebuild of Istio and the sample apps) and ends with the run: nothing
// starts after stop, and stop cancels and waits for what runs, so no build
// outlives the run or leaves its cache entry half written.
type background struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	done   bool
}

func newBackground() *background {
	b := &background{}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b
}

// start runs fn in the background with the run's background context.
func (b *background) start(fn func(ctx context.Context)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		fn(b.ctx)
	}()
}

// stop cancels what still runs and waits for it.
func (b *background) stop() {
	b.mu.Lock()
	b.done = true
	b.mu.Unlock()
	b.cancel()
	b.wg.Wait()
}
