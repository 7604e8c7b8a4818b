// Package rbac is what a run on clusters a user brings (an existing mesh)
// may do, as Kubernetes roles: `meshconform rbac` prints them, a run
// checks its credentials against them before it touches anything
// (Lacking), and make byo-foreign runs under a ServiceAccount bound to
// exactly them.
//
// RunRoles are what the specs need: they create and delete their own
// namespaces and what they put there (workloads, the pull secret, Istio
// traffic rules), port-forward to and exec in pods, and read the mesh
// (webhooks, CRDs, RBAC for the remote secret's rights, nodes for pod
// ranges and localities). Namespaced rights are cluster-wide because the
// run's namespaces do not exist until the run creates them; secrets are
// only created there (the pull secret), and read only in the istio
// namespace (the remote secrets). The audit's roles are apart and
// optional: without them the audit reports what it could not list
// instead of failing.
package rbac

import (
	"context"
	"fmt"
	"sort"
	"strings"

	authzv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// Names of the roles.
const (
	RunRoleName   = "meshconform-existing-mesh"
	AuditRoleName = "meshconform-audit"
)

var (
	read  = []string{"get", "list", "watch"}
	write = []string{"get", "list", "watch", "create", "delete", "patch", "update"}
)

// RunRoles are the ClusterRole a run on an existing mesh needs, and its
// Role in the istio namespace.
func RunRoles(istioNamespace string) (*rbacv1.ClusterRole, *rbacv1.Role) {
	return runClusterRole(), &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: metav1.ObjectMeta{Name: RunRoleName, Namespace: istioNamespace},
		// The remote secrets: their server and the identity they carry.
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list"}}},
	}
}

func runClusterRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: RunRoleName},
		Rules: []rbacv1.PolicyRule{
			// The run's namespaces, created with its labels and deleted.
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch", "create", "delete", "patch"}},
			// Pod ranges and localities.
			{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list"}},
			// The apps and the injection check's pod; the frontends
			// reached by port-forward; istiod's debug endpoints.
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch", "create", "delete", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"pods/exec", "pods/portforward"}, Verbs: []string{"create", "get"}},
			{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}},
			// The fixtures.
			{APIGroups: []string{""}, Resources: []string{"services", "serviceaccounts"}, Verbs: write},
			// The mesh config, the root certificate istiod writes.
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: read},
			// The pull secret, created in the run's namespaces (never read).
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
			{APIGroups: []string{""}, Resources: []string{"events", "endpoints"}, Verbs: read},
			{APIGroups: []string{"apps"}, Resources: []string{"deployments", "replicasets"}, Verbs: write},
			// The environment record reads kube-system's daemon sets (the
			// CNI, kube-proxy).
			{APIGroups: []string{"apps"}, Resources: []string{"daemonsets"}, Verbs: read},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: read},
			// Traffic rules and mTLS policies of the specs.
			{APIGroups: []string{"networking.istio.io", "security.istio.io", "telemetry.istio.io", "extensions.istio.io"}, Resources: []string{"*"}, Verbs: write},
			// The mesh as installed.
			{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations", "validatingwebhookconfigurations"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"clusterroles", "clusterrolebindings", "roles", "rolebindings"}, Verbs: []string{"get", "list"}},
			// The remote secret's identity asked what it may do.
			{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
		},
	}
}

