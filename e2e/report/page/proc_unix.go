//go:build unix

package page

import (
	"os/exec"
	"syscall"
	"time"
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
	for deadline := time.Now().Add(groupGone); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) != nil {
			return
		}
	}
}

const groupGone = 5 * time.Second
