package registrystore

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/meshconform/meshconform/e2e/internal/fsutil"
)

// store builds a distribution storage tree as the registry writes it.
type store struct {
	t    *testing.T
	root string
}

func newStore(t *testing.T) *store { return &store{t: t, root: t.TempDir()} }

func (s *store) write(rel, content string) {
	s.t.Helper()
	p := filepath.Join(s.root, storagePath, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// blob stores content and returns its digest.
func (s *store) blob(content string) string {
	sum := sha256.Sum256([]byte(content))
	h := hex.EncodeToString(sum[:])
	s.write("blobs/sha256/"+h[:2]+"/"+h+"/data", content)
	return "sha256:" + h
}

// layer pushes a blob into repo: the blob and the repository's link.
func (s *store) layer(repo, content string) string {
	d := s.blob(content)
	s.write("repositories/"+repo+"/_layers/sha256/"+hexOf(d)+"/link", d)
	return d
}

// image pushes config and layers into repo and an image manifest for them.
func (s *store) image(repo, config string, layers ...string) string {
	type desc struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int    `json:"size"`
	}
	m := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Config        desc   `json:"config"`
		Layers        []desc `json:"layers"`
	}{2, "application/vnd.docker.distribution.manifest.v2+json",
		desc{"application/vnd.docker.container.image.v1+json", s.layer(repo, config), len(config)}, nil}
	for _, l := range layers {
		m.Layers = append(m.Layers, desc{"application/vnd.docker.image.rootfs.diff.tar.gzip", s.layer(repo, l), len(l)})
	}
	return s.manifest(repo, m)
}

// index pushes an OCI index of manifests into repo.
func (s *store) index(repo string, manifests ...string) string {
	type desc struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
	}
	m := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Manifests     []desc `json:"manifests"`
	}{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json"}
	for _, d := range manifests {
		m.Manifests = append(m.Manifests, desc{"application/vnd.oci.image.manifest.v1+json", d})
	}
	return s.manifest(repo, m)
}

func (s *store) manifest(repo string, m any) string {
	raw, err := json.Marshal(m)
	if err != nil {
		s.t.Fatal(err)
	}
	d := s.blob(string(raw))
	s.write("repositories/"+repo+"/_manifests/revisions/sha256/"+hexOf(d)+"/link", d)
	return d
}

func (s *store) tag(repo, tag, digest string) {
	s.write("repositories/"+repo+"/_manifests/tags/"+tag+"/current/link", digest)
	s.write("repositories/"+repo+"/_manifests/tags/"+tag+"/index/sha256/"+hexOf(digest)+"/link", digest)
}

func (s *store) exists(rel string) bool {
	_, err := os.Lstat(filepath.Join(s.root, storagePath, filepath.FromSlash(rel)))
	return err == nil
}

func (s *store) hasBlob(d string) bool {
	h := hexOf(d)
	return s.exists("blobs/sha256/" + h[:2] + "/" + h + "/data")
}

func (s *store) size() int64 { return fsutil.Size(s.root) }

func hexOf(d string) string { return strings.TrimPrefix(d, "sha256:") }

// Two images share a layer; one is kept. The kept image and the shared layer
// stay, the other image's manifest, config and own layer go, and so does a
// repository whose only tag is dropped.
func TestCollectKeepsWhatKeptTagsReach(t *testing.T) {
	for _, dry := range []bool{false, true} {
		t.Run(map[bool]string{false: "delete", true: "dry"}[dry], func(t *testing.T) {
			s := newStore(t)
			a := s.image("lib/r", "config a", "shared", "only a")
			b := s.image("lib/r", "config b", "shared", "only b")
			c := s.image("gone", "config c", "shared")
			s.tag("lib/r", "keep", a)
			s.tag("lib/r", "old", b)
			s.tag("gone", "x", c)
			s.write("repositories/lib/r/_uploads/3f1c/data", "half a layer")
			s.write("repositories/lib/r/NOTES", "not distribution's")
			before := s.size()

			res, err := Collect(s.root, map[string]bool{"lib/r:keep": true}, dry)
			if err != nil {
				t.Fatal(err)
			}
			// Layer links: lib/r loses config b's and only b's; gone's two
			// (config c, shared) go with the repository.
			want := Result{Tags: 2, Manifests: 2, LayerLinks: 2 + 2, Uploads: 1, Blobs: 5, Repos: 1,
				RemovedTags: []string{"gone:x", "lib/r:old"}}
			got := res
			got.Bytes = 0
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Collect = %+v, want %+v", got, want)
			}
			if res.Bytes <= int64(len("only b")) {
				t.Errorf("Bytes = %d, want at least the removed blobs", res.Bytes)
			}
			if dry {
				if s.size() != before || !s.exists("repositories/gone") || !s.hasBlob(b) {
					t.Errorf("dry run changed the storage")
				}
				return
			}
			if got := before - s.size(); got != res.Bytes {
				t.Errorf("storage shrank by %d bytes, Result.Bytes = %d", got, res.Bytes)
			}
			for name, d := range map[string]string{"manifest a": a, "config a": digestOf("config a"), "shared": digestOf("shared"), "only a": digestOf("only a")} {
				if !s.hasBlob(d) {
					t.Errorf("blob %s (%s) was removed", name, d)
				}
			}
			for name, d := range map[string]string{"manifest b": b, "config b": digestOf("config b"), "only b": digestOf("only b"), "manifest c": c, "config c": digestOf("config c")} {
				if s.hasBlob(d) {
					t.Errorf("blob %s (%s) was kept", name, d)
				}
			}
			for rel, want := range map[string]bool{
				"repositories/lib/r/_manifests/tags/keep/current/link":                            true,
				"repositories/lib/r/_manifests/tags/old":                                          false,
				"repositories/lib/r/_manifests/revisions/sha256/" + hexOf(a) + "/link":            true,
				"repositories/lib/r/_manifests/revisions/sha256/" + hexOf(b):                      false,
				"repositories/lib/r/_layers/sha256/" + hexOf(digestOf("shared")) + "/link":        true,
				"repositories/lib/r/_layers/sha256/" + hexOf(digestOf("config a")) + "/link":      true,
				"repositories/lib/r/_layers/sha256/" + hexOf(digestOf("only b")):                  false,
				"repositories/lib/r/_uploads/3f1c":                                                false,
				"repositories/lib/r/NOTES":                                                        true,
				"repositories/gone":                                                               false,
				"blobs/sha256/" + hexOf(digestOf("only b"))[:2] + "/" + hexOf(digestOf("only b")): false,
			} {
				if s.exists(rel) != want {
					t.Errorf("%s exists = %v, want %v", rel, !want, want)
				}
			}
			// Collecting again finds nothing more: the result is stable.
			again, err := Collect(s.root, map[string]bool{"lib/r:keep": true}, false)
			if err != nil {
				t.Fatal(err)
			}
			if again.Blobs+again.Tags+again.Manifests+again.LayerLinks+again.Repos != 0 {
				t.Errorf("second Collect removed more: %+v", again)
			}
		})
	}
}

