//go:build !unix

package main

import (
	"os"
	"os/exec"
)

// interruptGroupOnCancel sends cmd an interrupt when its context ends.
func interruptGroupOnCancel(cmd *exec.Cmd) {
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
}
