// Package snapshot proves that a run left a cluster it did not create
// exactly as it found it: it records the identity (UID), spec generation and
// a digest of the labels and annotations of every object the API server
// lists — cluster-scoped and in every namespace — before the run and after
// its clean-up, and names every object added, removed, replaced or changed
// in between. Objects a controller owns (pods, ReplicaSets, Jobs) are left
// out: their owner shows any edit, and they come and go on their own.
// What it cannot see: edits of a config map's or secret's data (metadata
// only, so no secret is ever read) and of volatile kinds (events, leases,
// endpoints).
//
// On a cluster that others change while the run goes on, each object's
// field managers say who made a difference (CompareAttributed): the run's
// own writes carry its manager; others' additions and edits are reported
// apart and do not count against it.
//
// It reads metadata only (client-go's metadata client), so it never reads a
// Secret's data: a snapshot of a user's cluster holds no credentials.
package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
)

// Volatile are resources the cluster itself creates and deletes all the
// time, whatever a run does: a difference in them says nothing about the
// run. Everything else is compared.
var Volatile = map[string]bool{
	"events":                             true, // core/v1
	"events.events.k8s.io":               true,
	"leases.coordination.k8s.io":         true, // leader election, node heartbeats
	"endpointslices.discovery.k8s.io":    true, // rewritten as pods come and go
	"endpoints":                          true,
	"tokenreviews.authentication.k8s.io": true,
	// Deprecated since 1.19 and computed on each read, not stored.
	"componentstatuses": true,
	// metrics-server's: computed on each read, one per running pod or
	// node, with no field manager; they come and go with the pods.
	"pods.metrics.k8s.io":  true,
	"nodes.metrics.k8s.io": true,
}

// Object is one object's identity in a snapshot.
type Object struct {
	UID        string
	Generation int64
	// Meta digests the labels and annotations (less VolatileAnnotations):
	// edits that move no generation, and the only edits of objects that
	// have none (config maps, namespaces, nodes, secrets).
	Meta string
	// Managers digests, per field manager, its managedFields entries
	// (operation, subresource, time, fields): every write moves the
	// writer's digest, so a difference names who made it (CompareAttributed).
	Managers map[string]string
}

// managerDigests is a short digest of each manager's managedFields entries.
func managerDigests(entries []metav1.ManagedFieldsEntry) map[string]string {
	by := map[string][]string{}
	for _, e := range entries {
		var when, fields string
		if e.Time != nil {
			when = e.Time.UTC().Format(time.RFC3339)
		}
		if e.FieldsV1 != nil {
			fields = e.FieldsV1.GetRawString()
		}
		by[e.Manager] = append(by[e.Manager], strings.Join([]string{string(e.Operation), e.Subresource, e.APIVersion, when, fields}, "\x00"))
	}
	out := make(map[string]string, len(by))
	for m, es := range by {
		sort.Strings(es)
		sum := sha256.Sum256([]byte(strings.Join(es, "\x01")))
		out[m] = hex.EncodeToString(sum[:8])
	}
	return out
}

// VolatileAnnotations are written by the cluster's own controllers on
// their schedule, not by anything a run does.
var VolatileAnnotations = map[string]bool{
	"control-plane.alpha.kubernetes.io/leader": true, // leader election on config maps
	"node.alpha.kubernetes.io/ttl":             true, // set from the cluster's size
}

// metaDigest is a short digest of an object's labels and annotations.
func metaDigest(labels, annotations map[string]string) string {
	var kv []string
	for k, v := range labels {
		kv = append(kv, "l:"+k+"="+v)
	}
	for k, v := range annotations {
		if !VolatileAnnotations[k] {
			kv = append(kv, "a:"+k+"="+v)
		}
	}
	sort.Strings(kv)
	sum := sha256.Sum256([]byte(strings.Join(kv, "\n")))
	return hex.EncodeToString(sum[:8])
}

