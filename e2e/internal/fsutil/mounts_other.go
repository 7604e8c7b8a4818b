//go:build !linux

package fsutil

// unmountUnder does nothing where no root filesystem is ever built.
func unmountUnder(string) error { return nil }
