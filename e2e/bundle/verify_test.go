package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/types"
)

// Broken input: ONE byte changed in one bundled file, for every file in
// turn, the tar rewritten around it. Verify names the file.
func TestVerifyRejectsOneChangedByte(t *testing.T) {
	path, _ := bundleOf(t, artifacts(t, sampleReports(t)))
	for _, m := range readMembers(t, path) {
		rel := m.rel()
		if m.hdr.Typeflag != tar.TypeReg || rel == ManifestFile {
			continue // the manifest has its own test below
		}
		t.Run(rel, func(t *testing.T) {
			bad := rewrite(t, path, func(ms []member) []member {
				d := ms[find(t, ms, rel)].data
				d[len(d)/2] ^= 0x01
				return ms
			})
			_, err := Verify(bad)
			wantErr(t, err, rel+": SHA-256", "changed")
		})
	}
}

// Broken input: one hex digit of a manifest line changed.
func TestVerifyRejectsChangedManifest(t *testing.T) {
	path, _ := bundleOf(t, artifacts(t, sampleReports(t)))
	bad := rewrite(t, path, func(ms []member) []member {
		d := ms[find(t, ms, ManifestFile)].data
		i := bytes.Index(d, []byte("  phases.json\n")) - 1
		if d[i] == '0' {
			d[i] = '1'
		} else {
			d[i] = '0'
		}
		return ms
	})
	_, err := Verify(bad)
	wantErr(t, err, "phases.json: SHA-256")
}

// Broken input: a file slipped into the bundle, manifest untouched.
func TestVerifyRejectsAddedFile(t *testing.T) {
	path, _ := bundleOf(t, artifacts(t, sampleReports(t)))
	bad := rewrite(t, path, func(ms []member) []member {
		return append(ms, fileMember(testTop+"/conformance/ginkgo.json", "[]"))
	})
	_, err := Verify(bad)
	wantErr(t, err, "conformance/ginkgo.json: in the bundle but not in MANIFEST.sha256")
}

// Broken input: a bundled file taken out (a failure's dump, say).
func TestVerifyRejectsRemovedFile(t *testing.T) {
	path, _ := bundleOf(t, artifacts(t, sampleReports(t)))
	bad := rewrite(t, path, func(ms []member) []member {
		return slices.Delete(ms, find(t, ms, "dump/cluster1/events.txt"), find(t, ms, "dump/cluster1/events.txt")+1)
	})
	_, err := Verify(bad)
	wantErr(t, err, "dump/cluster1/events.txt: listed in MANIFEST.sha256 but missing")
}

// Broken input: the verdict of a run with an mtls spec skipped edited to
// "certified", its manifest line fixed up to match.
func TestVerifyRejectsEditedVerdict(t *testing.T) {
	rs := sampleReports(t)
	mtls := specWith(t, rs, "mtls")
	mtls.State, mtls.Failure = types.SpecStateSkipped, types.Failure{Message: "no second region"}
	path, v := bundleOf(t, artifacts(t, rs))
	if v.Certified() {
		t.Fatal("the run to tamper with is certified already")
	}
	bad := rewrite(t, path, func(ms []member) []member {
		i := find(t, ms, VerdictFile)
		ms[i].data = bytes.Replace(ms[i].data, []byte(`"certified": false`), []byte(`"certified": true`), 1)
		return reseal(t, ms)
	})
	_, err := Verify(bad)
	wantErr(t, err, "verdict.json differs from the verdict recomputed", `"certified": true`)
}

// Broken input: verdict.json removed along with its manifest line.
func TestVerifyRejectsMissingVerdict(t *testing.T) {
	path, _ := bundleOf(t, artifacts(t, sampleReports(t)))
	bad := rewrite(t, path, func(ms []member) []member {
		i := find(t, ms, VerdictFile)
		return reseal(t, slices.Delete(ms, i, i+1))
	})
	_, err := Verify(bad)
	wantErr(t, err, "verdict.json is missing")
}

// Broken input: no manifest at all.
func TestVerifyRejectsMissingManifest(t *testing.T) {
	path, _ := bundleOf(t, artifacts(t, sampleReports(t)))
	bad := rewrite(t, path, func(ms []member) []member {
		i := find(t, ms, ManifestFile)
		return slices.Delete(ms, i, i+1)
	})
	_, err := Verify(bad)
	wantErr(t, err, "MANIFEST.sha256 is missing")
}

