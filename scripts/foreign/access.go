package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/meshconform/meshconform/e2e/rbac"
)

// The vendor hands meshconform no admin credentials: a ServiceAccount per
// cluster, bound to the roles `meshconform rbac` prints (the run's and the
// audit's), and DIR/sa.kubeconfig with a short-lived token of each.

const (
	saNamespace = "acme-ci"
	saName      = "meshconform"
)

// accessUp binds the roles and writes DIR/sa.kubeconfig (contexts east and
// west, as DIR/kubeconfig).
func accessUp(ctx context.Context, dir string) error {
	roles, err := rbac.YAML(istioNamespace)
	if err != nil {
		return err
	}
	admin, err := clientcmd.LoadFromFile(filepath.Join(dir, "kubeconfig"))
	if err != nil {
		return err
	}
	out := clientcmdapi.NewConfig()
	sa := saNamespace + ":" + saName
	for _, s := range sites {
		steps := [][]string{
			{"create", "namespace", saNamespace},
			{"-n", saNamespace, "create", "serviceaccount", saName},
			{"create", "clusterrolebinding", rbac.RunRoleName, "--clusterrole", rbac.RunRoleName, "--serviceaccount", sa},
			{"-n", istioNamespace, "create", "rolebinding", rbac.RunRoleName, "--role", rbac.RunRoleName, "--serviceaccount", sa},
			{"create", "clusterrolebinding", rbac.AuditRoleName, "--clusterrole", rbac.AuditRoleName, "--serviceaccount", sa},
			{"-n", istioNamespace, "create", "rolebinding", rbac.AuditRoleName, "--role", rbac.AuditRoleName, "--serviceaccount", sa},
		}
		if _, err := kubectl(ctx, dir, s, strings.NewReader(string(roles)), "apply", "-f", "-"); err != nil {
			return err
		}
		for _, args := range steps {
			if _, err := kubectl(ctx, dir, s, nil, args...); err != nil {
				return err
			}
		}
		token, err := kubectl(ctx, dir, s, nil, "-n", saNamespace, "create", "token", saName, "--duration", "2h")
		if err != nil {
			return err
		}
		out.Clusters[s.context] = admin.Clusters[s.context]
		out.AuthInfos[s.context+"-"+saName] = &clientcmdapi.AuthInfo{Token: token}
		out.Contexts[s.context] = &clientcmdapi.Context{Cluster: s.context, AuthInfo: s.context + "-" + saName}
	}
	out.CurrentContext = sites[0].context
	path := filepath.Join(dir, "sa.kubeconfig")
	if err := clientcmd.WriteToFile(*out, path); err != nil {
		return err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return err
	}
	fmt.Printf("access: ServiceAccount %s on %s and %s, bound to `meshconform rbac`'s roles: %s\n", sa, sites[0].name, sites[1].name, path)
	return nil
}
