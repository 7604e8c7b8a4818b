package mesh

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Istioctl runs the istioctl binary of the Istio version under test. It is a
// binary, not a library: one harness drives several Istio versions, and a Go
// module can link only one.
type Istioctl struct {
	Path string
	// KubeCache is where istioctl keeps its discovery cache: a directory of
	// the run's, never the user's ~/.kube/cache, which istioctl would
	// otherwise fill with the run's clusters. It is also istioctl's HOME:
	// the istioctl builds of 1.26 and 1.27 ignore KUBECACHEDIR and write
	// $HOME/.kube/cache, and no run should read the user's ~/.istioctl
	// defaults either.
	KubeCache string
}

func (i Istioctl) command(ctx context.Context, kubeconfig string, args []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, i.Path, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	if i.KubeCache != "" {
		// The last of a duplicated variable wins (os/exec).
		cmd.Env = append(os.Environ(), "KUBECACHEDIR="+i.KubeCache, "HOME="+i.KubeCache)
	}
	return cmd
}

// RunAll is Run returning stdout and stderr together, for commands that
// report on stderr (x precheck) and print no secret.
func (i Istioctl) RunAll(ctx context.Context, kubeconfig string, args ...string) (string, error) {
	out, err := i.command(ctx, kubeconfig, args).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("istioctl %s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// Run runs istioctl against the cluster of kubeconfig and returns stdout.
// The error names the command and carries stderr's tail; stdout is never put
// into an error, since some commands print secrets.
func (i Istioctl) Run(ctx context.Context, kubeconfig string, args ...string) (string, error) {
	cmd := i.command(ctx, kubeconfig, args)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tail := strings.TrimSpace(stderr.String())
		if len(tail) > 3000 {
			tail = "…" + tail[len(tail)-3000:]
		}
		return stdout.String(), fmt.Errorf("istioctl %s: %w: %s", strings.Join(args, " "), err, tail)
	}
	return stdout.String(), nil
}
