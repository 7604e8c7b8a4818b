package verify

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/mesh"
)

// RemoteCredentialsLeastPrivilege rejects a mesh in which a remote secret
// holds a credential that can do far more than istiod's reader role needs
// (bound to cluster-admin, or allowed to write secrets, escalate or bind
// roles, impersonate, exec into pods… — checks.ExcessRights), or too
// little (checks.ReaderNeeds): a leaked remote secret must not be the keys
// to the other cluster. For every primary, the secret it holds for every
// other cluster of the mesh (primary-remote: the primary's secret for each
// remote; multi-primary: each primary's for each other primary, as
// RemoteSynced iterates), the other cluster's own API server is asked
// about the credential's identity (mesh.AskCredentialRights, which says
// why a SubjectAccessReview about the identity rather than the credential
// asking for itself), and judged by checks.JudgeLeastPrivilege and
// checks.JudgeReaderNeeds. The error names the secret, the primary that
// holds it, the cluster it opens and every excess right; its diagnosis
// names the bindings that grant the identity a role. Every secret is
// judged, not only the first bad one. No secret to judge, a missing
// secret, or a credential no review can ask about (an exec or
// auth-provider plugin, a token that is no service account's) fails: no
// verdict on nothing.
//
// A correct mesh fails it with probability zero: RBAC answers
// deterministically, and Istio's reader role grants none of the excess
// rights (checks' TestReaderRoleHoldsNoExcessRight). It costs one
// SubjectAccessReview per right asked, about 50 per secret, nothing
// stored.
func (m *Mesh) RemoteCredentialsLeastPrivilege(ctx context.Context) error {
	if len(m.Primaries()) == 0 || len(m.Clusters) < 2 {
		return fmt.Errorf("%d primaries among %d clusters: no remote secret to judge", len(m.Primaries()), len(m.Clusters))
	}
	var errs []error
	for _, p := range m.Primaries() {
		secrets, err := mesh.RemoteSecrets(ctx, p)
		if err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
		byCluster := map[string]mesh.RemoteSecret{}
		for _, s := range secrets {
			byCluster[s.Cluster] = s
		}
		for _, c := range m.Clusters {
			if c == p {
				continue
			}
			s, ok := byCluster[c.ClusterID]
			if !ok {
				errs = append(errs, fmt.Errorf("no remote secret for cluster %s on %s (label %s in %s): no credential to judge", c.Name, p.Name, mesh.RemoteSecretSelector, p.IstioNamespace()))
				continue
			}
			if err := judgeCredential(ctx, p, c, s); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// judgeCredential judges the credential of remote secret s, held by
// primary p, against the API server of c, the cluster it opens.
func judgeCredential(ctx context.Context, p, c *clusters.Cluster, s mesh.RemoteSecret) error {
	where := fmt.Sprintf("remote secret %s on %s (cluster %s)", s.Name, p.Name, c.Name)
	if s.Err != nil {
		return fmt.Errorf("%s: %v", where, s.Err)
	}
	if s.Identity.User == "" {
		return fmt.Errorf("%s authenticates with %s, not a service account token or a client certificate: no access review can judge its rights", where, s.Identity.Auth)
	}
	rights, err := mesh.AskCredentialRights(ctx, c.Client, s.Identity)
	if err != nil {
		return fmt.Errorf("%s: ask %s's API server: %w", where, c.Name, err)
	}
	var why []string
	if err := checks.JudgeLeastPrivilege(s.Identity.Name(), rights.Excess); err != nil {
		why = append(why, err.Error())
	}
	if err := checks.JudgeReaderNeeds(s.Identity.Name(), rights.Needs); err != nil {
		why = append(why, err.Error())
	}
	if len(why) == 0 {
		return nil
	}
	return withDiagnosis(fmt.Errorf("%s: %s", where, strings.Join(why, "; ")), func() string {
		return describeBindings(ctx, c, s.Identity)
	})
}

// describeBindings names the role bindings of cluster c whose subjects
// include the identity (its user, or one of its groups), and the role each
// grants: where an excess right comes from.
func describeBindings(ctx context.Context, c *clusters.Cluster, id mesh.Identity) string {
	bound := func(subjects []rbacv1.Subject) bool {
		for _, s := range subjects {
			switch s.Kind {
			case rbacv1.ServiceAccountKind:
				if "system:serviceaccount:"+s.Namespace+":"+s.Name == id.User {
					return true
				}
			case rbacv1.UserKind:
				if s.Name == id.User {
					return true
				}
			case rbacv1.GroupKind:
				for _, g := range id.Groups {
					if s.Name == g {
						return true
					}
				}
			}
		}
		return false
	}
	var out []string
	var crbs rbacv1.ClusterRoleBindingList
	if err := c.Client.Resources().List(ctx, &crbs); err != nil {
		out = append(out, "cannot list the ClusterRoleBindings of "+c.Name+": "+err.Error())
	}
	for _, b := range crbs.Items {
		if bound(b.Subjects) {
			out = append(out, fmt.Sprintf("ClusterRoleBinding %s grants %s %s", b.Name, b.RoleRef.Kind, b.RoleRef.Name))
		}
	}
	var rbs rbacv1.RoleBindingList
	if err := c.Client.Resources().List(ctx, &rbs); err != nil {
		out = append(out, "cannot list the RoleBindings of "+c.Name+": "+err.Error())
	}
	for _, b := range rbs.Items {
		if bound(b.Subjects) {
			out = append(out, fmt.Sprintf("RoleBinding %s/%s grants %s %s", b.Namespace, b.Name, b.RoleRef.Kind, b.RoleRef.Name))
		}
	}
	if len(out) == 0 {
		return fmt.Sprintf("no role binding of %s names %s or its groups %v", c.Name, id.User, id.Groups)
	}
	sort.Strings(out)
	return fmt.Sprintf("bindings of %s that name %s or its groups: %s", c.Name, id.User, strings.Join(out, "; "))
}
