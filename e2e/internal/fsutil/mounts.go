package fsutil

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// MountsUnder lists the mount points at or below dir in a mountinfo table
// (/proc/self/mountinfo's format), deepest first: the order they can be
// unmounted in. A root filesystem build killed mid-way (debootstrap
// unmounts /proc and /sys only in its exit trap, which SIGKILL skips)
// leaves such mounts, and a tree with a mount inside can be neither
// removed nor measured honestly (/proc/kcore).
func MountsUnder(mountinfo io.Reader, dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	var out []string
	sc := bufio.NewScanner(mountinfo)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// ID parentID major:minor root mountpoint options ...
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool { return strings.Count(out[i], "/") > strings.Count(out[j], "/") })
	return out, nil
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%3o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// RemoveTree removes dir after detaching every mount left inside it,
// deepest first, so that a killed build's tree goes whole and nothing
// outside it (the host's /proc, /sys) is touched through the mount.
func RemoveTree(dir string) error {
	if err := unmountUnder(dir); err != nil {
		// Removing through a live mount would reach the host's files.
		return err
	}
	return os.RemoveAll(dir)
}
