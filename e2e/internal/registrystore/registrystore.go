// Package registrystore garbage-collects the storage directory of a
// distribution registry (its filesystem driver), offline, the way
// `registry garbage-collect --delete-untagged` would, but with the tags to
// keep chosen by the caller: every other tag is deleted first, then every
// manifest, layer link and blob no kept tag reaches.
//
// Debian's docker-registry (distribution 2.8) ships the collector, but only
// as a subcommand of the registry's own binary inside its container; doing
// it here needs no container and lets the caller choose the tags.
//
// The registry must not run meanwhile: it would not know its blobs went, and
// a push in flight would lose what it uploaded. The caller makes sure of it.
package registrystore

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/meshconform/meshconform/e2e/internal/fsutil"
)

// storagePath is where distribution's filesystem driver keeps everything,
// under its root directory.
const storagePath = "docker/registry/v2"

// Tag is one tag of a repository and the manifest digest it points at.
type Tag struct {
	Repo, Name string
	// Digest is "sha256:<hex>"; empty when the tag's link is unreadable.
	Digest string
}

// Ref is "repo:tag", the form keep sets use.
func (t Tag) Ref() string { return t.Repo + ":" + t.Name }

// Result is what a collection removed (or, dry, would remove).
type Result struct {
	Tags, Manifests, LayerLinks, Uploads, Blobs, Repos int
	// Bytes of the files removed: almost all blob data.
	Bytes int64
	// RemovedTags are "repo:tag", sorted.
	RemovedTags []string
}

func (r Result) String() string {
	return fmt.Sprintf("%d tags, %d manifests, %d layer links, %d uploads, %d blobs, %d repositories",
		r.Tags, r.Manifests, r.LayerLinks, r.Uploads, r.Blobs, r.Repos)
}

// Tags lists every tag of every repository under root (the registry's
// rootdirectory), sorted. A root without storage has no tags.
func Tags(root string) ([]Tag, error) {
	repos, err := repositories(root)
	if err != nil {
		return nil, err
	}
	var tags []Tag
	for _, repo := range repos {
		ts, err := repoTags(root, repo)
		if err != nil {
			return nil, err
		}
		tags = append(tags, ts...)
	}
	return tags, nil
}

// Collect deletes every tag not in keep ("repo:tag"), then the manifest
// revisions, layer links and blobs no kept tag reaches, abandoned uploads,
// and repositories left without tags. With dryRun it only counts.
//
// It marks everything before it deletes anything: a kept tag whose manifest
// cannot be read is an error and nothing is removed, since what that
// manifest reaches is unknown.
func Collect(root string, keep map[string]bool, dryRun bool) (Result, error) {
	var res Result
	repos, err := repositories(root)
	if err != nil {
		return res, err
	}
	m := newMarker(root)
	tagsOf := map[string][]Tag{}
	keptTags := map[string]int{}
	for _, repo := range repos {
		tags, err := repoTags(root, repo)
		if err != nil {
			return res, err
		}
		tagsOf[repo] = tags
		for _, t := range tags {
			if !keep[t.Ref()] {
				continue
			}
			if t.Digest == "" {
				return res, fmt.Errorf("registry storage: tag %s: unreadable link", t.Ref())
			}
			if err := m.manifest(repo, t.Digest, 0); err != nil {
				return res, fmt.Errorf("registry storage: tag %s: %w", t.Ref(), err)
			}
			keptTags[repo]++
		}
	}

	s := sweeper{dryRun: dryRun, res: &res}
	for _, repo := range repos {
		dir := repoDir(root, repo)
		for _, t := range tagsOf[repo] {
			if !keep[t.Ref()] {
				res.RemovedTags = append(res.RemovedTags, t.Ref())
			}
		}
		if keptTags[repo] == 0 {
			// Nothing tagged is left: the whole repository goes at once.
			res.Tags += len(tagsOf[repo])
			s.countLinks(filepath.Join(dir, "_manifests", "revisions"), &res.Manifests)
			s.countLinks(filepath.Join(dir, "_layers"), &res.LayerLinks)
			s.countEntries(filepath.Join(dir, "_uploads"), &res.Uploads)
			s.remove(dir, &res.Repos)
			continue
		}
		for _, t := range tagsOf[repo] {
			if !keep[t.Ref()] {
				s.remove(filepath.Join(dir, "_manifests", "tags", t.Name), &res.Tags)
			}
		}
		if err := s.sweepLinks(filepath.Join(dir, "_manifests", "revisions"), m.manifests[repo], &res.Manifests); err != nil {
			return res, err
		}
		if err := s.sweepLinks(filepath.Join(dir, "_layers"), m.layers[repo], &res.LayerLinks); err != nil {
			return res, err
		}
		// No upload is in flight while the registry is stopped: what is
		// there was abandoned and can never be resumed.
		if entries, err := os.ReadDir(filepath.Join(dir, "_uploads")); err == nil {
			for _, e := range entries {
				s.remove(filepath.Join(dir, "_uploads", e.Name()), &res.Uploads)
			}
		}
	}
	if err := s.sweepBlobs(filepath.Join(root, storagePath, "blobs"), m.blobs); err != nil {
		return res, err
	}
	if !dryRun {
		removeEmptyDirs(filepath.Join(root, storagePath, "repositories"))
		removeEmptyDirs(filepath.Join(root, storagePath, "blobs"))
	}
	sort.Strings(res.RemovedTags)
	return res, errors.Join(s.errs...)
}

