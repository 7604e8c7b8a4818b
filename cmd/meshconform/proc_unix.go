//go:build unix

package main

import (
	"os/exec"
	"syscall"
)

// interruptGroupOnCancel runs cmd in a process group of its own and, when
// its context ends, sends the group SIGINT instead of killing cmd alone.
func interruptGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
}
