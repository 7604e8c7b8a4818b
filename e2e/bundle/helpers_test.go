package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

// testNow has nanoseconds on purpose: the bundle keeps whole seconds.
var testNow = time.Date(2026, 11, 22, 17, 13, 8, 500, time.UTC)

const testTop = "meshconform-results-20261122T171308Z"

// sampleReports is the Ginkgo JSON report of a real, all-passed e2e run
// (/tmp/sample-artifacts/e2e/ginkgo.json), trimmed of captured output and
// spec events.
func sampleReports(t *testing.T) []types.Report {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "e2e-ginkgo.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rs []types.Report
	if err := json.Unmarshal(data, &rs); err != nil {
		t.Fatal(err)
	}
	return rs
}

// specWith returns the first spec of the reports that carries label, so a
// test can break exactly that one.
func specWith(t *testing.T, rs []types.Report, label string) *types.SpecReport {
	t.Helper()
	for i := range rs {
		for j := range rs[i].SpecReports {
			if slices.Contains(capabilitiesOf(rs[i].SpecReports[j]), label) {
				return &rs[i].SpecReports[j]
			}
		}
	}
	t.Fatalf("no spec labelled %s", label)
	return nil
}

func reportJSON(t *testing.T, rs []types.Report) []byte {
	t.Helper()
	data, err := json.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// longLog is a kind pod log path longer than the 255 bytes of name a
// plain tar header holds: the archive writes it as PAX.
var longLog = "logs/cluster1-control-plane/pods/istio-system_istiod-5d8f7c9b6d-abcde_0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/discovery/" +
	strings.Repeat("rotated-", 16) + "0.log"

// kubeconfigWithKey is what kind writes under artifacts/kubeconfig/.
const kubeconfigWithKey = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTi==
    server: https://172.18.0.3:6443
  name: kind-cluster1
users:
- name: kind-cluster1
  user:
    client-certificate-data: LS0tLS1CRUdJTi==
    client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQo=
`

// artifacts lays out a run's artifacts directory as the harness writes it,
// with rs as the e2e suite's report, the files other packages add, and
// what must never be bundled.
func artifacts(t *testing.T, rs []types.Report) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"e2e/ginkgo.json":                       string(reportJSON(t, rs)),
		"e2e/junit.xml":                         "<testsuites></testsuites>\n",
		"phases.json":                           `{"phases":[{"name":"preflight","ok":true}]}` + "\n",
		"phases.svg":                            "<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n",
		"build.log":                             "ok  github.com/meshconform/meshconform/e2e/checks\n",
		"environment.json":                      sampleEnvironment,
		"doctor.json":                           `{"ok":true}` + "\n",
		"report.html":                           "<html><body>meshconform</body></html>\n",
		"report.png":                            "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01",
		"dump/cluster1/istio-system/istiod.log": "info\tads\tPush debounce stable\n",
		"dump/cluster1/events.txt":              "Normal  Scheduled  pod/frontend\n",
		"logs/cluster1-control-plane/kubelet.log": "I1122 17:13:09 kubelet.go:1] Started\n",
		"istio/manifests/cluster1-primary.yaml":   "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\n",
		"upgrade/canary/requests.json":            "[]\n",
		// Longer than tar's 255 bytes of name: written as PAX.
		longLog: "2026-11-22T17:14:00Z info ads\n",
		// Never bundled: credentials, scratch, an earlier bundle.
		"kubeconfig/cluster1.kubeconfig":                      kubeconfigWithKey,
		"kubeconfig/cluster2.kubeconfig":                      kubeconfigWithKey,
		"upgrade/kubeconfig/cluster1.kubeconfig":              kubeconfigWithKey,
		"istio/remote-secret.kubeconfig":                      kubeconfigWithKey,
		"phases.json.tmp":                                     "{\"pha",
		"meshconform-results-20250101T000000Z.tar.gz":         "an earlier bundle",
		"upgrade/meshconform-results-20250101T000000Z.tar.gz": "an earlier bundle",
	})
	return dir
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// bundleOf writes a bundle of the artifacts in dir to a fresh directory.
func bundleOf(t *testing.T, dir string) (string, Verdict) {
	t.Helper()
	path, v, err := Write(Options{ArtifactsDir: dir, OutDir: t.TempDir(), Command: "make e2e", Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	return path, v
}

// member is one entry of a bundle as a test edits it.
type member struct {
	hdr  tar.Header
	data []byte
}

func (m member) rel() string {
	return strings.TrimPrefix(strings.TrimSuffix(m.hdr.Name, "/"), testTop+"/")
}

func readMembers(t *testing.T, path string) []member {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var ms []member
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return ms
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, member{hdr: *hdr, data: data})
	}
}

// rewrite writes the bundle's members, as edit leaves them, to a new
// tar.gz: what someone tampering with a bundle does.
func rewrite(t *testing.T, path string, edit func([]member) []member) string {
	t.Helper()
	ms := edit(readMembers(t, path))
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, m := range ms {
		hdr := m.hdr
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(m.data))
		}
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// find returns the index of the member at rel under the top folder.
func find(t *testing.T, ms []member, rel string) int {
	t.Helper()
	for i, m := range ms {
		if m.rel() == rel {
			return i
		}
	}
	t.Fatalf("no %s in the bundle", rel)
	return -1
}

// reseal rewrites MANIFEST.sha256 to match the members as they are now:
// the tamperer who also fixes the manifest.
func reseal(t *testing.T, ms []member) []member {
	t.Helper()
	var files []member
	for _, m := range ms {
		if m.hdr.Typeflag == tar.TypeReg && m.rel() != ManifestFile {
			files = append(files, m)
		}
	}
	slices.SortFunc(files, func(a, b member) int { return strings.Compare(a.rel(), b.rel()) })
	var lines []string
	for _, m := range files {
		sum := sha256.Sum256(m.data)
		lines = append(lines, fmt.Sprintf("%s  %s\n", hex.EncodeToString(sum[:]), m.rel()))
	}
	ms[find(t, ms, ManifestFile)].data = []byte(strings.Join(lines, ""))
	return ms
}

func fileMember(name, content string) member {
	return member{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, ModTime: testNow}, data: []byte(content)}
}

// wantErr fails unless err is an error whose text holds every part.
func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one naming %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not name %q", err, p)
		}
	}
}

// sampleEnvironment is an environment.json as the harness writes it
// (harness.Environment), trimmed to what a verdict's scope reads.
const sampleEnvironment = `{"runId":"20261122t171308-abcdef","imageSource":"local","broughtClusters":false,"meshMode":"install","podSecurity":"restricted",
"clusters":[{"name":"cluster1","primary":true,"serverVersion":"v1.33.13","localityFrom":"nodes"},{"name":"cluster2","primary":false,"serverVersion":"v1.33.13","localityFrom":"nodes"}],
"istio":{"version":"1.27.0"}}
`
