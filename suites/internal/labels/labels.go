// Package labels is the closed set of Ginkgo labels the suites use, one per
// capability, so `--label-filter` selects specs by what they prove.
package labels

const (
	// Platform: clusters, their networking and their teardown.
	Platform = "platform"
	// Networking: pod network, Services and DNS inside a cluster.
	Networking = "networking"
	// Teardown: nothing of a run remains after it.
	Teardown = "teardown"
)
