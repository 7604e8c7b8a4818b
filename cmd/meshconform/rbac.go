package main

import (
	"github.com/spf13/cobra"

	"github.com/meshconform/meshconform/e2e/mesh"
	"github.com/meshconform/meshconform/e2e/rbac"
)

func newRBAC() *cobra.Command {
	return &cobra.Command{
		Use:   "rbac",
		Short: "Print the roles a run on an existing mesh needs (and the audit's, optional), to bind to the identity it runs as",
		Long: `rbac prints, as YAML for kubectl apply, the ClusterRole and the Role (in
istio-system) a run of meshconform test --mesh existing needs on each
cluster, and the audit's optional roles; a comment says how to bind them.
A run checks its credentials against them before it touches anything and
names every right they lack.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := rbac.YAML(mesh.Namespace)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
}
