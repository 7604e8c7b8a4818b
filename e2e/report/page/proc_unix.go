//go:build unix

package page

import (
	"context"
	"errors"
	"os/exec"
	"syscall"
	"time"

	"github.com/meshconform/meshconform/e2e/poll"
)

// inGroup starts cmd as the leader of its own process group, and makes its
// cancellation kill the whole group: chromium forks zygote, GPU and
// network helpers that killing the browser process alone would orphan.
func inGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}

// killGroup kills what is left of cmd's process group after it ended, and
// waits (up to groupGone) until none is left: a helper still dying can
// write to, even recreate, the profile about to be removed. The group's id
// stays taken while any member lives, so this reaches only chromium's
// processes; with none left kill fails with ESRCH.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	// Best effort: a group still alive after groupGone is left to the
	// system, as nothing here can do more than SIGKILL.
	_ = poll.Until(context.Background(), groupGone, 20*time.Millisecond, func(context.Context) error {
		if syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) != nil {
			return nil // ESRCH: no member left
		}
		return errors.New("process group still alive")
	})
}

const groupGone = 5 * time.Second
