package clusters

import "testing"

// A pod's container ID names containerd; anything else (another runtime,
// a container not started yet) is refused, not killed by a wrong name.
func TestContainerdID(t *testing.T) {
	if got, err := containerdID("containerd://4f1c9a"); err != nil || got != "4f1c9a" {
		t.Errorf("containerd ID: %q, %v", got, err)
	}
	for _, id := range []string{"", "containerd://", "docker://4f1c9a", "4f1c9a"} {
		if got, err := containerdID(id); err == nil {
			t.Errorf("%q read as %q", id, got)
		}
	}
}

// A task that exited on its own meanwhile is what the kill wanted; any
// other failure (no ctr, no permission) is reported.
func TestTaskGone(t *testing.T) {
	for _, out := range [][]string{
		{"ctr: no running task found: task 4f1c9a not found: not found"},
		{`ctr: container "4f1c9a" in namespace "k8s.io": not found`},
	} {
		if !taskGone(out) {
			t.Errorf("%q read as a failure", out)
		}
	}
	for _, out := range [][]string{{"sh: 1: ctr: not found"}, {"ctr: permission denied"}, nil} {
		if taskGone(out) {
			t.Errorf("%q read as a task gone", out)
		}
	}
}
