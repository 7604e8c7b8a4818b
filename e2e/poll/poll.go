// Package poll is the harness's one way to wait for a condition: every
// wait (a node's podCIDR, a Service's load balancer address, pods Ready, a
// proxy SYNCED, a fault caught) goes through Until, so every wait is
// bounded, stops by itself, honours its context, and fails with the
// condition's last error wrapped: a 403 or a "pod not Ready" surfaces as
// such, never as a bare "context deadline exceeded".
package poll

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Until calls fn at once, then every interval, until fn returns nil, timeout
// passes, or ctx is done. It returns nil as soon as fn does.
//
// fn gets a context that ends when the wait does (timeout or ctx). When the
// end of the wait cuts an attempt short, the error of that attempt (a mere
// context error) does not hide the previous attempt's.
//
// On failure the error says why the wait ended (gave up after timeout, or
// ctx ended) and wraps fn's last error, so errors.Is and errors.As reach
// it; when ctx ended, ctx's error is wrapped too. When ctx was done before
// fn could run, the error says fn was not tried. A timeout or interval
// that is not positive is refused without calling fn.
func Until(ctx context.Context, timeout, interval time.Duration, fn func(context.Context) error) error {
	if timeout <= 0 || interval <= 0 {
		return fmt.Errorf("poll: timeout %s and interval %s must be positive", timeout, interval)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("not tried: %w", err)
	}
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	cut := false // the last attempt was cut short by the end of the wait
	for attempt := 1; ; attempt++ {
		err := fn(wctx)
		if err == nil {
			return nil
		}
		if wctx.Err() != nil && last != nil && isContextErr(err) {
			cut = true
		} else {
			last, cut = err, false
		}
		if ctx.Err() != nil {
			return stopped(ctx, start, attempt, last)
		}
		if wctx.Err() != nil {
			return gaveUp(timeout, attempt, cut, last)
		}
		t := time.NewTimer(interval)
		select {
		case <-wctx.Done():
			t.Stop()
			if ctx.Err() != nil {
				return stopped(ctx, start, attempt, last)
			}
			return gaveUp(timeout, attempt, false, last)
		case <-t.C:
		}
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

func gaveUp(timeout time.Duration, attempts int, cut bool, last error) error {
	note := ""
	if cut {
		note = fmt.Sprintf("; attempt %d cut short at the deadline, error of attempt %d", attempts, attempts-1)
	}
	return fmt.Errorf("gave up after %s (%s%s): %w", timeout, plural(attempts), note, last)
}

func stopped(ctx context.Context, start time.Time, attempts int, last error) error {
	return fmt.Errorf("stopped after %s (%s): %w; last error: %w", time.Since(start).Round(time.Millisecond), plural(attempts), ctx.Err(), last)
}

func plural(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}
