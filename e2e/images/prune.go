package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/meshconform/meshconform/e2e/internal/docker"
	"github.com/meshconform/meshconform/e2e/internal/fsutil"
	"github.com/meshconform/meshconform/e2e/internal/gobuild"
	"github.com/meshconform/meshconform/e2e/internal/registrystore"
	"github.com/meshconform/meshconform/e2e/internal/rootfs"
)

// The image cache keeps every build by a digest of its inputs, so nothing
// in it is ever overwritten: a new Go toolchain, release or recipe adds a
// second copy beside the first. Pruning removes what no current recipe can
// use: "current" is every recipe of every release in kubeReleases and
// istioReleases and the sample apps as the repository has them now, which
// is what any run of this checkout may ask for.

// Top-level directories of the cache.
const (
	cacheBin      = "bin"      // Go builds (gobuild), sample apps, pause
	cacheSrc      = "src"      // generated modules of the Go builds
	cacheRootfs   = "rootfs"   // debootstrap root filesystems
	cacheDebs     = "debs"     // the registry image's Debian packages
	cacheRegistry = "registry" // the local registry's storage
)

// PruneOptions says how Prune runs.
type PruneOptions struct {
	// RepoRoot is the repository's root: the sample apps' keys digest its
	// fixtures/apps.
	RepoRoot string
	// RegistryRunning reports whether the local registry's container exists.
	// Nil asks Docker (docker.Exists).
	RegistryRunning func(ctx context.Context) (bool, error)
	// NoDocker takes an unanswered RegistryRunning (no Docker daemon) to
	// mean no registry runs. Off, Prune refuses: it cannot know.
	NoDocker bool
	// DryRun removes nothing and reports what would go.
	DryRun bool
	// Log receives a line per entry removed or left alone; nil discards.
	Log io.Writer
}

// CacheEntry is one file or directory of the cache, relative to it.
type CacheEntry struct {
	Path  string
	Bytes int64
	// Why it was removed, or left alone although not recognised.
	Why string
}

// PruneResult is what Prune removed (or, dry, would remove).
type PruneResult struct {
	// Before and After are the cache's size in bytes.
	Before, After int64
	// Removed are stale entries of bin/, src/ and rootfs/ and what
	// interrupted builds left.
	Removed []CacheEntry
	// Kept counts the entries of bin/, src/, rootfs/ and debs/ kept.
	Kept int
	// Unknown entries do not follow the cache's naming (or are symbolic
	// links): not ours to judge, left alone.
	Unknown []CacheEntry
	// Notes say which entries were kept because their key could not be
	// computed here.
	Notes []string
	// Registry is what the registry's garbage collection removed.
	Registry registrystore.Result
	DryRun   bool
}

// RemovedBytes is the bytes of files removed, the registry's included.
func (r PruneResult) RemovedBytes() int64 {
	n := r.Registry.Bytes
	for _, e := range r.Removed {
		n += e.Bytes
	}
	return n
}

// Prune removes from the cache at cacheDir what no current recipe uses:
// stale Go builds, sample app binaries and root filesystems, and the
// registry's stale tags with every blob only they reached. Entries it does
// not recognise stay, and no symbolic link is followed.
//
// It refuses while the local registry's container exists: the registry
// serves (and a run builds into) the cache meanwhile.
func Prune(ctx context.Context, cacheDir string, o PruneOptions) (PruneResult, error) {
	if cacheDir == "" {
		return PruneResult{}, fmt.Errorf("prune image cache: no cache directory")
	}
	if o.RepoRoot == "" {
		return PruneResult{}, fmt.Errorf("prune image cache: the repository root is needed to know the sample apps")
	}
	if err := registryStopped(ctx, o); err != nil {
		return PruneResult{}, fmt.Errorf("prune image cache %s: %w", cacheDir, err)
	}
	use, err := currentUse(ctx, o.RepoRoot, defaultProbes)
	if err != nil {
		return PruneResult{}, fmt.Errorf("prune image cache: %w", err)
	}
	return prune(cacheDir, use, o)
}

