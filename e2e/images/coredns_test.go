package images

import (
	"go/format"
	"strings"
	"testing"
)

// The generated main must be valid, gofmt'ed Go and plug in exactly the
// plugins of kubeadm's Corefile (a missing one fails CoreDNS at start with
// "unknown directive"; the platform specs' DNS checks would catch that).
func TestCorednsMain(t *testing.T) {
	src := corednsMain()
	formatted, err := format.Source([]byte(src))
	if err != nil {
		t.Fatalf("generated main does not parse: %v\n%s", err, src)
	}
	if string(formatted) != src {
		t.Errorf("generated main is not gofmt'ed:\n%s", src)
	}
	for _, d := range []string{"errors", "health", "ready", "kubernetes", "prometheus", "forward", "cache", "loop", "reload", "loadbalance"} {
		if !strings.Contains(src, `"`+d+`": true`) {
			t.Errorf("directive %s of kubeadm's Corefile is not kept", d)
		}
	}
	if !strings.Contains(src, `_ "github.com/coredns/coredns/plugin/metrics"`) {
		t.Error("the prometheus directive's package (plugin/metrics) is not imported")
	}
	if strings.Contains(src, "core/plugin") {
		t.Error("imports every plugin (core/plugin)")
	}
}
