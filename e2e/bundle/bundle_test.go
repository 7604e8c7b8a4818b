package bundle

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The real all-passed e2e run round-trips: Write bundles it certified and
// Verify accepts the bundle with the same verdict.
func TestWriteVerifyRoundTripSampleRun(t *testing.T) {
	dir := artifacts(t, sampleReports(t))
	path, v, err := Write(Options{ArtifactsDir: dir, OutDir: dir, Command: "make e2e", Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, testTop+".tar.gz"); path != want {
		t.Errorf("path %s, want %s", path, want)
	}
	if !v.Certified() {
		t.Fatalf("the sample run is not certified:\n%s", v)
	}
	res, err := Verify(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Verdict, v) {
		t.Errorf("Verify's verdict differs from Write's:\n%s\n%s", res.Verdict, v)
	}

	ms := readMembers(t, path)
	var files []string
	for _, m := range ms {
		if !strings.HasPrefix(m.hdr.Name, testTop+"/") {
			t.Errorf("%s is outside the top folder", m.hdr.Name)
		}
		if m.hdr.Typeflag == tar.TypeReg {
			files = append(files, m.rel())
		}
	}
	want := []string{
		"MANIFEST.sha256", "build.log", "command.txt",
		"doctor.json", "dump/cluster1/events.txt", "dump/cluster1/istio-system/istiod.log",
		"e2e/ginkgo.json", "e2e/junit.xml", "environment.json",
		"istio/manifests/cluster1-primary.yaml", "logs/cluster1-control-plane/kubelet.log", longLog,
		"phases.json", "phases.svg", "report.html", "report.png",
		"upgrade/canary/requests.json", "verdict.json",
	}
	if !slices.Equal(files, want) {
		t.Errorf("bundled files\n%q\nwant\n%q", files, want)
	}
	if res.Files != len(want)-1 {
		t.Errorf("Files = %d, want %d (all but the manifest)", res.Files, len(want)-1)
	}
	man := ms[find(t, ms, ManifestFile)].data
	if sum := sha256.Sum256(man); res.ManifestSHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("ManifestSHA256 %s is not the manifest's digest", res.ManifestSHA256)
	}
	if got := string(ms[find(t, ms, CommandFile)].data); got != "make e2e\n" {
		t.Errorf("command.txt = %q", got)
	}
	vj, _ := v.encode()
	if !bytes.Equal(ms[find(t, ms, VerdictFile)].data, vj) {
		t.Error("verdict.json is not the verdict Write returned")
	}
}

// Two bundles of the same artifacts at the same time are the same bytes,
// with uid/gid 0, fixed modes and the run's time as every mtime.
func TestWriteIsDeterministic(t *testing.T) {
	dir := artifacts(t, sampleReports(t))
	a, _ := bundleOf(t, dir)
	b, _ := bundleOf(t, dir)
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	if !bytes.Equal(da, db) {
		t.Fatal("two bundles of the same artifacts differ")
	}
	ms := readMembers(t, a)
	if ms[0].hdr.Name != testTop+"/" || ms[0].hdr.Typeflag != tar.TypeDir {
		t.Errorf("first entry %q, want the top folder", ms[0].hdr.Name)
	}
	for i, m := range ms {
		if i > 0 && ms[i-1].hdr.Name >= m.hdr.Name {
			t.Errorf("%s comes after %s: entries not sorted", m.hdr.Name, ms[i-1].hdr.Name)
		}
		wantMode := int64(0o644)
		if m.hdr.Typeflag == tar.TypeDir {
			wantMode = 0o755
		}
		if m.hdr.Mode != wantMode || m.hdr.Uid != 0 || m.hdr.Gid != 0 || m.hdr.Uname != "" || m.hdr.Gname != "" {
			t.Errorf("%s: mode %o uid %d gid %d owner %q/%q", m.hdr.Name, m.hdr.Mode, m.hdr.Uid, m.hdr.Gid, m.hdr.Uname, m.hdr.Gname)
		}
		if !m.hdr.ModTime.Equal(testNow.Truncate(1e9)) {
			t.Errorf("%s: mtime %s", m.hdr.Name, m.hdr.ModTime)
		}
	}
}

// Broken input: kubeconfigs full of client keys in kubeconfig/ (top level
// and nested), a *.kubeconfig elsewhere, a .tmp file and earlier bundles.
// None may reach the bundle, and the keys must not stop it either.
func TestWriteExcludesCredentialsAndScratch(t *testing.T) {
	path, _ := bundleOf(t, artifacts(t, sampleReports(t)))
	for _, m := range readMembers(t, path) {
		rel := m.rel()
		if strings.Contains(rel, "kubeconfig") || strings.HasSuffix(rel, ".tmp") || strings.HasSuffix(rel, ".tar.gz") {
			t.Errorf("%s is in the bundle", rel)
		}
		if bytes.Contains(m.data, []byte("client-key-data")) {
			t.Errorf("%s holds a client key", rel)
		}
	}
}