// Broken input: manifests that are not what Write writes.
func TestVerifyRejectsMalformedManifest(t *testing.T) {
	path, _ := bundleOf(t, artifacts(t, sampleReports(t)))
	sum := strings.Repeat("ab", 32)
	for name, edit := range map[string]func(string) string{
		"empty":            func(string) string { return "" },
		"no final newline": func(m string) string { return strings.TrimSuffix(m, "\n") },
		"one space":        func(m string) string { return strings.Replace(m, "  ", " ", 1) },
		"short hash":       func(m string) string { return m[2:] },
		"upper-case hash":  func(m string) string { return strings.ToUpper(m[:64]) + m[64:] },
		"blank line":       func(m string) string { return "\n" + m },
		"unsorted":         func(m string) string { return m + sum + "  aaa\n" },
		"listed twice":     func(m string) string { l, _, _ := strings.Cut(m, "\n"); return l + "\n" + m },
		"escaping path":    func(m string) string { return sum + "  ../etc/passwd\n" + m },
		"absolute path":    func(m string) string { return sum + "  /etc/passwd\n" + m },
		"lists itself":     func(m string) string { return sum + "  MANIFEST.sha256\n" + m },
	} {
		t.Run(name, func(t *testing.T) {
			bad := rewrite(t, path, func(ms []member) []member {
				i := find(t, ms, ManifestFile)
				ms[i].data = []byte(edit(string(ms[i].data)))
				return ms
			})
			_, err := Verify(bad)
			wantErr(t, err, "MANIFEST.sha256 is malformed")
		})
	}
}

// Broken input: archive entries a bundle never holds — each would, once
// extracted, put something outside the top folder or other than a file.
func TestVerifyRejectsBadEntries(t *testing.T) {
	path, _ := bundleOf(t, artifacts(t, sampleReports(t)))
	for _, tc := range []struct {
		name  string
		entry member
		want  string
	}{
		{"dot-dot", fileMember(testTop+"/../evil.sh", "x"), "escapes the top folder"},
		{"absolute", fileMember("/etc/cron.d/evil", "x"), "absolute path"},
		{"second top folder", fileMember("other/x.txt", "x"), "two top folders"},
		{"symlink", member{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: testTop + "/kube", Linkname: "/root/.kube/config"}}, "is a symlink"},
		{"hard link", member{hdr: tar.Header{Typeflag: tar.TypeLink, Name: testTop + "/hard", Linkname: testTop + "/build.log"}}, "is a hard link"},
		{"duplicate", fileMember(testTop+"/build.log", "other content"), "appears twice"},
		{"unclean path", fileMember(testTop+"/./x", "x"), "not a clean path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := rewrite(t, path, func(ms []member) []member { return append(ms, tc.entry) })
			_, err := Verify(bad)
			wantErr(t, err, tc.want, tc.entry.hdr.Name)
		})
	}
}

// Broken input: bytes appended after the tar's end, which tar -x never
// shows; and a file that is no gzip at all.
func TestVerifyRejectsTrailingDataAndNonGzip(t *testing.T) {
	path, _ := bundleOf(t, artifacts(t, sampleReports(t)))
	ms := readMembers(t, path)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, m := range ms {
		hdr := m.hdr
		tw.WriteHeader(&hdr)
		tw.Write(m.data)
	}
	tw.Close()
	gz.Write([]byte("hidden"))
	gz.Close()
	bad := filepath.Join(t.TempDir(), "trailing.tar.gz")
	os.WriteFile(bad, buf.Bytes(), 0o644)
	_, err := Verify(bad)
	wantErr(t, err, "data after the end of the tar archive")

	notGzip := filepath.Join(t.TempDir(), "plain.tar.gz")
	os.WriteFile(notGzip, []byte("plain text"), 0o644)
	_, err = Verify(notGzip)
	wantErr(t, err, "not a gzip file")
}

// The limit the package comment states: whoever rewrites a report, the
// verdict and the manifest together passes Verify. Only the manifest
// digest, published apart, tells the bundle from the one vouched for.
func TestVerifyIsNoSignature(t *testing.T) {
	rs := sampleReports(t)
	specWith(t, rs, "mtls").State = types.SpecStateSkipped
	path, _ := bundleOf(t, artifacts(t, rs))
	honest, err := Verify(path)
	if err != nil {
		t.Fatal(err)
	}
	forged := rewrite(t, path, func(ms []member) []member {
		good := reportJSON(t, sampleReports(t))
		ms[find(t, ms, "e2e/ginkgo.json")].data = good
		vj, _ := computeVerdict(map[string][]byte{"e2e/ginkgo.json": good, "environment.json": []byte(sampleEnvironment)}).encode()
		ms[find(t, ms, VerdictFile)].data = vj
		return reseal(t, ms)
	})
	res, err := Verify(forged)
	if err != nil {
		t.Fatalf("a consistent rewrite is refused: %v", err)
	}
	if !res.Verdict.Certified() {
		t.Fatal("the forged bundle should read certified")
	}
	if res.ManifestSHA256 == honest.ManifestSHA256 {
		t.Fatal("the forged bundle has the published manifest digest")
	}
}
