package runlock

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSecondRunRefusedNamingTheFirst(t *testing.T) {
	dir := t.TempDir()
	first := Owner{PID: os.Getpid(), RunID: "r1", Command: "go test ./suites/e2e", Artifacts: "/a", Started: time.Now()}
	l, err := Acquire(dir, first)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(dir, Owner{PID: 2, RunID: "r2"})
	var held *HeldError
	if !errors.As(err, &held) {
		t.Fatalf("second run not refused: %v", err)
	}
	if held.Owner.RunID != "r1" || !strings.Contains(err.Error(), "go test ./suites/e2e") || !strings.Contains(err.Error(), "kill -INT") {
		t.Errorf("refusal does not name the first run: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("released lock left its file: %v", err)
	}
	l2, err := Acquire(dir, Owner{PID: 3, RunID: "r3"})
	if err != nil {
		t.Fatalf("free lock not taken: %v", err)
	}
	defer l2.Release()
	if o, _ := Read(dir); o.RunID != "r3" {
		t.Errorf("owner recorded %+v, want r3", o)
	}
}

// A dead owner's file (its process gone, the kernel's lock with it) is no
// refusal: the next run takes the lock and records itself.
func TestDeadOwnerDoesNotBlock(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(`{"pid":999999,"runId":"dead"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := Acquire(dir, Owner{PID: os.Getpid(), RunID: "alive"})
	if err != nil {
		t.Fatalf("a dead owner's lock blocked the run: %v", err)
	}
	defer l.Release()
	if o, _ := Read(dir); o.RunID != "alive" {
		t.Errorf("owner %+v, want the new run", o)
	}
}

// A holder that removed the file under a waiting opener leaves that opener
// a lock on a removed inode: Acquire must take the path's current file.
func TestLockOnRemovedFileIsNotKept(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	old, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if same, _ := samePath(old, path); same {
		t.Fatal("a removed file's handle reads as the path's file")
	}
	l, err := Acquire(dir, Owner{PID: 1, RunID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if same, _ := samePath(l.f, path); !same {
		t.Error("the lock is not on the path's file")
	}
}
