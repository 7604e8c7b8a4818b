//go:build linux || darwin

package main

import (
	"path/filepath"
	"syscall"
)

// diskFree is the space available to us on dir's filesystem (walking up to
// the nearest directory that exists); ok is false when it cannot be told.
func diskFree(dir string) (free uint64, ok bool) {
	for {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err == nil {
			return uint64(st.Bavail) * uint64(st.Bsize), true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return 0, false
		}
		dir = parent
	}
}