// command.txt is Options.Command; without it the artifacts' own is kept;
// with neither, Write refuses (broken input: no way to reproduce the run).
func TestWriteCommand(t *testing.T) {
	dir := artifacts(t, sampleReports(t))
	writeFiles(t, dir, map[string]string{CommandFile: "make e2e E2E_SUITES=\"install conformance\"\n"})

	path, _, err := Write(Options{ArtifactsDir: dir, OutDir: t.TempDir(), Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	ms := readMembers(t, path)
	if got := string(ms[find(t, ms, CommandFile)].data); got != "make e2e E2E_SUITES=\"install conformance\"\n" {
		t.Errorf("kept command.txt = %q", got)
	}

	path, _ = bundleOf(t, dir) // Command "make e2e" wins over the file
	ms = readMembers(t, path)
	if got := string(ms[find(t, ms, CommandFile)].data); got != "make e2e\n" {
		t.Errorf("command.txt = %q, want Options.Command", got)
	}

	os.Remove(filepath.Join(dir, CommandFile))
	_, _, err = Write(Options{ArtifactsDir: dir, OutDir: t.TempDir(), Now: testNow})
	wantErr(t, err, CommandFile)
}

// Broken input: a file to be bundled holding a credential. Write names the
// file and line and leaves no bundle behind.
func TestWriteRefusesSecrets(t *testing.T) {
	for _, tc := range []struct {
		name, file, content, what string
		line                      int
	}{
		{"PEM key in a dump", "dump/cluster1/istio-system/cacerts.txt",
			"ca-cert.pem: ok\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n", "PEM private key", 2},
		{"PKCS#8 key in a manifest", "istio/manifests/cacerts.yaml",
			"stringData:\n  ca-key.pem: |\n    -----BEGIN PRIVATE KEY-----\n", "PEM private key", 3},
		{"kubeconfig under another name", "dump/cluster1/config.yaml", kubeconfigWithKey, "client-key-data", 11},
		{"token under users", "logs/remote-secret.yaml",
			"apiVersion: v1\nusers:\n- name: istio-reader-service-account\n  user:\n    token: eyJhbGciOiJSUzI1NiIsImtpZCI6\n", "token under users", 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := artifacts(t, sampleReports(t))
			writeFiles(t, dir, map[string]string{tc.file: tc.content})
			out := t.TempDir()
			_, _, err := Write(Options{ArtifactsDir: dir, OutDir: out, Command: "make e2e", Now: testNow})
			var se *SecretError
			if !errors.As(err, &se) {
				t.Fatalf("error %v, want a SecretError", err)
			}
			if se.Path != tc.file || se.Line != tc.line || !strings.Contains(se.What, tc.what) {
				t.Errorf("refused %s line %d (%s), want %s line %d (%s)", se.Path, se.Line, se.What, tc.file, tc.line, tc.what)
			}
			wantErr(t, err, tc.file)
			if left, _ := os.ReadDir(out); len(left) > 0 {
				t.Errorf("Write left %s in the out dir", left[0].Name())
			}
		})
	}
}

// Broken input: a secret in the command line itself.
func TestWriteRefusesSecretInCommand(t *testing.T) {
	_, _, err := Write(Options{ArtifactsDir: artifacts(t, sampleReports(t)), OutDir: t.TempDir(), Now: testNow,
		Command: "echo '-----BEGIN EC PRIVATE KEY-----' > key.pem && make e2e"})
	var se *SecretError
	if !errors.As(err, &se) || se.Path != CommandFile {
		t.Fatalf("error %v, want a SecretError for %s", err, CommandFile)
	}
}

// Broken input: a symlink among the artifacts (here to a kubeconfig the
// walk would otherwise never see). Write refuses it, naming it, by design:
// see the package comment.
func TestWriteRefusesSymlink(t *testing.T) {
	dir := artifacts(t, sampleReports(t))
	if err := os.Symlink(filepath.Join(dir, "kubeconfig", "cluster1.kubeconfig"), filepath.Join(dir, "dump", "config")); err != nil {
		t.Skip("no symlinks here:", err)
	}
	_, _, err := Write(Options{ArtifactsDir: dir, OutDir: t.TempDir(), Command: "make e2e", Now: testNow})
	wantErr(t, err, "dump/config", "symlink")
}

// A symlinked artifacts directory itself is fine: only what is under it
// must be plain files.
func TestWriteFollowsSymlinkedRoot(t *testing.T) {
	dir := artifacts(t, sampleReports(t))
	link := filepath.Join(t.TempDir(), "artifacts")
	if err := os.Symlink(dir, link); err != nil {
		t.Skip("no symlinks here:", err)
	}
	path, _, err := Write(Options{ArtifactsDir: link, OutDir: t.TempDir(), Command: "make e2e", Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(path); err != nil {
		t.Fatal(err)
	}
}

// Broken input: a ginkgo.json cut short (a killed run). The bundle is
// still written, for debugging, and is not certified; Verify agrees.
func TestWriteTruncatedReport(t *testing.T) {
	dir := artifacts(t, sampleReports(t))
	data := reportJSON(t, sampleReports(t))
	writeFiles(t, dir, map[string]string{"e2e/ginkgo.json": string(data[:len(data)/2])})
	path, v := bundleOf(t, dir)
	if v.Certified() {
		t.Fatal("certified on a truncated report")
	}
	if !slices.ContainsFunc(v.Profiles[0].Reasons, func(r string) bool { return strings.HasPrefix(r, "e2e/ginkgo.json: not a Ginkgo JSON report") }) {
		t.Errorf("reasons %q do not name the broken report", v.Profiles[0].Reasons)
	}
	res, err := Verify(path)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict.Certified() {
		t.Error("Verify certifies it")
	}
}
