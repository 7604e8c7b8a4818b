package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meshconform/meshconform/e2e/bundle"
	"github.com/meshconform/meshconform/e2e/report/page"
)

func newBundle() *cobra.Command {
	var artifacts, out, command, product string
	cmd := &cobra.Command{
		Use:   "bundle",
		Short: "Pack a run's artifacts into meshconform-results-<time>.tar.gz with a SHA-256 manifest and its verdict",
		Long: `Write meshconform-results-<time>.tar.gz from a run's artifacts directory:
JUnit and Ginkgo reports, phases.json, the doctor report, the environment
fingerprint, report.html, a failure's dumps, command.txt (the command that
reproduces the run), verdict.json and MANIFEST.sha256. Kubeconfigs are never
bundled, and a file holding a private key or a credential stops the bundle.
The verdict of the core profile is "certified" only with zero failures and
zero skips. The verdict opens with what it covers: the platform as
--product names it (PRODUCT.yaml: vendor, name, version, type, description,
website_url, documentation_url, contact_email_address, cni) and, from the
run's environment.json, the data plane judged (proxyless gRPC with the
local image source: Envoy sidecars are then not judged), the Istio version
and the clusters. Check a bundle with ` + "`meshconform verify`" + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := artifactsDir(artifacts)
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Dir(dir)
			}
			if err := writeReportPage(cmd.Context(), dir); err != nil {
				fmt.Fprintln(os.Stderr, "meshconform: report page:", err)
			}
			var productYAML []byte
			if product != "" {
				if _, productYAML, err = bundle.ReadProduct(product); err != nil {
					return err
				}
			}
			path, v, err := bundle.Write(bundle.Options{ArtifactsDir: dir, OutDir: out, Command: command, Product: productYAML})
			if err != nil {
				return err
			}
			res, err := bundle.Verify(path)
			if err != nil {
				return fmt.Errorf("the bundle just written does not verify: %w", err)
			}
			fmt.Print(v)
			fmt.Printf("\nbundle %s\n%d files; manifest sha256 %s (publish it beside the bundle)\n", path, res.Files, res.ManifestSHA256)
			return nil
		},
	}
	cmd.Flags().StringVar(&artifacts, "artifacts", "", "the run's artifacts directory (MESHCONFORM_ARTIFACTS; default ./artifacts/latest, the newest make run, else ./artifacts)")
	cmd.Flags().StringVar(&out, "out", "", "directory to write the bundle to (default: beside the artifacts directory)")
	cmd.Flags().StringVar(&command, "command", "", "the command that reproduces the run (default: the artifacts' command.txt)")
	cmd.Flags().StringVar(&product, "product", "", "PRODUCT.yaml naming the platform certified (vendor, name, version, type, description, website_url, documentation_url, contact_email_address, cni)")
	return cmd
}

func newVerify() *cobra.Command {
	return &cobra.Command{
		Use:   "verify BUNDLE",
		Short: "Check a results bundle's integrity (every file against its manifest, the verdict against the reports) and print its verdict",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := bundle.Verify(args[0])
			if err != nil {
				return fmt.Errorf("%s does not verify: %w", args[0], err)
			}
			fmt.Print(res.Verdict)
			fmt.Printf("\n%s: intact, %d files; manifest sha256 %s\n", args[0], res.Files, res.ManifestSHA256)
			if !res.Verdict.Certified() {
				return fmt.Errorf("core profile not certified")
			}
			return nil
		},
	}
}

func newReport() *cobra.Command {
	var artifacts string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Write the run's report page, report.html (and its screenshot report.png when Chromium is installed), to the artifacts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := artifactsDir(artifacts)
			if err != nil {
				return err
			}
			return writeReportPage(cmd.Context(), dir)
		},
	}
	cmd.Flags().StringVar(&artifacts, "artifacts", "", "the run's artifacts directory (MESHCONFORM_ARTIFACTS; default ./artifacts/latest, the newest make run, else ./artifacts)")
	return cmd
}

// newFailures prints the failed specs of every suite report under the
// directories given, with their messages: what a CI log's tail must say.
func newFailures() *cobra.Command {
	return &cobra.Command{
		Use:   "failures [DIR...]",
		Short: "Print every failed spec under the artifacts directories (default ./artifacts), with where and why it failed",
		RunE: func(cmd *cobra.Command, dirs []string) error {
			if len(dirs) == 0 {
				dir, err := artifactsDir("")
				if err != nil {
					return err
				}
				dirs = []string{dir}
			}
			var ins []page.Input
			for _, dir := range dirs {
				in, err := page.ReportsUnder(dir)
				if err != nil {
					return fmt.Errorf("suite reports under %s: %w", dir, err)
				}
				ins = append(ins, in)
			}
			failed := page.Failures(ins)
			if len(failed) == 0 {
				fmt.Println("no failed spec in the suite reports")
				return nil
			}
			fmt.Printf("%d failed:\n", len(failed))
			for _, f := range failed {
				fmt.Println(f)
			}
			return nil
		},
	}
}

// writeReportPage writes report.html to the artifacts, with the verdict a
// bundle of them would hold, and its screenshot report.png when Debian's
// Chromium is installed (scripts/setup-chromium.sh).
func writeReportPage(ctx context.Context, artifactsDir string) error {
	in, err := page.Load(artifactsDir)
	if err != nil {
		return err
	}
	v, err := bundle.Judge(artifactsDir)
	if err != nil {
		return err
	}
	in.Verdict = page.Verdict{Title: "core profile: not certified", Certified: v.Certified(), Lines: verdictLines(v)}
	if v.Certified() {
		in.Verdict.Title = "core profile: certified"
	}
	html, err := page.WriteFile(artifactsDir, in)
	if err != nil {
		return err
	}
	fmt.Println("report page:", html)
	if _, err := exec.LookPath(page.Chromium); err != nil {
		return nil
	}
	png := strings.TrimSuffix(html, ".html") + ".png"
	if err := page.Screenshot(ctx, html, png); err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	fmt.Println("screenshot:", png)
	return nil
}

// verdictLines are the reasons of every profile, or the counts when none.
func verdictLines(v bundle.Verdict) []string {
	var lines []string
	for _, p := range v.Profiles {
		for _, r := range p.Reasons {
			lines = append(lines, p.Name+": "+r)
		}
	}
	return append(lines, fmt.Sprintf("%d specs: %d passed, %d failed, %d skipped", v.Totals.Specs, v.Totals.Passed, v.Totals.Failed, v.Totals.Skipped))
}

// artifactsDir is the artifacts directory of a finished run: the flag,
// else MESHCONFORM_ARTIFACTS, else ./artifacts. Bundling and checking a
// run needs no repository and no cluster, so a certifier can do it anywhere.
// latestRun is root/latest, the newest run's directory, when make's runs
// are under root (each has its own), else root itself.
func latestRun(root string) string {
	if st, err := os.Stat(filepath.Join(root, "latest")); err == nil && st.IsDir() {
		return filepath.Join(root, "latest")
	}
	return root
}

func artifactsDir(flag string) (string, error) {
	dir := flag
	if dir == "" {
		dir = os.Getenv("MESHCONFORM_ARTIFACTS")
	}
	if dir == "" {
		dir = latestRun("artifacts")
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return "", fmt.Errorf("no artifacts directory %s (give --artifacts)", dir)
	}
	return filepath.Abs(dir)
}
