package specs

import (
	"context"
	"fmt"
	"regexp"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/workloads"
)

// overPrivilegedBinding is the ClusterRoleBinding remoteSecretOverPrivileged
// creates in the remote (and its repair deletes).
const overPrivilegedBinding = "meshconform-fault-reader-cluster-admin"

// remoteSecretOverPrivileged gives the account of the primary's remote
// secret for the remote cluster-admin in the remote: what a remote secret
// made from an admin's credential, or a reader account someone "fixed"
// with a broad binding, holds. The mesh works exactly as before — istiod
// watches the remote either way — so only a check of the credential's
// rights can tell; the verdict names cluster-admin, and its diagnosis the
// binding that grants it.
var remoteSecretOverPrivileged = seededFault{
	name:   "remote secret's account bound to cluster-admin in the remote",
	ref:    "Install Primary-Remote: Attach cluster2 as a remote (istioctl create-remote-secret's istio-reader-service-account, istio-reader-clusterrole)",
	spec:   "install: remote secrets hold least privilege",
	doctor: "remote-secret-rbac",
	check:  func(ctx context.Context, e *faultEnv) error { return e.vm.RemoteCredentialsLeastPrivilege(ctx) },
	cause: func(e *faultEnv) *regexp.Regexp {
		return regexp.MustCompile(`remote secret \S+ on ` + regexp.QuoteMeta(e.vm.Primary.Name) + ` \(cluster ` + regexp.QuoteMeta(e.vm.Away.Name) +
			`\): \S+ may also: cluster-admin \(every verb on every resource\), write secrets[\s\S]*ClusterRoleBinding ` +
			regexp.QuoteMeta(overPrivilegedBinding) + ` grants ClusterRole cluster-admin`)
	},
	seed: func(ctx context.Context, e *faultEnv) error {
		sa, err := remoteSecretAccount(ctx, e)
		if err != nil {
			return err
		}
		crb, err := workloads.AsUnstructured(&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: overPrivilegedBinding},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects:   []rbacv1.Subject{sa},
		})
		if err != nil {
			return err
		}
		if err := workloads.ApplyObject(ctx, e.vm.Away.Client, crb); err != nil {
			return fmt.Errorf("bind %s/%s to cluster-admin in %s: %w", sa.Namespace, sa.Name, e.vm.Away.Name, err)
		}
		return nil
	},
	repair: func(ctx context.Context, e *faultEnv) error {
		crb, err := workloads.AsUnstructured(&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: overPrivilegedBinding}})
		if err != nil {
			return err
		}
		// The seed applied it: ours, deleted as ours (gone already is fine).
		if err := workloads.DeleteObject(ctx, e.vm.Away.Client, crb); err != nil {
			return fmt.Errorf("delete ClusterRoleBinding %s in %s: %w", overPrivilegedBinding, e.vm.Away.Name, err)
		}
		return nil
	},
}

// remoteSecretAccount is the service account whose token the primary's
// remote secret for the remote holds (read from the token's subject; the
// token itself is never read out).
func remoteSecretAccount(ctx context.Context, e *faultEnv) (rbacv1.Subject, error) {
	secrets, err := mesh.RemoteSecrets(ctx, e.vm.Primary)
	if err != nil {
		return rbacv1.Subject{}, err
	}
	for _, s := range secrets {
		if s.Cluster != e.vm.Away.Name {
			continue
		}
		if s.Err != nil {
			return rbacv1.Subject{}, fmt.Errorf("remote secret %s: %w", s.Name, s.Err)
		}
		ns, name, ok := s.Identity.ServiceAccount()
		if !ok {
			return rbacv1.Subject{}, fmt.Errorf("remote secret %s authenticates with %s, not a service account token: no account to bind", s.Name, s.Identity.Auth)
		}
		return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}, nil
	}
	return rbacv1.Subject{}, fmt.Errorf("no remote secret for %s on %s", e.vm.Away.Name, e.vm.Primary.Name)
}
