package harness

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// A dead run's credential directory goes; a live run's (this process's)
// and what is not ours stay.
func TestSweepStale(t *testing.T) {
	dir := t.TempDir()
	dead := filepath.Join(dir, credentialsPrefix+"123.999999999.tmp")
	live := filepath.Join(dir, credentialsPrefix+"456."+strconv.Itoa(os.Getpid())+".tmp")
	other := filepath.Join(dir, "someone-else.1.tmp")
	for _, d := range []string{dead, live, other} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "kubeconfig"), []byte("token: secret"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sweepStale(dir, credentialsPrefix)
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("a dead run's credentials survived the sweep: %v", err)
	}
	for _, d := range []string{live, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was swept: %v", d, err)
		}
	}
}