// prune removes from cacheDir what use does not name.
func prune(cacheDir string, use *cacheUse, o PruneOptions) (PruneResult, error) {
	res := PruneResult{DryRun: o.DryRun, Notes: use.notes, Before: CacheSize(cacheDir)}
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	remove, unknown, kept, regOK, err := planFiles(cacheDir, use)
	if err != nil {
		return res, fmt.Errorf("prune image cache %s: %w", cacheDir, err)
	}
	res.Unknown, res.Kept = unknown, kept
	verb := "removed"
	if o.DryRun {
		verb = "would remove"
	}
	var errs []error
	for _, e := range remove {
		if !o.DryRun {
			if err := os.RemoveAll(filepath.Join(cacheDir, e.Path)); err != nil {
				errs = append(errs, fmt.Errorf("prune image cache: %w", err))
				continue
			}
		}
		res.Removed = append(res.Removed, e)
		fmt.Fprintf(log, "   %s %s (%s, %s)\n", verb, e.Path, FormatBytes(e.Bytes), e.Why)
	}
	for _, e := range unknown {
		fmt.Fprintf(log, "   left alone %s: %s\n", e.Path, e.Why)
	}
	if regOK {
		root := filepath.Join(cacheDir, cacheRegistry)
		tags, err := registrystore.Tags(root)
		if err == nil {
			res.Registry, err = registrystore.Collect(root, registryKeep(tags, use), o.DryRun)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("prune image cache: %w", err))
		}
		for _, t := range res.Registry.RemovedTags {
			fmt.Fprintf(log, "   %s registry tag %s\n", verb, t)
		}
	}
	res.After = CacheSize(cacheDir)
	return res, errors.Join(errs...)
}

// registryStopped returns an error unless the registry's container is known
// not to exist. A stopped container counts as existing: the next run would
// restart it over the same storage.
func registryStopped(ctx context.Context, o PruneOptions) error {
	exists := o.RegistryRunning
	if exists == nil {
		exists = func(ctx context.Context) (bool, error) { return docker.Exists(ctx, "container", RegistryContainer) }
	}
	ok, err := exists(ctx)
	switch {
	case err != nil && !o.NoDocker:
		return fmt.Errorf("cannot tell whether the local registry (container %s) runs, so its storage is not touched: %w", RegistryContainer, err)
	case err == nil && ok:
		return fmt.Errorf("the local registry (container %s) exists and serves the cache: remove it first (meshconform clean)", RegistryContainer)
	}
	return nil
}

// cacheUse is what current recipes use: cache entries by path relative to
// the cache ("bin/<id>", "src/<id>", "rootfs/<name>.tar") and registry tags.
type cacheUse struct {
	entries map[string]bool
	// prefixes are entry paths kept whole because a key could not be
	// computed; notes say why.
	prefixes []string
	notes    []string
	// cacheTags are "repo:mc-<key>"; usualTags map each "repo:tag" a recipe
	// pushes to the cache tags of the recipes that push it.
	cacheTags map[string]bool
	usualTags map[string][]string
	// repos are registry repositories kept whole: a key could not be known.
	repos map[string]bool
}

func newCacheUse() *cacheUse {
	return &cacheUse{entries: map[string]bool{}, cacheTags: map[string]bool{}, usualTags: map[string][]string{}, repos: map[string]bool{}}
}

func (u *cacheUse) goBuild(m gobuild.Module) {
	id := buildID(m)
	u.entries[cacheBin+"/"+id] = true
	u.entries[cacheSrc+"/"+id] = true
}

func (u *cacheUse) recipe(r recipe) {
	repo, tag := r.repoTag()
	cache := repo + ":mc-" + r.key()
	u.cacheTags[cache] = true
	u.usualTags[repo+":"+tag] = append(u.usualTags[repo+":"+tag], cache)
}

// keepRepo keeps every tag of a registry repository.
func (u *cacheUse) keepRepo(repo, why string) {
	if !u.repos[repo] {
		u.repos[repo] = true
		u.notes = append(u.notes, fmt.Sprintf("kept every tag of %s: %s", repo, why))
	}
}

// keepPrefix keeps every entry whose path starts with prefix.
func (u *cacheUse) keepPrefix(prefix, why string) {
	u.prefixes = append(u.prefixes, prefix)
	u.notes = append(u.notes, fmt.Sprintf("kept %s*: %s", prefix, why))
}