// repositories lists repository names: the directories under
// repositories/ holding a _manifests directory (names may have slashes).
// Symbolic links are neither followed nor judged.
func repositories(root string) ([]string, error) {
	base := filepath.Join(root, storagePath, "repositories")
	if _, err := os.Lstat(base); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var repos []string
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if strings.HasPrefix(d.Name(), "_") {
			if d.Name() == "_manifests" {
				rel, _ := filepath.Rel(base, filepath.Dir(p))
				repos = append(repos, filepath.ToSlash(rel))
			}
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("registry storage: list repositories: %w", err)
	}
	sort.Strings(repos)
	return repos, nil
}

func repoDir(root, repo string) string {
	return filepath.Join(root, storagePath, "repositories", filepath.FromSlash(repo))
}

func repoTags(root, repo string) ([]Tag, error) {
	dir := filepath.Join(repoDir(root, repo), "_manifests", "tags")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registry storage: tags of %s: %w", repo, err)
	}
	var tags []Tag
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		d, _ := readLink(filepath.Join(dir, e.Name(), "current", "link"))
		tags = append(tags, Tag{Repo: repo, Name: e.Name(), Digest: d})
	}
	return tags, nil
}

var digestRE = regexp.MustCompile(`^([a-z0-9]+):([0-9a-f]{32,128})$`)

// readLink reads a link file: one digest. Only a regular file counts, and
// only a well-formed digest, which later becomes part of a path.
func readLink(path string) (string, error) {
	raw, err := readRegular(path)
	if err != nil {
		return "", err
	}
	d := strings.TrimSpace(string(raw))
	if !digestRE.MatchString(d) {
		return "", fmt.Errorf("%s: not a digest: %q", path, d)
	}
	return d, nil
}

func readRegular(path string) ([]byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	return os.ReadFile(path)
}

// blobData is where the blob of a well-formed digest is.
func blobData(root, digest string) string {
	m := digestRE.FindStringSubmatch(digest)
	return filepath.Join(root, storagePath, "blobs", m[1], m[2][:2], m[2], "data")
}

// marker records what kept tags reach: per repository its manifests and its
// layers (config blobs are layer links too), and every blob.
type marker struct {
	root      string
	manifests map[string]map[string]bool
	layers    map[string]map[string]bool
	blobs     map[string]bool
}

func newMarker(root string) *marker {
	return &marker{root: root, manifests: map[string]map[string]bool{}, layers: map[string]map[string]bool{}, blobs: map[string]bool{}}
}

// maxDepth bounds index nesting; real images nest one level.
const maxDepth = 8

// manifest marks the manifest digest of repo and everything it references:
// an image manifest's config and layers, an index's manifests (which live in
// the same repository), recursively.
func (m *marker) manifest(repo, digest string, depth int) error {
	if !digestRE.MatchString(digest) {
		return fmt.Errorf("malformed digest %q", digest)
	}
	if m.manifests[repo][digest] {
		return nil
	}
	if depth > maxDepth {
		return fmt.Errorf("manifest %s: index nesting deeper than %d", digest, maxDepth)
	}
	if m.manifests[repo] == nil {
		m.manifests[repo], m.layers[repo] = map[string]bool{}, map[string]bool{}
	}
	m.manifests[repo][digest] = true
	m.blobs[digest] = true
	raw, err := readRegular(blobData(m.root, digest))
	if err != nil {
		return fmt.Errorf("manifest %s: %w", digest, err)
	}
	refs, err := parseManifest(raw)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", digest, err)
	}
	for _, d := range refs.blobs {
		if !digestRE.MatchString(d) {
			return fmt.Errorf("manifest %s: malformed blob digest %q", digest, d)
		}
		m.layers[repo][d] = true
		m.blobs[d] = true
	}
	for _, d := range refs.manifests {
		if err := m.manifest(repo, d, depth+1); err != nil {
			return err
		}
	}
	return nil
}

