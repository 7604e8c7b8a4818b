// Package docker runs the docker CLI for the few things kind's library does
// not do for us (networks, the local registry container, audits). Errors
// carry the command and what it printed.
package docker

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Run runs `docker args...` and returns its trimmed stdout.
func Run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// Lines runs `docker args...` and splits its output into non-empty lines.
func Lines(ctx context.Context, args ...string) ([]string, error) {
	out, err := Run(ctx, args...)
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines, nil
}

// Ping checks that a Docker daemon answers, with a message a user can act on.
func Ping(ctx context.Context) error {
	if _, err := exec.LookPath("docker"); err != nil {
		return fmt.Errorf("no docker command on PATH: run `make setup` (installs Debian's docker.io) or install Docker")
	}
	if _, err := Run(ctx, "version", "--format", "{{.Server.Version}}"); err != nil {
		return fmt.Errorf("no Docker daemon answers (run `make setup` to start one): %w", err)
	}
	return nil
}

// Exists reports whether a container (or, with kind "network", a network) of
// that name exists.
func Exists(ctx context.Context, kind, name string) (bool, error) {
	var args []string
	switch kind {
	case "network":
		args = []string{"network", "ls", "--filter", "name=^" + name + "$", "--format", "{{.Name}}"}
	default:
		args = []string{"ps", "-a", "--filter", "name=^" + name + "$", "--format", "{{.Names}}"}
	}
	lines, err := Lines(ctx, args...)
	if err != nil {
		return false, err
	}
	for _, l := range lines {
		if l == name {
			return true, nil
		}
	}
	return false, nil
}
