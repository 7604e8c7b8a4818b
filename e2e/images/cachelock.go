package images

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// CacheLockFile is the lock file at the top of the image cache.
const CacheLockFile = ".lock"

// CacheLock is a hold on the image cache (flock(2) on CacheLockFile): every
// run holds it shared from start to end, and a prune needs it exclusive. A
// prune must never run while a run pushes images it has just marked live,
// or while a build writes a *.tmp tree the prune would take for a leftover.
// The kernel drops the lock when its process ends, killed or not.
type CacheLock struct {
	f *os.File
}

// ErrCacheBusy says the cache is held in a way that excludes the request.
var ErrCacheBusy = errors.New("image cache busy")

// LockCacheShared takes the run's shared hold; it fails at once, naming the
// reason, while a prune holds the cache.
func LockCacheShared(dir string) (*CacheLock, error) {
	return lockCache(dir, syscall.LOCK_SH, "a cache prune is running on it; run again when it ends")
}

// LockCacheExclusive takes the hold a prune needs; it fails at once while
// any run holds the cache.
func LockCacheExclusive(dir string) (*CacheLock, error) {
	return lockCache(dir, syscall.LOCK_EX, "a meshconform run is using it; prune when it ends")
}

func lockCache(dir string, how int, busy string) (*CacheLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("image cache %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, CacheLockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("image cache lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s: %s", ErrCacheBusy, dir, busy)
		}
		return nil, fmt.Errorf("image cache lock %s: %w", dir, err)
	}
	return &CacheLock{f: f}, nil
}

// TryExclusive turns a run's shared hold into an exclusive one, for the
// prune at its teardown; it reports false, changing nothing, while another
// run holds the cache too.
func (c *CacheLock) TryExclusive() (bool, error) {
	err := syscall.Flock(int(c.f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}

// Unlock releases the hold.
func (c *CacheLock) Unlock() error {
	if c == nil || c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f = nil
	return err
}