func (u *cacheUse) uses(path string) bool {
	if u.entries[path] {
		return true
	}
	for _, p := range u.prefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// buildID is the directory name gobuild.Builder.Build gives m's build under
// bin/ and src/ (TestBuildIDMatchesGobuild holds the two together).
func buildID(m gobuild.Module) string { return fmt.Sprintf("%s-%s-%s", m.Name, m.Version, m.Key()) }

// rootfsName is the file rootfs.Build packs spec into under rootfs/.
func rootfsName(s rootfs.Spec) string { return fmt.Sprintf("%s-%s.tar", s.Name, s.Key()) }

// kubeProxyRootfsSpec is the Debian tree of the kube-proxy image, as
// clusterRecipes makes it (TestKubeProxySpecMatchesRecipe holds the two
// together).
func kubeProxyRootfsSpec() rootfs.Spec {
	return rootfs.Spec{Name: "kube-proxy", Suite: "bookworm", Variant: "minbase", Include: kubeProxyPackages}
}

// keyProbes compute the keys that need more than the recipes: the
// Kubernetes build's replaces (from its module's go.mod, which `go mod
// download` fetches unless the module cache has it, as every run does) and
// the node's root filesystem (kind's base files, found with `go list -m`
// from the working directory). Tests replace them.
type keyProbes struct {
	kubeReplaces func(ctx context.Context, r KubeRelease) (map[string]string, error)
	nodeSpec     func(ctx context.Context) (rootfs.Spec, error)
}

var defaultProbes = keyProbes{
	kubeReplaces: func(ctx context.Context, r KubeRelease) (map[string]string, error) {
		return gobuild.ModuleReplaces(ctx, "k8s.io/kubernetes", r.Version, "./staging/", r.stagingVersion())
	},
	nodeSpec: nodeRootfsSpec,
}

// currentUse computes what every current recipe uses. A key that cannot be
// computed here keeps every entry it could name, with a note: pruning
// never guesses in favour of deleting.
func currentUse(ctx context.Context, repoRoot string, p keyProbes) (*cacheUse, error) {
	u := newCacheUse()
	for _, v := range KubeVersions() {
		l := &Local{Release: kubeReleases[v]} // recipes only: nothing is built
		kube := l.kubeModule()
		repl, err := p.kubeReplaces(ctx, l.Release)
		if err != nil {
			for _, top := range []string{cacheBin, cacheSrc} {
				u.keepPrefix(top+"/"+kube.Name+"-"+kube.Version+"-", fmt.Sprintf("Kubernetes %s build key unknown: %v", v, err))
			}
		} else {
			kube.Replace = repl
			u.goBuild(kube)
		}
		for _, m := range []gobuild.Module{l.etcdModule(), l.corednsModule(), metallbModule()} {
			u.goBuild(m)
		}
		u.entries[cacheBin+"/"+filepath.Base(l.pauseDir(l.pauseCompile()))] = true
		for _, r := range l.clusterRecipes(kube) {
			// Images of Kubernetes' binaries have unknown keys with the build's.
			if err != nil && r.plan.uses(kube.Key()) {
				repo, _ := r.repoTag()
				u.keepRepo(repo, fmt.Sprintf("Kubernetes %s build key unknown: %v", v, err))
				continue
			}
			u.recipe(r)
		}
	}
	u.entries[cacheRootfs+"/"+rootfsName(kubeProxyRootfsSpec())] = true
	if spec, err := p.nodeSpec(ctx); err != nil {
		u.keepPrefix(cacheRootfs+"/node-", fmt.Sprintf("node root filesystem key unknown: %v", err))
	} else {
		u.entries[cacheRootfs+"/"+rootfsName(spec)] = true
	}
	for _, v := range IstioVersions() {
		r := istioReleases[v]
		u.goBuild(istioStandard(r))
		u.goBuild(istioAgent(r))
		for _, rc := range istioRecipes(nil, r) {
			u.recipe(rc)
		}
	}
	apps, err := SampleApps(repoRoot)
	if err != nil {
		return nil, err
	}
	for _, name := range apps {
		key, err := appKey(repoRoot, name)
		if err != nil {
			return nil, err
		}
		rc, err := (&Local{}).appRecipe(repoRoot, name)
		if err != nil {
			return nil, err
		}
		u.entries[cacheBin+"/app-"+name+"-"+key] = true
		u.recipe(rc)
	}
	return u, nil
}

// Names of what this harness writes into the cache; anything else is not
// ours to judge.
var (
	// <Module.Name>-<Module.Version>-<Module.Key()> (versions start with v).
	goBuildName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*-v[0-9][0-9A-Za-z.+-]*-[0-9a-f]{16}$`)
	// app-<name>-<appKey>
	appName = regexp.MustCompile(`^app-[a-z0-9][a-z0-9_.-]*-[0-9a-f]{12}$`)
	// pause-<PauseTag>-<Kubernetes version>-<pauseCompile key> (and
	// pause-<PauseTag>-<Kubernetes version> of earlier versions)
	pauseName = regexp.MustCompile(`^pause-[0-9][0-9.]*-v[0-9][0-9A-Za-z.+-]*$`)
	// <Spec.Name>-<Spec.Key()>.tar
	rootfsFileName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*-[0-9a-f]{16}\.tar$`)
)

// leftover reports names of what an interrupted build left (the harness's
// preflight removes the same): a temporary name no live process owns.
func leftover(name string) bool { return fsutil.StaleTemp(name) }

