package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/meshconform/meshconform/e2e/rbac"
	"github.com/meshconform/meshconform/e2e/topology"
)

func newRBAC() *cobra.Command {
	var istioNamespace string
	cmd := &cobra.Command{
		Use:   "rbac",
		Short: "Print the roles a run on an existing mesh needs (and the audit's, optional), to bind to the identity it runs as",
		Long: `rbac prints, as YAML for kubectl apply, the ClusterRole and the Role (in
the mesh's istio namespace, --istio-namespace) a run of meshconform test
--mesh existing needs on each cluster, and the audit's optional roles; a
comment says how to bind them. A run checks its credentials against them
before it touches anything and names every right they lack.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if msgs := validation.IsDNS1123Label(istioNamespace); len(msgs) > 0 {
				return fmt.Errorf("--istio-namespace %q: %v", istioNamespace, msgs)
			}
			b, err := rbac.YAML(istioNamespace)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	cmd.Flags().StringVar(&istioNamespace, "istio-namespace", topology.DefaultIstioNamespace, "the namespace of the mesh's Istio (a clusters file's istioNamespace)")
	return cmd
}
