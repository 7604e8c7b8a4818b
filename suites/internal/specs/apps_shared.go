package specs

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// SharedApps is one deployment of the sample apps (a frontend and the
// backend in every cluster) that the contexts of one suite run on in
// turn, instead of each deploying and removing its own (about 35 s a
// context): the first context to need them deploys them, and the spec
// RemoveSharedApps declares, after the last context, removes them before
// the mesh is uninstalled. A context given a nil *SharedApps deploys its
// own and removes them when it ends.
type SharedApps struct {
	apps *sampleApps
}

// NewSharedApps is a holder for one suite's shared apps, none deployed.
func NewSharedApps() *SharedApps { return &SharedApps{} }

// take returns the shared apps, deploying them if none are yet; with s
// nil, a deployment of the caller's own.
func (s *SharedApps) take(ctx SpecContext) *sampleApps {
	GinkgoHelper()
	if s == nil {
		return deployFrontendsAndBackends(ctx)
	}
	if s.apps == nil {
		s.apps = deployFrontendsAndBackends(ctx)
	}
	return s.apps
}

// release ends a context's use of a: the context's own apps are removed
// now; shared ones stay for the next context, or RemoveSharedApps.
func (s *SharedApps) release(ctx SpecContext, a *sampleApps) {
	GinkgoHelper()
	if a == nil || s != nil {
		return
	}
	removeApps(ctx, a)
}

// removeApps removes the apps and the namespace of the injection checks.
func removeApps(ctx SpecContext, a *sampleApps) {
	GinkgoHelper()
	a.remove(ctx)
	Expect(a.mesh.RemoveInjectionNamespace(ctx)).To(Succeed())
}

// RemoveSharedApps declares the spec that removes s's apps, whichever
// context deployed them, before the uninstall, whose audit must find
// nothing of theirs. It has no label: a filter that only leaves specs out
// (`!resilience`) keeps it, as it keeps the uninstall.
func RemoveSharedApps(s *SharedApps) {
	It("removes the sample apps the specs before it shared", func(ctx SpecContext) {
		if s.apps == nil {
			Skip("no spec before it deployed them")
		}
		removeApps(ctx, s.apps)
		s.apps = nil
	}, NodeTimeout(5*time.Minute))
}
