package poll

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"
)

func TestSuccessFirstTry(t *testing.T) {
	calls := 0
	err := Until(context.Background(), time.Second, time.Hour, func(context.Context) error {
		calls++
		return nil
	})
	if err != nil || calls != 1 {
		t.Fatalf("err %v after %d calls, want nil after 1", err, calls)
	}
}

func TestSuccessAfterRetries(t *testing.T) {
	calls := 0
	err := Until(context.Background(), 5*time.Second, time.Millisecond, func(context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("err %v after %d calls, want nil after 3", err, calls)
	}
}

func TestTimeoutKeepsLastError(t *testing.T) {
	calls := 0
	start := time.Now()
	err := Until(context.Background(), 30*time.Millisecond, 5*time.Millisecond, func(context.Context) error {
		calls++
		return &fs.PathError{Op: "get", Path: "x", Err: fs.ErrPermission}
	})
	if took := time.Since(start); took > time.Second {
		t.Errorf("took %s, want about 30ms", took)
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("err %v does not wrap the last error", err)
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		t.Fatalf("errors.As does not reach the last error in %v", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v claims a context deadline; the condition's error is the news", err)
	}
	if !strings.Contains(err.Error(), "gave up after 30ms") || calls < 2 {
		t.Errorf("err %q after %d calls, want it to say it gave up after 30ms, after retries", err, calls)
	}
}

func TestDeadlineCutKeepsPreviousError(t *testing.T) {
	boom := errors.New("403 forbidden")
	calls := 0
	err := Until(context.Background(), 40*time.Millisecond, time.Millisecond, func(ctx context.Context) error {
		calls++
		if calls == 1 {
			return boom
		}
		<-ctx.Done() // this attempt runs into the end of the wait
		return ctx.Err()
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "cut short") {
		t.Fatalf("err %v, want the first attempt's error kept and the cut named", err)
	}
}

func TestCancelStopsPromptly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	boom := errors.New("not ready")
	calls := 0
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	start := time.Now()
	err := Until(ctx, time.Hour, time.Hour, func(context.Context) error {
		calls++
		return boom
	})
	if took := time.Since(start); took > time.Second {
		t.Errorf("took %s after cancel, want prompt", took)
	}
	if !errors.Is(err, context.Canceled) || !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("err %v after %d calls, want it to wrap context.Canceled and the last error, after 1 call", err, calls)
	}
	if !strings.Contains(err.Error(), "stopped after") {
		t.Errorf("err %q does not say the wait was stopped", err)
	}
}

func TestCtxDoneBeforeFirstTry(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	err := Until(ctx, time.Second, time.Millisecond, func(context.Context) error {
		called = true
		return nil
	})
	if called || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "not tried") {
		t.Fatalf("err %v (called %v), want not tried, wrapping context.Canceled", err, called)
	}
}

func TestFnContextEndsWithTheWait(t *testing.T) {
	start := time.Now()
	err := Until(context.Background(), 20*time.Millisecond, time.Hour, func(ctx context.Context) error {
		<-ctx.Done() // a stuck attempt is released at the timeout
		return ctx.Err()
	})
	if took := time.Since(start); took > time.Second {
		t.Errorf("took %s, want about 20ms", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the only attempt's error", err)
	}
}

func TestRefusesNonPositive(t *testing.T) {
	for _, d := range [][2]time.Duration{{0, time.Second}, {time.Second, 0}} {
		called := false
		err := Until(context.Background(), d[0], d[1], func(context.Context) error { called = true; return nil })
		if err == nil || called {
			t.Errorf("timeout %s interval %s: err %v, called %v; want refused", d[0], d[1], err, called)
		}
	}
}
