package checks

import (
	"fmt"
	"strings"
)

// Access is what one SubjectAccessReview asks of an API server: may the
// account do Verb on Resource (its Subresource) of API Group, in
// Namespace ("" = in every namespace, or a cluster-scoped resource)? "*"
// asks for every verb, group or resource at once, which only a wildcard
// rule grants (RBAC matches a requested "*" against "*" alone).
type Access struct {
	Verb, Group, Resource, Subresource, Namespace string
}

func (a Access) String() string {
	r := a.Resource
	if a.Group != "" {
		r += "." + a.Group
	}
	if a.Subresource != "" {
		r += "/" + a.Subresource
	}
	if a.Namespace != "" {
		r += " in " + a.Namespace
	}
	return a.Verb + " " + r
}

// Right is an access with the phrase a person reads in a verdict.
type Right struct {
	Phrase string
	Access Access
}

// Answer is an API server's answer to one Access.
type Answer struct {
	Access  Access
	Allowed bool
}

const (
	rbacGroup      = "rbac.authorization.k8s.io"
	admissionGroup = "admissionregistration.k8s.io"
)

// ReaderNeeds is what istiod reads of a cluster through its remote secret
// (a subset of the istio-reader-clusterrole of Istio 1.29's istio-discovery
// chart, manifests/charts/istio-control/istio-discovery/templates/
// reader-clusterrole.yaml): the kinds it builds endpoints from, watched,
// and the TokenReviews that authenticate that cluster's proxies.
var ReaderNeeds = func() []Access {
	var out []Access
	for _, k := range []struct{ group, resource string }{
		{"", "pods"}, {"", "services"}, {"", "namespaces"}, {"", "nodes"}, {"", "configmaps"},
		{"discovery.k8s.io", "endpointslices"},
	} {
		for _, verb := range []string{"get", "list", "watch"} {
			out = append(out, Access{Verb: verb, Group: k.group, Resource: k.resource})
		}
	}
	return append(out, Access{Verb: "create", Group: "authentication.k8s.io", Resource: "tokenreviews"})
}()

// ExcessRights are rights a remote secret's credential must not hold:
// istiod never uses them, and each one turns a leaked secret (it sits in
// the primary's istio-system, readable by whatever may read secrets there)
// into control of the remote cluster. Checked against Istio 1.29.2's
// istio-reader-clusterrole (the rules above; with istiodRemote.enabled,
// as the remote profile sets, it adds create/update configmaps and
// update/patch of the webhook configurations, which istiod needs to write
// istio-ca-root-cert and the caBundle): none of these is granted by it in
// either profile, which TestReaderRoleHoldsNoExcessRight proves from the
// role's rules. Namespace "" asks about every namespace at once, so a right
// held in one namespace only is not judged here.
var ExcessRights = func() []Right {
	out := []Right{
		{"cluster-admin (every verb on every resource)", Access{Verb: "*", Group: "*", Resource: "*"}},
	}
	add := func(phrase, group string, resources, verbs []string, sub string) {
		for _, r := range resources {
			for _, v := range verbs {
				out = append(out, Right{phrase, Access{Verb: v, Group: group, Resource: r, Subresource: sub}})
			}
		}
	}
	write := []string{"create", "update", "patch", "delete"}
	add("write secrets", "", []string{"secrets"}, append(write, "deletecollection"), "")
	add("escalate roles (grant rights it does not hold)", rbacGroup, []string{"clusterroles", "roles"}, []string{"escalate"}, "")
	add("bind roles (to any subject)", rbacGroup, []string{"clusterroles", "roles"}, []string{"bind"}, "")
	add("write roles", rbacGroup, []string{"clusterroles", "roles"}, write, "")
	add("write role bindings", rbacGroup, []string{"clusterrolebindings", "rolebindings"}, write, "")
	add("impersonate users", "", []string{"users"}, []string{"impersonate"}, "")
	add("impersonate groups", "", []string{"groups"}, []string{"impersonate"}, "")
	add("impersonate service accounts", "", []string{"serviceaccounts"}, []string{"impersonate"}, "")
	add("mint service account tokens", "", []string{"serviceaccounts"}, []string{"create"}, "token")
	add("exec into pods", "", []string{"pods"}, []string{"create"}, "exec")
	add("attach to pods", "", []string{"pods"}, []string{"create"}, "attach")
	add("create pods (running as any service account)", "", []string{"pods"}, []string{"create"}, "")
	add("reach every kubelet's API (nodes/proxy)", "", []string{"nodes"}, []string{"get", "create"}, "proxy")
	add("delete namespaces", "", []string{"namespaces"}, []string{"delete"}, "")
	add("approve certificate signing requests", "certificates.k8s.io", []string{"certificatesigningrequests"}, []string{"update"}, "approval")
	// The remote profile's reader may update and patch the webhook
	// configurations istioctl installed (their caBundle): making or
	// removing one is another matter.
	add("create or delete admission webhooks", admissionGroup, []string{"mutatingwebhookconfigurations", "validatingwebhookconfigurations"}, []string{"create", "delete"}, "")
	add("write CustomResourceDefinitions", "apiextensions.k8s.io", []string{"customresourcedefinitions"}, write, "")
	return out
}()

