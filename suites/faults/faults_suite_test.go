// Package faults is the seeded-fault self-test and, on the same clusters
// and install, the resilience specs: the platform, the mesh (installed
// once), each fault seeded, caught and repaired in turn, then the mesh
// under control-plane and network faults (suites/resilience runs those
// alone), then uninstall and the teardown audit.
package faults

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/meshconform/meshconform/suites/internal/env"
	"github.com/meshconform/meshconform/suites/internal/specs"
)

func TestFaults(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Seeded Faults Suite")
}

var _ = Describe("meshconform seeded faults", Ordered, func() {
	env.Setup()
	// One deployment of the sample apps for both contexts.
	apps := specs.NewSharedApps()
	specs.Faults(apps)
	specs.Resilience(apps)
	specs.RemoveSharedApps(apps)
	specs.Uninstall()
})

// Teardown and its audit run after every spec, even after a failure or an
// interrupt, and report as a testcase of their own.
var _ = env.AfterSuiteTeardown()
