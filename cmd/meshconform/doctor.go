package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meshconform/meshconform/e2e/doctor"
	"github.com/meshconform/meshconform/e2e/harness"
	"github.com/meshconform/meshconform/e2e/mesh"
)

func newDoctor() *cobra.Command {
	var kubeconfig, contexts, clustersFile, output, revision, save string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Read-only checks of an installed primary-remote mesh, each with its reason and the Istio doc section",
		Long: `Check an installed primary-remote mesh without changing it: remote secrets
(address, rights), one root of trust, the remote's injection webhooks, the
controlPlaneClusters annotation, EXTERNAL_ISTIOD, every istiod replica's
debug/clusterz, the discovery address, versions, node localities.

Without --kubeconfig it checks the clusters ` + "`meshconform up`" + ` kept. Exit status 1
when a check fails (warnings do not fail).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %s: want table or json", output)
			}
			s := newSettings()
			s.flag("MESHCONFORM_KUBECONFIG", kubeconfig)
			s.flag("MESHCONFORM_CONTEXTS", contexts)
			s.flag("MESHCONFORM_CLUSTERS", clustersFile)
			s.flag("MESHCONFORM_ISTIO_REVISION", revision)
			s.flag("MESHCONFORM_MESH", harness.MeshExisting)
			if s.get("MESHCONFORM_KUBECONFIG") == "" {
				if err := useKeptClusters(s); err != nil {
					return err
				}
			}
			cfg, err := s.config()
			if err != nil {
				return err
			}
			cls, closeFn, err := harness.Attach(cmd.Context(), cfg, os.Stderr)
			if err != nil {
				return err
			}
			defer closeFn()
			revision := cfg.IstioRevision
			for _, cl := range cls {
				// The revision running, when only one does and none was
				// named; otherwise the checks say what they cannot find.
				if rev, _, err := mesh.FindIstiod(cmd.Context(), cl, cfg.IstioRevision); err == nil && cl.Primary {
					revision = rev
					break
				}
			}
			// The clusters' Istio IDs are the mesh's own, as the specs read
			// them; an ID it cannot read is the checks' to report.
			trust, err := harness.InstalledIDs(cmd.Context(), cls, revision, os.Stderr)
			if err != nil {
				fmt.Fprintln(os.Stderr, "meshconform doctor: Istio cluster IDs as named in the topology:", err)
			}
			rep := doctor.Examine(cmd.Context(), mesh.Model{Clusters: cls, Revision: revision, TrustDomain: trust})
			if save != "" {
				if err := saveDoctor(rep, save); err != nil {
					return err
				}
			}
			if output == "json" {
				err = rep.WriteJSON(os.Stdout)
			} else {
				err = rep.WriteTable(os.Stdout)
			}
			if err != nil {
				return err
			}
			if failed := rep.Failed(); len(failed) > 0 {
				return fmt.Errorf("doctor: %d checks failed: %s", len(failed), strings.Join(failed, ", "))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the mesh's clusters; several files joined by ':' (MESHCONFORM_KUBECONFIG)")
	fl.StringVar(&contexts, "contexts", "", "which context is which cluster: cluster1=ctxA,cluster2=ctxB (MESHCONFORM_CONTEXTS)")
	fl.StringVar(&clustersFile, "clusters", "", "a file describing the mesh's clusters under any names (MESHCONFORM_CLUSTERS; replaces --contexts)")
	fl.StringVar(&revision, "revision", "", "the control plane's revision, when several run (MESHCONFORM_ISTIO_REVISION)")
	fl.StringVarP(&output, "output", "o", "table", "table or json")
	fl.StringVar(&save, "save", "", "also write the JSON report to this file (e.g. artifacts/doctor.json, bundled)")
	return cmd
}

func saveDoctor(rep doctor.Report, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// useKeptClusters points s at the clusters `meshconform up` kept: their
// settings fill what neither a flag nor the environment gives (settings.get).
func useKeptClusters(s *settings) error {
	raw, err := os.ReadFile(filepath.Join(upDir(), harness.KeptMeshFile))
	if err != nil {
		return fmt.Errorf("no --kubeconfig, and no clusters kept by `meshconform up` (%v)", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && v != "" {
			s.kept[k] = v
		}
	}
	return nil
}
