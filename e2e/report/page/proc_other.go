//go:build !unix

package page

import "os/exec"

// Without process groups, cancellation kills chromium's own process only.
func inGroup(*exec.Cmd)   {}
func killGroup(*exec.Cmd) {}
