// Package e2e is what `make e2e` runs: the main verdict, every suite in
// order on one pair of clusters — platform, then the Istio install (done
// once, shared by the install and conformance specs), then its uninstall and
// the teardown audit. The seeded-fault suite (suites/faults, `make faults`)
// runs apart: it takes longer than all of these together.
package e2e

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/meshconform/meshconform/suites/internal/env"
	"github.com/meshconform/meshconform/suites/internal/specs"
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "meshconform e2e")
}

var _ = Describe("meshconform", Ordered, func() {
	env.Setup()
	specs.Platform()
	specs.Install()
	specs.Conformance()
	specs.Uninstall()
})

// Teardown and its audit run after every spec, even after a failure or an
// interrupt, and report as a testcase of their own.
var _ = env.AfterSuiteTeardown()
