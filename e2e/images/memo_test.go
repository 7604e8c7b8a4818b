package images

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// A build runs once however many ask; an error is kept, except a context
// error, which is the caller giving up and not the build failing.
func TestMemo(t *testing.T) {
	l := &Local{}
	var runs atomic.Int32
	release := make(chan struct{})
	build := func(ctx context.Context) (any, error) {
		runs.Add(1)
		select {
		case <-release:
			return "built", nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}

	// A waiter whose context ends leaves at once; the build it started is
	// cancelled with it and not remembered.
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.memo(short, "x", build); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter with an expired context got %v", err)
	}
	time.Sleep(20 * time.Millisecond) // the cancelled build forgets itself

	// The next callers share one fresh build.
	done := make(chan any, 2)
	for range 2 {
		go func() {
			v, err := l.memo(context.Background(), "x", build)
			if err != nil {
				t.Error(err)
			}
			done <- v
		}()
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	for range 2 {
		if v := <-done; v != "built" {
			t.Errorf("got %v, want built", v)
		}
	}
	if n := runs.Load(); n != 2 {
		t.Errorf("build ran %d times, want 2 (the cancelled one, then one shared)", n)
	}

	// A real failure is kept: asking again does not rebuild.
	fail := func(context.Context) (any, error) { runs.Add(1); return nil, errors.New("compile error") }
	for range 2 {
		if _, err := l.memo(context.Background(), "y", fail); err == nil || err.Error() != "compile error" {
			t.Fatalf("got %v, want the build's error", err)
		}
	}
	if n := runs.Load(); n != 3 {
		t.Errorf("failed build ran %d times in all, want once", n-2)
	}
}
