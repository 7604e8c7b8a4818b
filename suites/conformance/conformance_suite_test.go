// Package conformance is the conformance suite on its own: the platform,
// the mesh (installed once), the conformance specs, uninstall and teardown.
package conformance

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/meshconform/meshconform/suites/internal/env"
	"github.com/meshconform/meshconform/suites/internal/specs"
)

func TestConformance(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Conformance Suite")
}

var _ = Describe("meshconform conformance", Ordered, func() {
	env.Setup()
	specs.Conformance()
	specs.Uninstall()
})

// Teardown and its audit run after every spec, even after a failure or an
// interrupt, and report as a testcase of their own.
var _ = env.AfterSuiteTeardown()
