package mesh

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Istioctl runs the istioctl binary of the Istio version under test. It is a
// binary, not a library: one harness drives several Istio versions, and a Go
// module can link only one.
type Istioctl struct {
	Path string
}

// RunAll is Run returning stdout and stderr together, for commands that
// report on stderr (x precheck) and print no secret.
func (i Istioctl) RunAll(ctx context.Context, kubeconfig string, args ...string) (string, error) {
	full := append([]string{"--kubeconfig", kubeconfig}, args...)
	out, err := exec.CommandContext(ctx, i.Path, full...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("istioctl %s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// Run runs istioctl against the cluster of kubeconfig and returns stdout.
// The error names the command and carries stderr's tail; stdout is never put
// into an error, since some commands print secrets.
func (i Istioctl) Run(ctx context.Context, kubeconfig string, args ...string) (string, error) {
	full := append([]string{"--kubeconfig", kubeconfig}, args...)
	cmd := exec.CommandContext(ctx, i.Path, full...)
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