// controlled reports whether a controller owns the object (a ReplicaSet's
// pods, a Deployment's ReplicaSets, a CronJob's Jobs): the controller
// replaces them on its own schedule; an edit by the run shows on the owner.
func controlled(refs []metav1.OwnerReference) bool {
	for _, r := range refs {
		if r.Controller != nil && *r.Controller {
			return true
		}
	}
	return false
}

// Snapshot maps "resource.group ns/name" to the object's identity.
type Snapshot map[string]Object

// Scope limits a snapshot to what a run on a cluster it did not create
// may touch, so that the cluster's own churn (controllers annotating
// nodes, a CronJob's jobs, certificate requests) is never read as the
// run's, and a credential without cluster-wide list rights can audit.
type Scope struct {
	// Cluster says which cluster-scoped resources ("resource.group") are
	// listed.
	Cluster func(resource string) bool
	// Namespaces are the namespaces whose every resource is listed.
	Namespaces []string
	// Named lists, for a namespaced resource ("resource.group"), the
	// objects of these names in every namespace; no other object of
	// another namespace is listed.
	Named map[string][]string
}

// ClusterChurn are cluster-scoped resources a live cluster changes by
// itself: node heartbeats and annotations, certificate requests of
// kubelets rotating their certificates, volumes provisioned for others.
var ClusterChurn = map[string]bool{
	"nodes": true, "certificatesigningrequests.certificates.k8s.io": true,
	"persistentvolumes": true, "volumeattachments.storage.k8s.io": true, "csinodes.storage.k8s.io": true,
}

// MeshScope is the audit of a brought cluster: every cluster-scoped
// resource but ClusterChurn (namespaces, so a run's namespace left behind
// shows; webhooks, CRDs, RBAC, Istio's and Gateway API's classes), every
// resource in the istio namespace, and, in every namespace, the objects
// of the names in named (the config maps istiod writes into each
// namespace). The run's own namespaces are gone after it, with what they
// held; the rest of the users' namespaces is not read.
func MeshScope(istioNamespace string, named map[string][]string) Scope {
	return Scope{
		Cluster:    func(r string) bool { return !ClusterChurn[r] },
		Namespaces: []string{istioNamespace},
		Named:      named,
	}
}

// Take lists every listable resource of the cluster at cfg (metadata only),
// skipping Volatile ones. A resource that cannot be listed fails the
// snapshot: an audit that skipped it would prove nothing about it.
func Take(ctx context.Context, cfg *rest.Config) (Snapshot, error) {
	snap, _, err := take(ctx, cfg, nil)
	return snap, err
}

// TakeScoped lists what scope names. What cannot be listed (a group that
// cannot be discovered, a resource the credentials may not list) is
// returned as notListed, for the audit to report, not to fail on: on a
// cluster the user brought, least-privilege credentials are expected.
func TakeScoped(ctx context.Context, cfg *rest.Config, scope Scope) (snap Snapshot, notListed []string, err error) {
	snap, notListed, err = take(ctx, cfg, &scope)
	if err == nil && len(snap) == 0 {
		// Every cluster has namespaces: an audit that listed nothing
		// would pass whatever the run did.
		return nil, notListed, fmt.Errorf("the audit listed no object (not listed: %s)", strings.Join(notListed, ", "))
	}
	return snap, notListed, err
}

// listing is one list call: gvr in namespace ns ("" for all), or, with
// name, the objects of that name in every namespace.
type listing struct {
	gvr  schema.GroupVersionResource
	ns   string
	name string
}

