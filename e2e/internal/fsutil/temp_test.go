package fsutil

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// A build beside this process (another live PID) is never stale; one whose
// process has exited, or a name from before owners were written, is.
func TestTempOwnership(t *testing.T) {
	own := TempName("/cache/bin/istio-1.27.0-abc")
	if !OwnTemp(own) || StaleTemp(own) {
		t.Errorf("%s: want owned by this process and not stale", own)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadName := "/cache/bin/x." + strconv.Itoa(dead.Process.Pid) + ".tmp"
	if OwnTemp(deadName) || !StaleTemp(deadName) {
		t.Errorf("%s: an exited owner's build must be stale", deadName)
	}
	live := exec.Command("sleep", "5")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	defer live.Process.Kill()
	liveName := "/cache/rootfs/node-abc." + strconv.Itoa(live.Process.Pid) + ".tree"
	if OwnTemp(liveName) || StaleTemp(liveName) {
		t.Errorf("%s: another live process's build is neither ours nor stale", liveName)
	}
	for _, legacy := range []string{"/cache/bin/x.tmp", "/cache/rootfs/node-abc.tree", "/cache/debs/registry-123.tree"} {
		if _, ok := TempOwner(legacy); ok || !StaleTemp(legacy) {
			t.Errorf("%s: a name without an owner is stale", legacy)
		}
	}
	if StaleTemp("/cache/bin/x." + strconv.Itoa(os.Getpid())) {
		t.Error("a name that is not temporary is never stale")
	}
	if got := Owned(".tree"); got != "."+strconv.Itoa(os.Getpid())+".tree" {
		t.Errorf("Owned = %q", got)
	}
}
