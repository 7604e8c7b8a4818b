package mesh

import (
	"context"
	"strings"
	"testing"
)

// istioctl's discovery cache, and everything else it keeps under HOME
// (1.26 and 1.27 ignore KUBECACHEDIR), lands in the run's directory.
func TestIstioctlKeepsItsCacheInTheRun(t *testing.T) {
	t.Setenv("HOME", "/home/someone")
	cmd := Istioctl{Path: "/bin/true", KubeCache: "/tmp/run/kube-cache"}.command(context.Background(), "/k", []string{"version"})
	env := map[string]string{}
	for _, kv := range cmd.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	if env["HOME"] != "/tmp/run/kube-cache" || env["KUBECACHEDIR"] != "/tmp/run/kube-cache" {
		t.Errorf("HOME=%s KUBECACHEDIR=%s", env["HOME"], env["KUBECACHEDIR"])
	}
}
