package images

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/meshconform/meshconform/e2e/internal/docker"
)

// startsInDocker starts image tag once, with no network and args as its
// command, and fails unless the program is still running two seconds later
// or has exited 0. The error names the image and carries Docker's own words
// (a missing entrypoint or loader is named there) and the program's output.
// The container is removed either way.
func startsInDocker(ctx context.Context, tag string, args ...string) error {
	run := append([]string{"run", "-d", "--network", "none", "--label", OwnerLabel + "=true", tag}, args...)
	id, err := docker.Run(ctx, run...)
	if err != nil {
		return fmt.Errorf("image %s does not start: %w", tag, err)
	}
	defer docker.Run(context.WithoutCancel(ctx), "rm", "-f", "-v", id) //nolint:errcheck // best effort
	deadline := time.Now().Add(2 * time.Second)
	for {
		state, err := docker.Run(ctx, "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}", id)
		if err != nil {
			return fmt.Errorf("image %s: %w", tag, err)
		}
		f := strings.Fields(state)
		switch {
		case len(f) >= 2 && f[0] == "exited" && f[1] == "0":
			return nil
		case len(f) >= 2 && f[0] == "exited":
			logs, _ := docker.Run(ctx, "logs", "--tail", "20", id)
			return fmt.Errorf("image %s exited %s when started with %q (%s): %s", tag, f[1], args, strings.Join(f[2:], " "), logs)
		case time.Now().After(deadline):
			return nil // still running: it started
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
