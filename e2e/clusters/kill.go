package clusters

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	kindexec "sigs.k8s.io/kind/pkg/exec"
)

// KillContainers kills at once (SIGKILL, through the node's containerd)
// the containers ids — as a pod's status names them, "containerd://ID" —
// on node nodeName of cluster name, a cluster meshconform made: for a
// fault seeder that needs a pod's process gone now, not at the end of its
// shutdown (deleting the pod, even with a grace period of 0, leaves the
// process to the kubelet's own grace period). A container already gone is
// no error.
func (m *Manager) KillContainers(ctx context.Context, name, nodeName string, ids []string) error {
	kns, err := m.provider.ListNodes(name)
	if err != nil {
		return fmt.Errorf("cluster %s: list nodes: %w", name, err)
	}
	for _, kn := range kns {
		if kn.String() != nodeName {
			continue
		}
		for _, id := range ids {
			cid, err := containerdID(id)
			if err != nil {
				return err
			}
			out, err := kindexec.CombinedOutputLines(kn.CommandContext(ctx, "ctr", "-n", "k8s.io", "task", "kill", "--signal", "SIGKILL", cid))
			if err != nil && !taskGone(out) {
				return fmt.Errorf("node %s: kill container %s: %w: %s", nodeName, cid, err, strings.Join(out, "; "))
			}
		}
		return nil
	}
	return fmt.Errorf("cluster %s has no node %s", name, nodeName)
}

// containerdID is the containerd ID of a pod's container status ID.
func containerdID(id string) (string, error) {
	cid, ok := strings.CutPrefix(id, "containerd://")
	if !ok || cid == "" {
		return "", fmt.Errorf("container %q: not a containerd container ID", id)
	}
	return cid, nil
}

// taskGone says whether ctr failed because the container no longer runs:
// its task exited on its own meanwhile, or the container is removed.
func taskGone(out []string) bool {
	return goneTask.MatchString(strings.Join(out, " "))
}

var goneTask = regexp.MustCompile(`no running task found|container "[^"]+" in namespace "[^"]+": not found`)
