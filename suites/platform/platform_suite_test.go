// Package platform is the platform suite on its own: clusters, networking,
// MetalLB, flat network, teardown. `go test ./suites/platform` or
// `ginkgo ./suites/platform`.
package platform

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/meshconform/meshconform/suites/internal/env"
	"github.com/meshconform/meshconform/suites/internal/specs"
)

func TestPlatform(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Platform Suite")
}

var _ = Describe("meshconform platform", Ordered, func() {
	env.Setup()
	specs.Platform()
})

// Teardown and its audit run after every spec, even after a failure or an
// interrupt, and report as a testcase of their own.
var _ = env.AfterSuiteTeardown()
