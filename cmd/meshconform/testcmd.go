package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshconform/meshconform/e2e/harness"
)

// testFlags are `meshconform test`'s flags; each names the setting it
// overrides.
type testFlags struct {
	kubeconfig, contexts, mesh      string
	clusters                        string
	topology                        string
	suite, focus, skip, labelFilter string
	junitFile, artifacts            string
	namespaceLabels                 string
	imageRegistry, pullSecret, ca   string
	timeout                         time.Duration
	kept                            bool
}

func newTest() *cobra.Command {
	var f testFlags
	cmd := &cobra.Command{
		Use:   "test",
		Short: "Run a suite: on new kind clusters, or on clusters you bring (--kubeconfig, --contexts)",
		Long: `Run one suite of suites/ with go test, as make e2e does, and write its JUnit
and Ginkgo reports, phases.json, report.html and command.txt (the command
that reproduces the run) to the artifacts directory.

Without --kubeconfig the suite creates its kind clusters and removes them.
With --kubeconfig and --contexts it runs on those clusters and creates or
deletes none: --mesh install installs Istio and removes it after,
--mesh existing tests the mesh already there and installs nothing. Either
way the run removes only the namespaces it created (labelled with its run
ID), and compares a snapshot of every object before and after.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTest(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig of clusters you bring; several files joined by ':' (MESHCONFORM_KUBECONFIG)")
	fl.StringVar(&f.contexts, "contexts", "", "which context is which cluster: cluster1=ctxA,cluster2=ctxB (MESHCONFORM_CONTEXTS)")
	fl.StringVar(&f.clusters, "clusters", "", "a file describing the clusters you bring under any names: per cluster its context, role (primary, controlPlane) and optionally Istio cluster ID (MESHCONFORM_CLUSTERS; replaces --contexts and --topology)")
	fl.StringVar(&f.mesh, "mesh", "", "install (default) or existing (MESHCONFORM_MESH)")
	fl.StringVar(&f.topology, "topology", "", "topology of kindconfigs/: primary-remote (default), primary-remotes, multi-primary (MESHCONFORM_TOPOLOGY)")
	fl.StringVar(&f.suite, "suite", "", "suite of suites/: e2e (default: platform, install, conformance, uninstall), conformance, install, platform, faults, upgrade")
	fl.StringVar(&f.focus, "focus", "", "run only specs whose text matches this regular expression (ginkgo --focus)")
	fl.StringVar(&f.skip, "skip", "", "skip specs whose text matches this regular expression (ginkgo --skip)")
	fl.StringVar(&f.labelFilter, "label-filter", "", "run only specs whose labels match this filter, e.g. 'conformance && !locality-failover' (ginkgo --label-filter)")
	fl.StringVar(&f.namespaceLabels, "namespace-labels", "", "labels for every namespace the run creates, key=value,key=value: what your cluster wants of app namespaces (MESHCONFORM_NAMESPACE_LABELS); the run itself enforces restricted Pod Security on them (local image source)")
	fl.StringVar(&f.imageRegistry, "image-registry", "", "on clusters you bring: pull the sample apps from this registry of yours, host[:port][/path], after `meshconform images push` (MESHCONFORM_IMAGE_REGISTRY)")
	fl.StringVar(&f.pullSecret, "image-pull-secret", "", "a docker config JSON with that registry's credentials, copied into the run's namespaces as a pull secret (MESHCONFORM_IMAGE_PULL_SECRET)")
	fl.StringVar(&f.ca, "image-registry-ca", "", "PEM file of the CA of that registry's certificate, for this machine's checks of it (MESHCONFORM_IMAGE_REGISTRY_CA)")
	fl.StringVar(&f.junitFile, "junit-file", "", "also write the JUnit report here")
	fl.StringVar(&f.artifacts, "artifacts", "", "artifacts directory (MESHCONFORM_ARTIFACTS; default ./artifacts)")
	fl.BoolVar(&f.kept, "kept", false, "run on the clusters `meshconform up` kept (their kubeconfig and contexts; --mesh as up left them)")
	fl.DurationVar(&f.timeout, "timeout", 80*time.Minute, "the whole run's time limit")
	return cmd
}

func runTest(cmd *cobra.Command, f testFlags) error {
	// The environment as given and the arguments: each setting appears once.
	cmdline := reproduce(os.Environ(), os.Args)
	cfg, suite, err := f.checked()
	if err != nil {
		return err
	}
	reports := filepath.Join(cfg.ArtifactsDir, suite)
	if err := os.MkdirAll(reports, 0o755); err != nil {
		return err
	}
	// The suite gets the settings checked here, whole, from one file.
	settingsFile := filepath.Join(cfg.ArtifactsDir, settingsJSON)
	if err := cfg.WriteFile(settingsFile); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cfg.ArtifactsDir, "command.txt"), []byte(cmdline+"\n"), 0o644); err != nil {
		return err
	}
	run := exec.CommandContext(cmd.Context(), "go", f.goTestArgs(suite, reports)...)
	run.Dir, run.Stdout, run.Stderr = cfg.RepoRoot, os.Stdout, os.Stderr
	run.Env = suiteEnv(os.Environ(), settingsFile)
	// The suite runs in a process group of its own; when meshconform is
	// interrupted or terminated, the group gets SIGINT, which Ginkgo turns
	// into its cleanup and teardown (never a SIGKILL that would leave
	// clusters and namespaces behind), with time for it to finish.
	interruptGroupOnCancel(run)
	run.WaitDelay = 15 * time.Minute
	runErr := run.Run()
	if f.junitFile != "" {
		raw, err := os.ReadFile(filepath.Join(reports, "junit.xml"))
		if err == nil {
			err = os.WriteFile(f.junitFile, raw, 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "meshconform: --junit-file:", err)
		}
	}
	if err := writeReportPage(cmd.Context(), cfg.ArtifactsDir); err != nil {
		fmt.Fprintln(os.Stderr, "meshconform: report page:", err)
	}
	if runErr != nil {
		return fmt.Errorf("suite %s failed (reports in %s): %w", suite, reports, runErr)
	}
	return nil
}

// checked is the run's settings from the flags, the environment and the
// kept clusters, and its suite, refused with one clear error before go
// test builds anything or the suite touches a cluster.
func (f testFlags) checked() (harness.Config, string, error) {
	s := newSettings()
	if f.kept {
		if f.kubeconfig != "" || f.contexts != "" {
			return harness.Config{}, "", fmt.Errorf("--kept names the clusters `meshconform up` kept: give it or --kubeconfig/--contexts, not both")
		}
		if err := useKeptClusters(s); err != nil {
			return harness.Config{}, "", err
		}
	}
	s.flag("MESHCONFORM_KUBECONFIG", f.kubeconfig)
	s.flag("MESHCONFORM_CONTEXTS", f.contexts)
	s.flag("MESHCONFORM_CLUSTERS", f.clusters)
	s.flag("MESHCONFORM_MESH", f.mesh)
	s.flag("MESHCONFORM_TOPOLOGY", f.topology)
	s.flag("MESHCONFORM_ARTIFACTS", f.artifacts)
	s.flag("MESHCONFORM_NAMESPACE_LABELS", f.namespaceLabels)
	s.flag("MESHCONFORM_IMAGE_REGISTRY", f.imageRegistry)
	s.flag("MESHCONFORM_IMAGE_PULL_SECRET", f.pullSecret)
	s.flag("MESHCONFORM_IMAGE_REGISTRY_CA", f.ca)
	cfg, err := s.config()
	if err != nil {
		return cfg, "", err
	}
	if err := harness.Validate(cfg); err != nil {
		return cfg, "", err
	}
	suite := f.suite
	if suite == "" {
		suite = "e2e"
	}
	if cfg.BringYourOwn() && (suite == "faults" || suite == "resilience") {
		return cfg, "", fmt.Errorf("--suite %s breaks the mesh on purpose: it runs only on clusters meshconform creates, never on clusters you bring", suite)
	}
	if suite == "upgrade" {
		if err := cfg.UpgradeRefusal(); err != nil {
			return cfg, "", fmt.Errorf("--suite upgrade: %w", err)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.RepoRoot, "suites", suite)); err != nil {
		return cfg, "", fmt.Errorf("--suite %s: no suites/%s in %s", suite, suite, cfg.RepoRoot)
	}
	// A bundle judges every report in the directory: a run must not mix
	// its reports with an earlier run's.
	if entries, err := os.ReadDir(cfg.ArtifactsDir); err == nil && len(entries) > 0 {
		return cfg, "", fmt.Errorf("artifacts directory %s is not empty: a bundle of it would mix this run with an earlier one; remove it or give --artifacts another", cfg.ArtifactsDir)
	}
	return cfg, suite, nil
}

// suiteCleanupBudget is what the suite's cleanup may take past Ginkgo's
// own limit (the first failure's dump 5 min, AfterAll nodes up to 10, the
// teardown and its audit 10, margin): go test's alarm, which panics with
// no cleanup at all, rings only after it (the Makefile's CLEANUP_MINUTES).
const suiteCleanupBudget = 30 * time.Minute

// goTestArgs runs the suite with Ginkgo's reports in reports.
func (f testFlags) goTestArgs(suite, reports string) []string {
	args := []string{"test", "./suites/" + suite, "-count=1", "-v", "-timeout=" + (f.timeout + suiteCleanupBudget).String(),
		"-args", "-ginkgo.v", "-ginkgo.timeout=" + f.timeout.String(),
		"-ginkgo.junit-report=" + filepath.Join(reports, "junit.xml"), "-ginkgo.json-report=" + filepath.Join(reports, "ginkgo.json")}
	for flag, v := range map[string]string{"focus": f.focus, "skip": f.skip, "label-filter": f.labelFilter} {
		if v != "" {
			args = append(args, "-ginkgo."+flag+"="+v)
		}
	}
	return args
}

// settingsJSON is the file of the artifacts directory holding the run's
// settings (harness.Config as JSON) that `meshconform test` hands its suite.
const settingsJSON = "settings.json"

// suiteEnv is the suite's environment: environ less every MESHCONFORM_*
// variable, plus harness.SettingsEnv naming the settings file, so the suite
// reads its settings from that file and nowhere else.
func suiteEnv(environ []string, settingsFile string) []string {
	env := make([]string, 0, len(environ)+1)
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "MESHCONFORM_") {
			env = append(env, kv)
		}
	}
	return append(env, harness.SettingsEnv+"="+settingsFile)
}

// reproduce is the command line that reproduces the run: the MESHCONFORM_*
// settings in force (none of them secret: a kubeconfig is named by its path,
// never copied) and the arguments, shell-quoted.
func reproduce(environ, argv []string) string {
	var parts []string
	for _, kv := range environ {
		if strings.HasPrefix(kv, "MESHCONFORM_") && !strings.HasPrefix(kv, "MESHCONFORM_ARTIFACTS=") {
			parts = append(parts, shellQuote(kv))
		}
	}
	parts = append(parts, "meshconform")
	for _, a := range argv[1:] {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./:,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
