// The local source's build memo: each expensive shared step (a Go build,
// a debootstrap) runs once per run, whoever asks first.

package images

import (
	"context"
	"errors"
	"fmt"
)

// lazy runs an expensive shared step (a Go build, a debootstrap) at most
// once, however many images need it.
type lazy struct {
	done chan struct{}
	val  any
	err  error
}

// memo runs fn at most once per Local for key, in a goroutine of its own;
// every caller, concurrent or later, gets its result. A build started in the
// background and the phase that needs it later so share one build. Each
// caller waits only as long as its own ctx allows. fn runs with the context
// of the caller that started it; a result that is a context error (that
// caller gave up) is not kept, so the next caller starts afresh.
func (l *Local) memo(ctx context.Context, key string, fn func(ctx context.Context) (any, error)) (any, error) {
	for {
		l.mu.Lock()
		if l.memos == nil {
			l.memos = map[string]*lazy{}
		}
		lz, ok := l.memos[key]
		if !ok {
			lz = &lazy{done: make(chan struct{})}
			l.memos[key] = lz
			go func() {
				lz.val, lz.err = fn(ctx)
				if isContextErr(lz.err) {
					l.mu.Lock()
					delete(l.memos, key)
					l.mu.Unlock()
				}
				close(lz.done)
			}()
		}
		l.mu.Unlock()
		select {
		case <-lz.done:
			// The caller that started it gave up, not this one: start again.
			if isContextErr(lz.err) && ctx.Err() == nil {
				continue
			}
			return lz.val, lz.err
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %s: %w", key, ctx.Err())
		}
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// do runs fn as the timed phase name once per Local; fn says whether its
// result came from the cache, which the phase line reports.
func (l *Local) do(ctx context.Context, name string, fn func(ctx context.Context) (val any, cached bool, err error)) (any, error) {
	return l.memo(ctx, name, func(ctx context.Context) (any, error) {
		var val any
		_, err := l.Run.TimeNote(name, func() (string, error) {
			var cached bool
			var err error
			val, cached, err = fn(ctx)
			if cached {
				return "cached", err
			}
			return "built", err
		})
		return val, err
	})
}