// AuditRoles are what the audit lists beyond RunRole: Kubernetes' other
// cluster-scoped resources, and everything in the istio namespace (read
// only). Optional.
func AuditRoles(istioNamespace string) (*rbacv1.ClusterRole, *rbacv1.Role) {
	cluster := &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: AuditRoleName},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"apiregistration.k8s.io"}, Resources: []string{"apiservices"}, Verbs: []string{"list"}},
			{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"validatingadmissionpolicies", "validatingadmissionpolicybindings", "mutatingadmissionpolicies", "mutatingadmissionpolicybindings"}, Verbs: []string{"list"}},
			{APIGroups: []string{"flowcontrol.apiserver.k8s.io"}, Resources: []string{"flowschemas", "prioritylevelconfigurations"}, Verbs: []string{"list"}},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingressclasses", "ipaddresses", "servicecidrs"}, Verbs: []string{"list"}},
			{APIGroups: []string{"scheduling.k8s.io"}, Resources: []string{"priorityclasses"}, Verbs: []string{"list"}},
			{APIGroups: []string{"node.k8s.io"}, Resources: []string{"runtimeclasses"}, Verbs: []string{"list"}},
			{APIGroups: []string{"storage.k8s.io"}, Resources: []string{"storageclasses", "csidrivers"}, Verbs: []string{"list"}},
			{APIGroups: []string{"gateway.networking.k8s.io"}, Resources: []string{"gatewayclasses"}, Verbs: []string{"list"}},
			{APIGroups: []string{"install.istio.io"}, Resources: []string{"*"}, Verbs: []string{"list"}},
		},
	}
	ns := &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: metav1.ObjectMeta{Name: AuditRoleName, Namespace: istioNamespace},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"get", "list"}}},
	}
	return cluster, ns
}

// YAML renders the roles, and how to bind them, for `meshconform rbac`.
func YAML(istioNamespace string) ([]byte, error) {
	auditCluster, auditNS := AuditRoles(istioNamespace)
	var b strings.Builder
	b.WriteString(`# What a meshconform run on an existing mesh needs (meshconform rbac).
# Bind the meshconform-existing-mesh ClusterRole and Role to the identity
# the run uses, on every cluster; the audit roles are optional (without
# them the audit reports what it could not list), e.g.:
#   kubectl create clusterrolebinding meshconform-existing-mesh \
#     --clusterrole meshconform-existing-mesh --serviceaccount NS:NAME
#   kubectl -n ` + istioNamespace + ` create rolebinding meshconform-existing-mesh \
#     --role meshconform-existing-mesh --serviceaccount NS:NAME
#   kubectl create clusterrolebinding meshconform-audit --clusterrole meshconform-audit --serviceaccount NS:NAME
#   kubectl -n ` + istioNamespace + ` create rolebinding meshconform-audit --role meshconform-audit --serviceaccount NS:NAME
`)
	run, runNS := RunRoles(istioNamespace)
	for _, o := range []any{run, runNS, auditCluster, auditNS} {
		y, err := yaml.Marshal(o)
		if err != nil {
			return nil, err
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return []byte(b.String()), nil
}

// Lacking asks the API server which rights of RunRoles the credentials of
// cs lack (one SelfSubjectAccessReview per right: the ClusterRole's
// cluster-wide, the Role's in its namespace), as "verb resource.group [in
// namespace]", sorted; none is nil.
func Lacking(ctx context.Context, cs kubernetes.Interface, istioNamespace string) ([]string, error) {
	cr, role := RunRoles(istioNamespace)
	var out []string
	for _, scoped := range []struct {
		ns    string
		rules []rbacv1.PolicyRule
	}{{"", cr.Rules}, {role.Namespace, role.Rules}} {
		lacking, err := lacking(ctx, cs, scoped.ns, scoped.rules)
		if err != nil {
			return nil, err
		}
		out = append(out, lacking...)
	}
	sort.Strings(out)
	return out, nil
}

func lacking(ctx context.Context, cs kubernetes.Interface, ns string, rules []rbacv1.PolicyRule) ([]string, error) {
	var out []string
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				resource, sub, _ := strings.Cut(res, "/")
				for _, v := range r.Verbs {
					sar := &authzv1.SelfSubjectAccessReview{Spec: authzv1.SelfSubjectAccessReviewSpec{
						ResourceAttributes: &authzv1.ResourceAttributes{Namespace: ns, Verb: v, Group: g, Resource: resource, Subresource: sub},
					}}
					got, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
					if err != nil {
						return nil, fmt.Errorf("ask what the credentials may do: %w", err)
					}
					if !got.Status.Allowed {
						what := v + " " + qualified(res, g)
						if ns != "" {
							what += " in " + ns
						}
						out = append(out, what)
					}
				}
			}
		}
	}
	return out, nil
}

func qualified(res, group string) string {
	if group == "" {
		return res
	}
	return res + "." + group
}
