// Package upgrade is what `make upgrade` runs: Istio upgraded from
// MESHCONFORM_UPGRADE_FROM to MESHCONFORM_UPGRADE_TO on a primary-remote
// mesh under continuous traffic, by canary (with a rollback) and in place,
// each on a fresh install of the same pair of clusters, then teardown.
package upgrade

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/meshconform/meshconform/suites/internal/env"
	"github.com/meshconform/meshconform/suites/internal/specs"
)

func TestUpgrade(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "meshconform upgrade")
}

var _ = Describe("meshconform upgrade", Ordered, func() {
	env.Setup()
	specs.Upgrade()
})

// Teardown and its audit run after every spec, even after a failure or an
// interrupt, and report as a testcase of their own.
var _ = env.AfterSuiteTeardown()
