// Package doctor checks an installed multicluster mesh (a primary with its
// remotes, or primaries only), read-only, the
// way `linkerd multicluster check` does: named checks, each passing,
// warning or failing with a one-line reason and a link to the Istio guide's
// section it verifies. It changes nothing in the clusters: it reads
// objects, asks istiod's debug endpoints from inside its pods, and asks the
// remote's API server (SubjectAccessReview, never stored) what the remote
// secret's account may do. It never prints a credential.
//
// The doctor diagnoses configuration; the conformance specs judge
// behaviour. A mistake of intent in the apps' own rules (a weight, which
// subset is which, PERMISSIVE where STRICT was meant) is invisible to it:
// the specs catch those.
package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/mesh"
)

// Status of one check.
type Status string

// The three outcomes; Fail means the mesh is broken in a way the guide's
// steps prevent, Warn that it may work but is fragile or unproven.
const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Result is one check's outcome.
type Result struct {
	// ID names the check (stable, for -o json and tests).
	ID string `json:"id"`
	// Cluster the result is about ("" for the mesh as a whole).
	Cluster string `json:"cluster,omitempty"`
	Status  Status `json:"status"`
	// Reason is one line: what was found.
	Reason string `json:"reason"`
	// Doc is the Istio documentation section the check verifies.
	Doc string `json:"doc"`
}

// scope is what one pass of the checks looks at: a primary with the
// remotes it serves, or in a multi-primary mesh with its peers.
type scope struct {
	Primary *clusters.Cluster
	// Others are the remotes Primary serves or, with Peers, the other
	// primaries of a multi-primary mesh, each with its own istiod.
	Others []*clusters.Cluster
	Peers  bool
	// Revision of the control plane ("" = default).
	Revision string

	secrets *remoteSecretsRead // set by run
}

// Report is every check's results, in order.
type Report struct {
	Results []Result `json:"results"`
}

// Failed lists the IDs of failed checks (with their cluster).
func (r Report) Failed() []string {
	var out []string
	for _, res := range r.Results {
		if res.Status == Fail {
			out = append(out, res.key())
		}
	}
	return out
}

// Status is the worst status in the report.
func (r Report) Status() Status {
	worst := Pass
	for _, res := range r.Results {
		if res.Status == Fail {
			return Fail
		}
		if res.Status == Warn {
			worst = Warn
		}
	}
	return worst
}

// Find returns the results of a check.
func (r Report) Find(id string) []Result {
	var out []Result
	for _, res := range r.Results {
		if res.ID == id {
			out = append(out, res)
		}
	}
	return out
}

func (r Result) key() string {
	if r.Cluster == "" {
		return r.ID
	}
	return r.ID + "@" + r.Cluster
}

// Guide sections the checks verify.
const (
	docPrimaryRemote = "https://istio.io/latest/docs/setup/install/multicluster/primary-remote/"
	docAttach        = docPrimaryRemote + "#attach-cluster2-as-a-remote-cluster-of-cluster1"
	docRemoteInstall = docPrimaryRemote + "#install-the-remote-cluster"
	docExternalCP    = docPrimaryRemote + "#configure-cluster1-as-a-primary"
	docEastWest      = docPrimaryRemote + "#install-the-east-west-gateway-in-cluster1"
	docCerts         = "https://istio.io/latest/docs/tasks/security/cert-management/plugin-ca-cert/"
	docLocality      = "https://istio.io/latest/docs/tasks/traffic-management/locality-load-balancing/before-you-begin/"
	docVersions      = "https://istio.io/latest/docs/releases/supported-releases/#control-planedata-plane-skew"
	docTroubleshoot  = "https://istio.io/latest/docs/ops/diagnostic-tools/multicluster/"
)

// check is one named check.
type check struct {
	id  string
	doc string
	run func(ctx context.Context, m scope) []Result
	// servesRemotes: the check judges how a primary serves its remotes
	// (their webhooks, annotation, EXTERNAL_ISTIOD, discovery address),
	// which a multi-primary mesh has none of.
	servesRemotes bool
}