// planFiles sorts the entries of the cache's bin/, src/, rootfs/ and debs/
// into stale (or leftover), kept and unknown, and says whether registry/ is
// a directory of ours to collect. debs/ is kept whole: which of its
// packages are current depends on apt's lists of the day, which a prune
// should not consult; it grows by one .deb (~5 MB) per Debian update of
// docker-registry or libc6.
func planFiles(cacheDir string, u *cacheUse) (remove, unknown []CacheEntry, kept int, registry bool, err error) {
	tops, err := os.ReadDir(cacheDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, 0, false, nil
	}
	if err != nil {
		return nil, nil, 0, false, err
	}
	size := func(rel string) int64 { return fsutil.Size(filepath.Join(cacheDir, rel)) }
	for _, top := range tops {
		name := top.Name()
		switch {
		case name == CacheLockFile:
			continue
		case top.Type()&fs.ModeSymlink != 0:
			unknown = append(unknown, CacheEntry{Path: name, Why: "a symbolic link: not followed"})
			continue
		case !top.IsDir() || !isCacheDir(name):
			unknown = append(unknown, CacheEntry{Path: name, Bytes: size(name), Why: "not a directory of meshconform's cache"})
			continue
		case name == cacheRegistry:
			registry = true
			continue
		}
		entries, err := os.ReadDir(filepath.Join(cacheDir, name))
		if err != nil {
			return nil, nil, 0, false, err
		}
		for _, e := range entries {
			rel := name + "/" + e.Name()
			switch v, why := classify(name, e, u); v {
			case entryKeep:
				kept++
			case entryRemove:
				remove = append(remove, CacheEntry{Path: rel, Bytes: size(rel), Why: why})
			default:
				unknown = append(unknown, CacheEntry{Path: rel, Bytes: size(rel), Why: why})
			}
		}
	}
	return remove, unknown, kept, registry, nil
}

func isCacheDir(name string) bool {
	switch name {
	case cacheBin, cacheSrc, cacheRootfs, cacheDebs, cacheRegistry:
		return true
	}
	return false
}

type verdict int

const (
	entryUnknown verdict = iota
	entryKeep
	entryRemove
)

// classify judges one entry of the top-level directory top.
func classify(top string, e fs.DirEntry, u *cacheUse) (verdict, string) {
	name, rel := e.Name(), top+"/"+e.Name()
	if e.Type()&fs.ModeSymlink != 0 {
		return entryUnknown, "a symbolic link: not followed"
	}
	if leftover(name) {
		return entryRemove, "left by an interrupted build"
	}
	var ours bool
	switch top {
	case cacheDebs:
		return entryKeep, ""
	case cacheBin:
		ours = e.IsDir() && (goBuildName.MatchString(name) || appName.MatchString(name) || pauseName.MatchString(name))
	case cacheSrc:
		ours = e.IsDir() && goBuildName.MatchString(name)
	case cacheRootfs:
		ours = e.Type().IsRegular() && rootfsFileName.MatchString(name)
	}
	switch {
	case !ours:
		return entryUnknown, "not named like an entry meshconform makes"
	case u.uses(rel):
		return entryKeep, ""
	}
	return entryRemove, "stale"
}

// registryKeep chooses the registry tags to keep: the cache tag of every
// current recipe, and a usual tag (the name clusters pull) only while it
// points at the same image as a current cache tag of it. A usual tag
// pointing elsewhere holds an image no run will use again: the next run
// retags it from the cache tag, or pushes both.
func registryKeep(tags []registrystore.Tag, u *cacheUse) map[string]bool {
	digest := map[string]string{}
	for _, t := range tags {
		digest[t.Ref()] = t.Digest
	}
	keep := map[string]bool{}
	for _, t := range tags {
		ref := t.Ref()
		if repo, _, _ := strings.Cut(ref, ":"); u.cacheTags[ref] || u.repos[repo] {
			keep[ref] = true
			continue
		}
		for _, c := range u.usualTags[ref] {
			if t.Digest != "" && digest[c] == t.Digest {
				keep[ref] = true
			}
		}
	}
	return keep
}

// CacheSize is the bytes of regular files under dir. dir itself may be a
// symbolic link (a cache moved to a bigger disk); none under it is followed.
func CacheSize(dir string) int64 {
	if resolved, err := filepath.EvalSymlinks(dir); err == nil {
		dir = resolved
	}
	return fsutil.Size(dir)
}

// CacheUsage is the size of each top-level entry of the cache, by name.
func CacheUsage(dir string) ([]CacheEntry, error) {
	if resolved, err := filepath.EvalSymlinks(dir); err == nil {
		dir = resolved
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("image cache: %w", err)
	}
	var out []CacheEntry
	for _, e := range entries {
		ce := CacheEntry{Path: e.Name(), Bytes: fsutil.Size(filepath.Join(dir, e.Name()))}
		if e.Type()&fs.ModeSymlink != 0 {
			ce.Why = "a symbolic link: not followed"
		} else if !isCacheDir(e.Name()) {
			ce.Why = "not a directory of meshconform's cache"
		}
		out = append(out, ce)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Bytes > out[j].Bytes })
	return out, nil
}
