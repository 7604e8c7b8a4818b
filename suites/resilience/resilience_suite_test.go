// Package resilience is the mesh under control-plane and network faults:
// the platform, the mesh (installed once), each fault injected under
// continuous traffic from every frontend and reverted, propagation timed,
// istiod's metrics judged over the run, then uninstall and the teardown
// audit.
package resilience

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/meshconform/meshconform/suites/internal/env"
	"github.com/meshconform/meshconform/suites/internal/specs"
)

func TestResilience(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Resilience Suite")
}

var _ = Describe("meshconform resilience", Ordered, func() {
	env.Setup()
	specs.Resilience(nil)
	specs.Uninstall()
})

// Teardown and its audit run after every spec, even after a failure or an
// interrupt, and report as a testcase of their own.
var _ = env.AfterSuiteTeardown()
