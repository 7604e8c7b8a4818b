// Package runlock is the machine's one platform lock: a run that creates
// clusters, the local registry and the Docker network holds it from its
// start to its end, so a second run on the same machine refuses at once,
// naming the first, instead of replacing the first run's clusters as stale
// or deleting them at its teardown. The lock is an flock(2) on a file that
// records its owner: the kernel releases it when the owner dies however it
// dies (SIGKILL included), so a dead owner never blocks the next run.
package runlock

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// FileName is the lock's file in the state directory.
const FileName = "platform.lock"

// Owner is who holds the lock: what a refused run prints.
type Owner struct {
	PID       int       `json:"pid"`
	RunID     string    `json:"runId"`
	Command   string    `json:"command"`
	Artifacts string    `json:"artifacts,omitempty"`
	Started   time.Time `json:"started"`
}

func (o Owner) String() string {
	s := fmt.Sprintf("PID %d, run %s, started %s (%s ago): %s", o.PID, o.RunID,
		o.Started.Format(time.RFC3339), time.Since(o.Started).Round(time.Second), o.Command)
	if o.Artifacts != "" {
		s += "; artifacts " + o.Artifacts
	}
	return s
}

// HeldError is the refusal of a second run while a live one holds the lock.
type HeldError struct {
	Path  string
	Owner Owner // zero when the owner had not yet written itself
}

func (e *HeldError) Error() string {
	who, stop := "another meshconform run (it has not yet said who it is)", "stop it"
	if e.Owner.PID != 0 {
		who = "another meshconform run (" + e.Owner.String() + ")"
		stop = fmt.Sprintf("stop it (kill -INT %d)", e.Owner.PID)
	}
	return fmt.Sprintf("%s owns this machine's clusters, local registry and Docker network (%s): "+
		"wait for it to end or %s; two runs at once would delete each other's clusters",
		who, e.Path, stop)
}

// Lock is a held platform lock.
type Lock struct {
	f    *os.File
	path string
}

// Acquire takes the lock in dir for owner, or fails at once with a
// *HeldError while a live process holds it.
func Acquire(dir string, owner Owner) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("platform lock: %w", err)
	}
	path := filepath.Join(dir, FileName)
	for attempt := 0; attempt < 5; attempt++ {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("platform lock: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				held := &HeldError{Path: path}
				held.Owner, _ = Read(dir)
				return nil, held
			}
			return nil, fmt.Errorf("platform lock %s: %w", path, err)
		}
		// The last holder removes the file as it lets go: a lock taken on
		// the inode it removed guards nothing, so take the new file's.
		if same, err := samePath(f, path); err != nil || !same {
			f.Close()
			continue
		}
		l := &Lock{f: f, path: path}
		if err := l.write(owner); err != nil {
			l.Release()
			return nil, err
		}
		return l, nil
	}
	return nil, fmt.Errorf("platform lock %s: it kept changing hands; try again", path)
}

func samePath(f *os.File, path string) (bool, error) {
	a, err := f.Stat()
	if err != nil {
		return false, err
	}
	b, err := os.Stat(path)
	if err != nil {
		return false, nil
	}
	return os.SameFile(a, b), nil
}

func (l *Lock) write(o Owner) error {
	o.Command = strings.TrimSpace(o.Command)
	raw, err := json.Marshal(o)
	if err != nil {
		return err
	}
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("platform lock: %w", err)
	}
	if _, err := l.f.WriteAt(append(raw, '\n'), 0); err != nil {
		return fmt.Errorf("platform lock: %w", err)
	}
	return nil
}

// Read is the owner the lock file in dir records (the zero Owner when
// there is none); it says nothing of whether that owner still lives.
func Read(dir string) (Owner, error) {
	var o Owner
	raw, err := os.ReadFile(filepath.Join(dir, FileName))
	if errors.Is(err, os.ErrNotExist) || len(raw) == 0 {
		return o, nil
	}
	if err != nil {
		return o, err
	}
	return o, json.Unmarshal(raw, &o)
}

// Release removes the lock file and lets go; it is safe on a nil lock and
// twice.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := os.Remove(l.path)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	err = errors.Join(err, l.f.Close()) // closing lets go of the flock
	l.f = nil
	return err
}