func take(ctx context.Context, cfg *rest.Config, scope *Scope) (Snapshot, []string, error) {
	// A snapshot lists ~100 resources twice per run; client-go's default
	// 5 requests/s would make that 12 s per cluster.
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 100, 200
	cfg.WarningHandler = rest.NoWarnings{}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	var notListed []string
	lists, err := dc.ServerPreferredResources()
	if err != nil {
		// An API group that cannot be discovered (an aggregated API that
		// is down) could not be audited: the audit says so rather than
		// pass over it.
		if scope == nil || !discovery.IsGroupDiscoveryFailedError(err) {
			return nil, nil, fmt.Errorf("discover API resources (every group must be listable for the audit): %w", err)
		}
		notListed = append(notListed, err.Error())
	}
	var todo []listing
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			return nil, nil, err
		}
		for _, r := range l.APIResources {
			gvr := gv.WithResource(r.Name)
			if strings.Contains(r.Name, "/") || !hasVerb(r, "list") || Volatile[resourceKey(gvr)] {
				continue
			}
			todo = append(todo, scope.listings(gvr, r.Namespaced)...)
		}
	}
	snap := Snapshot{}
	results := make([]Snapshot, len(todo))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, l := range todo {
		g.Go(func() error {
			gvr := l.gvr
			var list *metav1.PartialObjectMetadataList
			var err error
			switch {
			case l.name != "":
				list, err = mc.Resource(gvr).List(gctx, metav1.ListOptions{FieldSelector: "metadata.name=" + l.name})
			case l.ns == "":
				list, err = mc.Resource(gvr).List(gctx, metav1.ListOptions{})
			default:
				list, err = mc.Resource(gvr).Namespace(l.ns).List(gctx, metav1.ListOptions{})
			}
			if err != nil && scope != nil && (apierrors.IsForbidden(err) || apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err)) {
				mu.Lock()
				notListed = append(notListed, fmt.Sprintf("%s%s: %v", resourceKey(gvr), inNamespace(l.ns), apierrors.ReasonForError(err)))
				mu.Unlock()
				return nil
			}
			if err != nil {
				return fmt.Errorf("list %s%s: %w", resourceKey(gvr), inNamespace(l.ns), err)
			}
			part := Snapshot{}
			for _, o := range list.Items {
				if controlled(o.OwnerReferences) {
					continue
				}
				part[key(gvr, o.Namespace, o.Name)] = Object{UID: string(o.UID), Generation: o.Generation, Meta: metaDigest(o.Labels, o.Annotations), Managers: managerDigests(o.ManagedFields)}
			}
			results[i] = part
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	for _, part := range results {
		for k, v := range part {
			snap[k] = v
		}
	}
	sort.Strings(notListed)
	return snap, notListed, nil
}

// listings are the lists one resource takes: the whole cluster's without
// a scope; with one, a cluster-scoped resource the scope keeps, or a
// namespaced one in each of its namespaces.
func (s *Scope) listings(gvr schema.GroupVersionResource, namespaced bool) []listing {
	switch {
	case s == nil:
		return []listing{{gvr: gvr}}
	case !namespaced:
		if s.Cluster != nil && s.Cluster(resourceKey(gvr)) {
			return []listing{{gvr: gvr}}
		}
		return nil
	}
	out := make([]listing, 0, len(s.Namespaces))
	for _, ns := range s.Namespaces {
		out = append(out, listing{gvr: gvr, ns: ns})
	}
	for _, name := range s.Named[resourceKey(gvr)] {
		out = append(out, listing{gvr: gvr, name: name})
	}
	return out
}

func inNamespace(ns string) string {
	if ns == "" {
		return ""
	}
	return " in " + ns
}

func hasVerb(r metav1.APIResource, verb string) bool {
	for _, v := range r.Verbs {
		if v == verb {
			return true
		}
	}
	return false
}

func resourceKey(gvr schema.GroupVersionResource) string {
	if gvr.Group == "" {
		return gvr.Resource
	}
	return gvr.Resource + "." + gvr.Group
}

func key(gvr schema.GroupVersionResource, ns, name string) string {
	if ns == "" {
		return resourceKey(gvr) + " " + name
	}
	return resourceKey(gvr) + " " + ns + "/" + name
}

// ParseKey splits a Snapshot key into the resource ("resource.group", or
// the bare resource of the core group), the namespace (empty for a
// cluster-scoped object) and the name. Names of either scope never hold a
// "/" or a space, so the split is exact.
func ParseKey(k string) (resource, namespace, name string) {
	resource, obj, _ := strings.Cut(k, " ")
	if ns, n, ok := strings.Cut(obj, "/"); ok {
		return resource, ns, n
	}
	return resource, "", obj
}

// Diff is what changed between two snapshots.
type Diff struct {
	// Added exist after but not before: left behind by the run.
	Added []string
	// Removed existed before and are gone: deleted by the run.
	Removed []string
	// Replaced have the same name but a new UID: deleted and recreated.
	Replaced []string
	// Changed kept their UID but their spec generation moved: edited.
	Changed []string
	// NotListed could not be listed (a scoped audit's credentials): not
	// audited, reported, not a difference.
	NotListed []string
	// Others were added or changed by field managers none of which is the
	// run's (CompareAttributed), each with who: the cluster's own churn,
	// reported, not a difference.
	Others []string
}

// Compare returns what after has that before had not, and the reverse.
func Compare(before, after Snapshot) Diff {
	return compare(before, after, "")
}

// CompareAttributed is Compare on a cluster others change while the run
// goes on: an object added or changed is the run's only if runManager is
// among the field managers whose entries the addition or change moved (or
// no manager's moved, so nobody can be named); otherwise it goes to
// Others, with the managers that did move. The run must write under
// runManager (as every client of the harness does, by its user agent).
// Removals and replacements stay the run's whoever made them: a deleted
// object names no manager, and the run may have deleted it. An empty
// runManager attributes nothing (Compare).
func CompareAttributed(before, after Snapshot, runManager string) Diff {
	return compare(before, after, runManager)
}

func compare(before, after Snapshot, runManager string) Diff {
	var d Diff
	// changed files k, changed as why, under the run's changes or, by
	// the managers the change moved, under others'.
	changed := func(list *[]string, k, why string, b, a Object) {
		if runManager != "" {
			if by := moved(b.Managers, a.Managers); len(by) > 0 && !slices.Contains(by, runManager) {
				d.Others = append(d.Others, fmt.Sprintf("%s (%s by %s)", k, why, strings.Join(by, ", ")))
				return
			}
		}
		if why != "added" {
			k += " (" + why + ")"
		}
		*list = append(*list, k)
	}
	for k, a := range after {
		b, ok := before[k]
		switch {
		case !ok:
			changed(&d.Added, k, "added", Object{}, a)
		case b.UID != a.UID:
			d.Replaced = append(d.Replaced, k)
		case b.Generation != a.Generation:
			changed(&d.Changed, k, fmt.Sprintf("generation %d → %d", b.Generation, a.Generation), b, a)
		case b.Meta != a.Meta:
			changed(&d.Changed, k, "labels or annotations", b, a)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			d.Removed = append(d.Removed, k)
		}
	}
	for _, s := range [][]string{d.Added, d.Removed, d.Replaced, d.Changed, d.Others} {
		sort.Strings(s)
	}
	return d
}

// moved names the managers whose entries differ between before and after
// (new, gone or rewritten), sorted.
func moved(before, after map[string]string) []string {
	var out []string
	for m, a := range after {
		if before[m] != a {
			out = append(out, m)
		}
	}
	for m := range before {
		if _, ok := after[m]; !ok {
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out
}

// Empty reports whether the cluster was left exactly as found.
func (d Diff) Empty() bool {
	return len(d.Added)+len(d.Removed)+len(d.Replaced)+len(d.Changed) == 0
}

// String names every difference, one kind per line, and what was not
// audited.
func (d Diff) String() string {
	var b strings.Builder
	if d.Empty() {
		b.WriteString("left exactly as found")
		if len(d.NotListed) > 0 {
			b.WriteString(", as far as listed")
		}
		if len(d.Others) > 0 {
			b.WriteString(", but for others' changes")
		}
		b.WriteString("\n")
	}
	for _, part := range []struct {
		what string
		keys []string
	}{{"added", d.Added}, {"removed", d.Removed}, {"replaced", d.Replaced}, {"changed", d.Changed}, {"not listed", d.NotListed}, {"by others, not the run", d.Others}} {
		if len(part.keys) > 0 {
			fmt.Fprintf(&b, "%s (%d): %s\n", part.what, len(part.keys), strings.Join(part.keys, ", "))
		}
	}
	return strings.TrimSpace(b.String())
}