func digestOf(content string) string {
	sum := sha256.Sum256([]byte(content))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// An index keeps its child manifests and their blobs; an untagged manifest
// of the same repository goes.
func TestCollectFollowsIndexes(t *testing.T) {
	s := newStore(t)
	amd := s.image("multi", "config amd64", "layer amd64")
	arm := s.image("multi", "config arm64", "layer arm64")
	idx := s.index("multi", amd, arm)
	orphan := s.image("multi", "config orphan", "layer orphan")
	s.tag("multi", "v1", idx)

	res, err := Collect(s.root, map[string]bool{"multi:v1": true}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{idx, amd, arm, digestOf("config amd64"), digestOf("layer amd64"), digestOf("config arm64"), digestOf("layer arm64")} {
		if !s.hasBlob(d) {
			t.Errorf("blob %s reached through the index was removed", d)
		}
	}
	for _, d := range []string{orphan, digestOf("config orphan"), digestOf("layer orphan")} {
		if s.hasBlob(d) {
			t.Errorf("blob %s of the untagged manifest was kept", d)
		}
	}
	if res.Blobs != 3 || res.Manifests != 1 || res.Tags != 0 {
		t.Errorf("Collect = %+v, want 3 blobs and 1 manifest removed, no tag", res)
	}
	if !s.exists("repositories/multi/_manifests/revisions/sha256/" + hexOf(arm) + "/link") {
		t.Errorf("the revision link of an index child was removed")
	}

	// Keeping nothing empties the storage.
	res, err = Collect(s.root, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Repos != 1 || res.Blobs != 7 || s.exists("repositories/multi") || s.size() != 0 {
		t.Errorf("keeping nothing: %+v, %d bytes left", res, s.size())
	}
}

// A kept tag whose manifest is gone leaves what it reaches unknown: Collect
// must fail before it removes anything.
func TestCollectFailsBeforeRemovingOnBrokenKeptTag(t *testing.T) {
	s := newStore(t)
	a := s.image("r", "config a", "layer a")
	b := s.image("r", "config b", "layer b")
	s.tag("r", "a", a)
	s.tag("r", "b", b)
	if err := os.RemoveAll(filepath.Join(s.root, storagePath, "blobs/sha256", hexOf(a)[:2], hexOf(a))); err != nil {
		t.Fatal(err)
	}
	before := s.size()
	if _, err := Collect(s.root, map[string]bool{"r:a": true}, false); err == nil || !strings.Contains(err.Error(), "r:a") {
		t.Fatalf("Collect = %v, want an error naming tag r:a", err)
	}
	if s.size() != before || !s.hasBlob(b) {
		t.Errorf("Collect removed files although it failed")
	}
}

func TestTags(t *testing.T) {
	s := newStore(t)
	a := s.image("coredns/coredns", "c", "l")
	s.tag("coredns/coredns", "v1.12.0", a)
	s.tag("coredns/coredns", "mc-0123456789abcdef", a)
	got, err := Tags(s.root)
	if err != nil {
		t.Fatal(err)
	}
	want := []Tag{{"coredns/coredns", "mc-0123456789abcdef", a}, {"coredns/coredns", "v1.12.0", a}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Tags = %v, want %v", got, want)
	}
	if got, err := Tags(t.TempDir()); err != nil || len(got) != 0 {
		t.Errorf("Tags of an empty root = %v, %v; want none", got, err)
	}
}

func TestParseManifestRejectsOther(t *testing.T) {
	if _, err := parseManifest([]byte(`{"schemaVersion":2}`)); err == nil {
		t.Errorf("parseManifest accepted a document with no references")
	}
}
