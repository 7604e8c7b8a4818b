package specs

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/meshconform/meshconform/suites/internal/env"
	"github.com/meshconform/meshconform/suites/internal/labels"
)

// Teardown declares the last spec of every suite: the run removes all it
// created, and an audit of the machine, before and after, proves it.
func Teardown() {
	It("tears down everything the run created, and the audit finds nothing left", Label(labels.Teardown), func(ctx SpecContext) {
		r := env.Get()
		if r.H.Config.KeepClusters {
			Skip("MESHCONFORM_KEEP_CLUSTERS=1: the clusters are kept for debugging")
		}
		during, err := r.H.Snapshot(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(r.H.Teardown(ctx, r.Failed())).To(Succeed())
		after, err := r.H.Snapshot(ctx)
		Expect(err).NotTo(HaveOccurred())
		AddReportEntry("teardown audit", fmt.Sprintf("before the run: %s; during: %s; after teardown: %s", r.Before, during, after))
		r.H.Run.Figure("audit_before", r.Before)
		r.H.Run.Figure("audit_during", during)
		r.H.Run.Figure("audit_after", after)
		Expect(after.NewSince(r.Before)).To(BeEmpty(), "created by the run and still present")
		var names []string
		for _, cl := range r.Clusters {
			names = append(names, cl.Name)
		}
		left, err := r.H.Leftovers(ctx, names...)
		Expect(err).NotTo(HaveOccurred())
		Expect(left).To(BeEmpty(), "meshconform's objects still present")
	}, NodeTimeout(5*time.Minute))
}
