package harness

import (
	"strings"
	"testing"
)

func TestCapacity(t *testing.T) {
	roomy := capacity{MemTotal: 16 * gib, DockerFree: 50 * gib, CacheFree: 50 * gib, SecurityOptions: []string{"name=seccomp,profile=default"}}
	if err := roomy.check(3); err != nil {
		t.Errorf("a 16 GiB machine with 50 GiB free refused: %v", err)
	}
	// This machine's own figures (23.5 GiB, one disk): a correct
	// machine must pass.
	here := capacity{MemTotal: 25276157952, DockerFree: 57 * gib, CacheFree: 57 * gib, SameDisk: true}
	if err := here.check(2); err != nil {
		t.Errorf("this machine refused: %v", err)
	}
	unknown := capacity{MemTotal: 8 * gib, DockerFree: -1, CacheFree: -1}
	if err := unknown.check(2); err != nil {
		t.Errorf("unknown disks (a remote daemon) refused: %v", err)
	}
	cases := map[string]struct {
		c        capacity
		clusters int
		want     string
	}{
		"4 GiB for three clusters":            {capacity{MemTotal: 4 * gib, DockerFree: -1, CacheFree: -1}, 3, "memory"},
		"Docker's disk full":                  {capacity{MemTotal: 16 * gib, DockerFree: 5 * gib, CacheFree: 50 * gib}, 2, "Docker's root"},
		"no room for the cache":               {capacity{MemTotal: 16 * gib, DockerFree: 50 * gib, CacheFree: gib}, 2, "image cache"},
		"one disk, enough for each, not both": {capacity{MemTotal: 16 * gib, DockerFree: 10 * gib, CacheFree: 10 * gib, SameDisk: true}, 2, "Docker and the image cache"},
		"userns-remap":                        {capacity{MemTotal: 16 * gib, DockerFree: -1, CacheFree: -1, SecurityOptions: []string{"name=userns"}}, 2, "privileged"},
	}
	for name, tc := range cases {
		err := tc.c.check(tc.clusters)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error naming %q", name, err, tc.want)
		}
	}
}