// checks, in the order of the guide's steps.
var checks = []check{
	{"remote-secret", docAttach, remoteSecrets, false},
	{"remote-secret-rbac", docAttach, remoteSecretRBAC, false},
	{"root-cert", docCerts, rootCerts, false},
	{"remote-injection-webhook", docRemoteInstall, remoteWebhooks, true},
	{"control-plane-clusters", docRemoteInstall, controlPlaneClusters, true},
	{"external-istiod", docExternalCP, externalIstiod, true},
	{"istiod-clusterz", docTroubleshoot, clusterz, false},
	{"istiod-metrics", docTroubleshoot, istiodMetrics, false},
	{"discovery-address", docEastWest, discoveryAddress, true},
	{"istio-version", docVersions, versions, false},
	{"node-locality", docLocality, nodeLocality, false},
}

// Examine is the doctor's report on a mesh: one primary with its remotes,
// or in a multi-primary mesh each primary with the others as its peers
// (the checks of how a primary serves remotes left out).
func Examine(ctx context.Context, model mesh.Model) Report {
	if err := model.Check(); err != nil {
		return Report{Results: []Result{{ID: "topology", Status: Fail, Reason: err.Error(), Doc: docPrimaryRemote}}}
	}
	revision := model.Revision
	primaries, remotes := model.Primaries(), model.Remotes()
	if len(primaries) == 0 || (len(primaries) != 1 && len(remotes) > 0) {
		return Report{Results: []Result{{ID: "topology", Status: Fail, Reason: fmt.Sprintf("%d primaries and %d remotes: the doctor judges one primary with its remotes, or primaries only", len(primaries), len(remotes)), Doc: docPrimaryRemote}}}
	}
	if len(primaries) == 1 {
		return run(ctx, scope{Primary: primaries[0], Others: remotes, Revision: revision})
	}
	var rep Report
	for _, p := range primaries {
		peers := clusters.Filter(primaries, func(o *clusters.Cluster) bool { return o != p })
		rep.Results = append(rep.Results, run(ctx, scope{Primary: p, Others: peers, Peers: true, Revision: revision}).Results...)
	}
	return rep
}

// run runs every check on one scope. A check that cannot read what it
// needs fails with that reason: an unreadable mesh is not a healthy one.
func run(ctx context.Context, m scope) Report {
	var r Report
	if m.Primary == nil || len(m.Others) == 0 {
		// Never pass on zero results: a primary with no other cluster is
		// no multicluster mesh.
		r.Results = append(r.Results, Result{ID: "topology", Status: Fail, Reason: "no primary, or no other cluster to check it with", Doc: docPrimaryRemote})
		return r
	}
	m.secrets = &remoteSecretsRead{}
	for _, c := range checks {
		if c.servesRemotes && m.Peers {
			continue
		}
		for _, res := range c.run(ctx, m) {
			res.ID, res.Doc = c.id, c.doc
			r.Results = append(r.Results, res)
		}
	}
	return r
}

func pass(cluster, format string, a ...any) Result {
	return Result{Cluster: cluster, Status: Pass, Reason: fmt.Sprintf(format, a...)}
}

func warn(cluster, format string, a ...any) Result {
	return Result{Cluster: cluster, Status: Warn, Reason: fmt.Sprintf(format, a...)}
}

func fail(cluster, format string, a ...any) Result {
	return Result{Cluster: cluster, Status: Fail, Reason: fmt.Sprintf(format, a...)}
}

// WriteTable prints the report as a table, worst last line: the verdict.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tCLUSTER\tSTATUS\tREASON")
	for _, res := range r.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", res.ID, dash(res.Cluster), strings.ToUpper(string(res.Status)), res.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var docs []string
	seen := map[string]bool{}
	for _, res := range r.Results {
		if res.Status != Pass && !seen[res.Doc] {
			seen[res.Doc] = true
			docs = append(docs, fmt.Sprintf("  %s: %s", res.ID, res.Doc))
		}
	}
	sort.Strings(docs)
	if len(docs) > 0 {
		fmt.Fprintf(w, "\nsee:\n%s\n", strings.Join(docs, "\n"))
	}
	_, err := fmt.Fprintf(w, "\ndoctor: %s\n", strings.ToUpper(string(r.Status())))
	return err
}

// WriteJSON writes the report as JSON (-o json).
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Status  Status   `json:"status"`
		Results []Result `json:"results"`
	}{r.Status(), r.Results})
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
