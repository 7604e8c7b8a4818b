// Package install is the install suite on its own: the platform, then Istio
// primary-remote step by step, its uninstall, and teardown.
package install

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/meshconform/meshconform/suites/internal/env"
	"github.com/meshconform/meshconform/suites/internal/specs"
)

func TestInstall(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Install Suite")
}

var _ = Describe("meshconform install", Ordered, func() {
	env.Setup()
	specs.Install()
	specs.Uninstall()
})

// Teardown and its audit run after every spec, even after a failure or an
// interrupt, and report as a testcase of their own.
var _ = env.AfterSuiteTeardown()
