package fsutil

import (
	"strings"
	"testing"
)

// A killed debootstrap's mounts are found under its tree, deepest first,
// and nothing else is: not the tree's siblings, not a path that merely
// shares its prefix.
func TestMountsUnder(t *testing.T) {
	table := `22 1 0:21 / /proc rw,nosuid - proc proc rw
31 1 8:1 / / rw - ext4 /dev/sda1 rw
90 31 0:21 / /cache/rootfs/abc.tree/proc rw - proc proc rw
91 31 0:22 / /cache/rootfs/abc.tree/sys rw - sysfs sysfs rw
92 91 0:23 / /cache/rootfs/abc.tree/sys/fs/cgroup rw - cgroup2 cgroup rw
93 31 0:21 / /cache/rootfs/abc.tree2/proc rw - proc proc rw
94 31 0:24 / /cache/rootfs/with\040space.tree/proc rw - proc proc rw
`
	got, err := MountsUnder(strings.NewReader(table), "/cache/rootfs/abc.tree/")
	if err != nil {
		t.Fatal(err)
	}
	if want := "/cache/rootfs/abc.tree/sys/fs/cgroup /cache/rootfs/abc.tree/proc /cache/rootfs/abc.tree/sys"; strings.Join(got, " ") != want {
		t.Errorf("got %q, want %q", strings.Join(got, " "), want)
	}
	got, _ = MountsUnder(strings.NewReader(table), "/cache/rootfs/with space.tree")
	if len(got) != 1 || got[0] != "/cache/rootfs/with space.tree/proc" {
		t.Errorf("escaped space: %q", got)
	}
	if got, _ := MountsUnder(strings.NewReader(table), "/cache/other"); len(got) != 0 {
		t.Errorf("nothing mounted under /cache/other, got %q", got)
	}
}