type references struct{ blobs, manifests []string }

// parseManifest returns what a manifest references. It reads the fields
// rather than the media type: Docker schema2 and OCI image manifests have
// config and layers, Docker manifest lists and OCI indexes have manifests
// (an OCI index may leave mediaType out), schema1 has fsLayers.
func parseManifest(raw []byte) (references, error) {
	var m struct {
		Config *struct {
			Digest string `json:"digest"`
		} `json:"config"`
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
		FSLayers []struct {
			BlobSum string `json:"blobSum"`
		} `json:"fsLayers"`
		// Subject and artifact blobs of OCI 1.1 manifests are layers too.
		Blobs []struct {
			Digest string `json:"digest"`
		} `json:"blobs"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return references{}, fmt.Errorf("parse: %w", err)
	}
	var r references
	if m.Config != nil {
		r.blobs = append(r.blobs, m.Config.Digest)
	}
	for _, l := range m.Layers {
		r.blobs = append(r.blobs, l.Digest)
	}
	for _, l := range m.Blobs {
		r.blobs = append(r.blobs, l.Digest)
	}
	for _, l := range m.FSLayers {
		r.blobs = append(r.blobs, l.BlobSum)
	}
	for _, c := range m.Manifests {
		r.manifests = append(r.manifests, c.Digest)
	}
	if m.Config == nil && len(r.blobs) == 0 && m.Manifests == nil {
		return references{}, fmt.Errorf("neither an image manifest nor an index")
	}
	return r, nil
}

// sweeper removes paths (or, dry, only counts them) and totals their bytes.
type sweeper struct {
	dryRun bool
	res    *Result
	errs   []error
}

// remove deletes path (never following a symbolic link inside it) and
// counts it in *n.
func (s *sweeper) remove(path string, n *int) {
	size := fsutil.Size(path)
	if !s.dryRun {
		if err := os.RemoveAll(path); err != nil {
			s.errs = append(s.errs, fmt.Errorf("registry storage: %w", err))
			return
		}
	}
	*n++
	s.res.Bytes += size
}

// sweepLinks removes the <algorithm>/<hex> link directories under dir
// whose digest is not in keep.
func (s *sweeper) sweepLinks(dir string, keep map[string]bool, n *int) error {
	return s.eachDigestDir(dir, false, func(digest, p string) {
		if !keep[digest] {
			s.remove(p, n)
		}
	})
}

func (s *sweeper) sweepBlobs(dir string, keep map[string]bool) error {
	return s.eachDigestDir(dir, true, func(digest, p string) {
		if !keep[digest] {
			s.remove(p, &s.res.Blobs)
		}
	})
}

func (s *sweeper) countLinks(dir string, n *int) {
	_ = s.eachDigestDir(dir, false, func(string, string) { *n++ })
}

func (s *sweeper) countEntries(dir string, n *int) {
	entries, _ := os.ReadDir(dir)
	*n += len(entries)
}

// eachDigestDir calls fn for each directory <alg>/<hex> under dir, or
// <alg>/<hex[:2]>/<hex> with sharded (the blob store's layout). Entries
// not shaped like that are left alone.
func (s *sweeper) eachDigestDir(dir string, sharded bool, fn func(digest, path string)) error {
	algs, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("registry storage: %w", err)
	}
	for _, alg := range algs {
		if !alg.IsDir() {
			continue
		}
		parents := []string{filepath.Join(dir, alg.Name())}
		if sharded {
			shards, err := os.ReadDir(parents[0])
			if err != nil {
				return fmt.Errorf("registry storage: %w", err)
			}
			parents = parents[:0]
			for _, sh := range shards {
				if sh.IsDir() {
					parents = append(parents, filepath.Join(dir, alg.Name(), sh.Name()))
				}
			}
		}
		for _, parent := range parents {
			entries, err := os.ReadDir(parent)
			if err != nil {
				return fmt.Errorf("registry storage: %w", err)
			}
			for _, e := range entries {
				digest := alg.Name() + ":" + e.Name()
				if !e.IsDir() || !digestRE.MatchString(digest) || (sharded && filepath.Base(parent) != e.Name()[:2]) {
					continue
				}
				fn(digest, filepath.Join(parent, e.Name()))
			}
		}
	}
	return nil
}

// removeEmptyDirs removes the empty directories under base (the parents of
// removed repositories, empty blob shards), deepest first; base stays.
func removeEmptyDirs(base string) {
	var dirs []string
	_ = filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && p != base {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Remove(dirs[i]) // fails, as it should, unless empty
	}
}