// ExcessAccess is ExcessRights' accesses, in order: what to ask.
func ExcessAccess() []Access {
	out := make([]Access, len(ExcessRights))
	for i, r := range ExcessRights {
		out[i] = r.Access
	}
	return out
}

// accessAnswers maps answers by access, and names the asked accesses
// without an answer.
func accessAnswers(answers []Answer, asked []Access) (map[Access]bool, []string) {
	got := map[Access]bool{}
	for _, a := range answers {
		got[a.Access] = a.Allowed
	}
	var missing []string
	for _, a := range asked {
		if _, ok := got[a]; !ok {
			missing = append(missing, a.String())
		}
	}
	return got, missing
}

// JudgeLeastPrivilege rejects a remote secret whose credential can do far
// more than istiod's reader role needs — cluster-admin, writing secrets,
// escalating or binding roles, impersonating, exec into pods…: the API
// server's answers for who must deny every access of ExcessRights. The
// error names every excess right granted, each phrase once, in
// ExcessRights' order. No verdict on nothing: zero answers, or no answer
// for one of ExcessRights, fail.
//
// A correct mesh fails it with probability zero: RBAC answers
// deterministically, and the reader role grants none of ExcessRights.
// What it costs: one SubjectAccessReview per entry of ExcessRights, a
// few milliseconds each, nothing stored.
func JudgeLeastPrivilege(who string, answers []Answer) error {
	if len(answers) == 0 {
		return fmt.Errorf("no access review answered for %s: its rights are unjudged", who)
	}
	got, missing := accessAnswers(answers, ExcessAccess())
	if len(missing) > 0 {
		return fmt.Errorf("no answer for %s on %d of %d excess rights (%s): its rights are unjudged", who, len(missing), len(ExcessRights), strings.Join(missing, ", "))
	}
	var excess []string
	seen := map[string]bool{}
	for _, r := range ExcessRights {
		if got[r.Access] && !seen[r.Phrase] {
			seen[r.Phrase] = true
			excess = append(excess, r.Phrase)
		}
	}
	if len(excess) > 0 {
		return fmt.Errorf("%s may also: %s (istiod's reader role needs none of these)", who, strings.Join(excess, ", "))
	}
	return nil
}

// JudgeReaderNeeds rejects a remote secret made for an account without
// istiod's reader role (istiod then cannot watch the cluster): the API
// server's answers for who must allow every access of ReaderNeeds. The
// error names every access denied. Zero answers, or no answer for one of
// ReaderNeeds, fail. Deterministic, like JudgeLeastPrivilege; one
// SubjectAccessReview per entry of ReaderNeeds.
func JudgeReaderNeeds(who string, answers []Answer) error {
	if len(answers) == 0 {
		return fmt.Errorf("no access review answered for %s: its rights are unjudged", who)
	}
	got, missing := accessAnswers(answers, ReaderNeeds)
	if len(missing) > 0 {
		return fmt.Errorf("no answer for %s on %d of %d rights istiod needs (%s): its rights are unjudged", who, len(missing), len(ReaderNeeds), strings.Join(missing, ", "))
	}
	var denied []string
	for _, a := range ReaderNeeds {
		if !got[a] {
			denied = append(denied, a.String())
		}
	}
	if len(denied) > 0 {
		return fmt.Errorf("%s may not: %s (istiod's reader role needs all of these)", who, strings.Join(denied, ", "))
	}
	return nil
}
