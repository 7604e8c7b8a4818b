package images

import (
	"errors"
	"testing"
)

// flock locks belong to open files: two opens in one process contend like
// two processes, which is what these tests rely on.
func TestCacheLock(t *testing.T) {
	dir := t.TempDir()
	run1, err := LockCacheShared(dir)
	if err != nil {
		t.Fatal(err)
	}
	run2, err := LockCacheShared(dir)
	if err != nil {
		t.Fatalf("a second run cannot share the cache: %v", err)
	}
	if _, err := LockCacheExclusive(dir); !errors.Is(err, ErrCacheBusy) {
		t.Fatalf("a prune took the cache while runs held it: %v", err)
	}
	if ok, err := run1.TryExclusive(); ok || err != nil {
		t.Fatalf("a run's teardown prune went ahead while another run held the cache: ok=%v err=%v", ok, err)
	}
	run2.Unlock()
	if ok, err := run1.TryExclusive(); !ok || err != nil {
		t.Fatalf("the last run could not prune at its teardown: ok=%v err=%v", ok, err)
	}
	if _, err := LockCacheShared(dir); !errors.Is(err, ErrCacheBusy) {
		t.Fatalf("a run started while a prune held the cache: %v", err)
	}
	run1.Unlock()
	prune, err := LockCacheExclusive(dir)
	if err != nil {
		t.Fatalf("no prune possible on an unused cache: %v", err)
	}
	prune.Unlock()
}
