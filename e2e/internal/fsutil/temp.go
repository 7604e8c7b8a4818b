package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Temporary files and directories of builds carry the ID of the process
// that writes them (name.<pid>.tmp, name.<pid>.tree), so a process can tell
// its own unfinished work from another live process's (a build running
// beside it) and from what a killed process left behind.

// Owned is ext (".tmp", ".tree") with this process's ID before it.
func Owned(ext string) string { return "." + strconv.Itoa(os.Getpid()) + ext }

// TempName is the name under which this process writes path before
// renaming it into place.
func TempName(path string) string { return path + Owned(".tmp") }

// TempOwner returns the ID of the process that owns a temporary name made
// with Owned, or false for a name that carries none.
func TempOwner(name string) (int, bool) {
	base := filepath.Base(name)
	ext := filepath.Ext(base)
	if ext != ".tmp" && ext != ".tree" {
		return 0, false
	}
	rest := strings.TrimSuffix(base, ext)
	pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Ext(rest), "."))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// IsTemp reports whether name is a temporary name (.tmp or .tree), owned or not.
func IsTemp(name string) bool {
	return strings.HasSuffix(name, ".tmp") || strings.HasSuffix(name, ".tree")
}

// OwnTemp reports whether the temporary name is this process's.
func OwnTemp(name string) bool {
	pid, ok := TempOwner(name)
	return ok && pid == os.Getpid()
}

// StaleTemp reports whether the temporary name is no live process's: its
// owner has exited, or it carries no owner at all. A live owner's build is
// left alone, whoever asks.
func StaleTemp(name string) bool {
	if !IsTemp(name) {
		return false
	}
	pid, ok := TempOwner(name)
	return !ok || !Alive(pid)
}

// Alive reports whether a process with that ID exists.
func Alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
