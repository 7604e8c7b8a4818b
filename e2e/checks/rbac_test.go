package checks

import (
	"strings"
	"testing"
)

// rule is an RBAC PolicyRule, cut to what resource requests match on.
type rule struct{ groups, resources, verbs []string }

// readerRole is Istio 1.29.2's istio-reader-clusterrole
// (manifests/charts/istio-control/istio-discovery/templates/
// reader-clusterrole.yaml at commit 0c774325b938), with MCS_API_GROUP's
// default; remote adds the rules the chart adds when
// istiodRemote.enabled, as the remote profile sets.
var readerRole = []rule{
	{[]string{"config.istio.io", "security.istio.io", "networking.istio.io", "authentication.istio.io", "rbac.istio.io", "telemetry.istio.io", "extensions.istio.io"}, []string{"*"}, []string{"get", "list", "watch"}},
	{[]string{""}, []string{"endpoints", "pods", "services", "nodes", "replicationcontrollers", "namespaces", "secrets", "configmaps"}, []string{"get", "list", "watch"}},
	{[]string{"networking.istio.io"}, []string{"workloadentries"}, []string{"get", "watch", "list"}},
	{[]string{"networking.x-k8s.io", "gateway.networking.k8s.io"}, []string{"gateways"}, []string{"get", "watch", "list"}},
	{[]string{"apiextensions.k8s.io"}, []string{"customresourcedefinitions"}, []string{"get", "list", "watch"}},
	{[]string{"discovery.k8s.io"}, []string{"endpointslices"}, []string{"get", "list", "watch"}},
	{[]string{"multicluster.x-k8s.io"}, []string{"serviceexports"}, []string{"get", "list", "watch", "create", "delete"}},
	{[]string{"multicluster.x-k8s.io"}, []string{"serviceimports"}, []string{"get", "list", "watch"}},
	{[]string{"apps"}, []string{"replicasets"}, []string{"get", "list", "watch"}},
	{[]string{"authentication.k8s.io"}, []string{"tokenreviews"}, []string{"create"}},
	{[]string{"authorization.k8s.io"}, []string{"subjectaccessreviews"}, []string{"create"}},
}

var readerRoleRemote = append(append([]rule(nil), readerRole...),
	rule{[]string{""}, []string{"configmaps"}, []string{"create", "get", "list", "watch", "update"}},
	rule{[]string{"admissionregistration.k8s.io"}, []string{"mutatingwebhookconfigurations"}, []string{"get", "list", "watch", "update", "patch"}},
	rule{[]string{"admissionregistration.k8s.io"}, []string{"validatingwebhookconfigurations"}, []string{"get", "list", "watch", "update"}},
)

// What every authenticated account holds on a kubeadm (kind) cluster:
// system:basic-user (self reviews) and system:discovery, whose rules are
// non-resource URLs only.
var basicUser = []rule{
	{[]string{"authorization.k8s.io"}, []string{"selfsubjectaccessreviews", "selfsubjectrulesreviews"}, []string{"create"}},
	{[]string{"authentication.k8s.io"}, []string{"selfsubjectreviews"}, []string{"create"}},
}

var clusterAdmin = []rule{{[]string{"*"}, []string{"*"}, []string{"*"}}}

// matches is RBAC's matching of one rule (k8s.io/kubernetes
// pkg/apis/rbac/v1/evaluation_helpers.go): "*" in a rule matches anything,
// a requested "*" only a rule's "*", a subresource only "resource/sub" or
// "*" or "*/sub".
func (r rule) matches(a Access) bool {
	has := func(list []string, want string) bool {
		for _, s := range list {
			if s == "*" || s == want {
				return true
			}
		}
		return false
	}
	res := a.Resource
	if a.Subresource != "" {
		res += "/" + a.Subresource
	}
	resOK := has(r.resources, res)
	if !resOK && a.Subresource != "" {
		resOK = has(r.resources, "*/"+a.Subresource)
	}
	return has(r.groups, a.Group) && has(r.verbs, a.Verb) && resOK
}

// answer is what an API server answers for an account bound to roles.
func answer(asked []Access, roles ...[]rule) []Answer {
	var out []Answer
	for _, a := range asked {
		allowed := false
		for _, role := range roles {
			for _, r := range role {
				allowed = allowed || r.matches(a)
			}
		}
		out = append(out, Answer{Access: a, Allowed: allowed})
	}
	return out
}

const reader = "istio-reader-service-account"

// The correct credential passes: the reader role, in either profile, grants
// everything istiod needs and none of the excess rights. The list of
// excess rights is thus checked against Istio's own role, rule by rule.
func TestReaderRoleHoldsNoExcessRight(t *testing.T) {
	for name, role := range map[string][]rule{"primary": readerRole, "remote profile": readerRoleRemote} {
		if err := JudgeLeastPrivilege(reader, answer(ExcessAccess(), role, basicUser)); err != nil {
			t.Errorf("%s reader role: %v", name, err)
		}
		if err := JudgeReaderNeeds(reader, answer(ReaderNeeds, role, basicUser)); err != nil {
			t.Errorf("%s reader role: %v", name, err)
		}
	}
}

// The broken credential: bound to cluster-admin, it is named as such, and
// every other excess right is named with it.
func TestClusterAdminCredentialFails(t *testing.T) {
	err := JudgeLeastPrivilege(reader, answer(ExcessAccess(), readerRoleRemote, clusterAdmin))
	if err == nil {
		t.Fatal("a cluster-admin credential passed")
	}
	for _, want := range []string{reader + " may also: cluster-admin (every verb on every resource), write secrets,", "impersonate users", "escalate roles", "bind roles", "exec into pods", "mint service account tokens", "write role bindings", "delete namespaces"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if strings.Count(err.Error(), "write secrets") != 1 {
		t.Errorf("a phrase named twice: %v", err)
	}
	// It still holds what istiod needs: a credential with too much is not
	// one with too little.
	if err := JudgeReaderNeeds(reader, answer(ReaderNeeds, clusterAdmin)); err != nil {
		t.Error(err)
	}
}

// One excess right alone is named, and nothing else.
func TestImpersonateOnlyFails(t *testing.T) {
	impersonate := []rule{{[]string{""}, []string{"users"}, []string{"impersonate"}}}
	err := JudgeLeastPrivilege(reader, answer(ExcessAccess(), readerRole, impersonate))
	want := reader + " may also: impersonate users (istiod's reader role needs none of these)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

// A credential without the reader role: every denied need is named.
func TestMissingReaderRoleFails(t *testing.T) {
	err := JudgeReaderNeeds(reader, answer(ReaderNeeds, basicUser))
	if err == nil || !strings.Contains(err.Error(), "may not: get pods, list pods, watch pods,") || !strings.Contains(err.Error(), "watch endpointslices.discovery.k8s.io") {
		t.Fatalf("got %v", err)
	}
}

// No verdict on nothing: zero answers, or answers for only some rights,
// fail both judges.
func TestRBACJudgesRefuseTooFewAnswers(t *testing.T) {
	for name, judge := range map[string]func(string, []Answer) error{"least privilege": JudgeLeastPrivilege, "needs": JudgeReaderNeeds} {
		if err := judge(reader, nil); err == nil || !strings.Contains(err.Error(), "unjudged") {
			t.Errorf("%s on zero answers: %v", name, err)
		}
		if err := judge(reader, []Answer{{Access: Access{Verb: "get", Resource: "pods"}, Allowed: true}}); err == nil || !strings.Contains(err.Error(), "unjudged") {
			t.Errorf("%s on one answer: %v", name, err)
		}
	}
}

func TestAccessString(t *testing.T) {
	for a, want := range map[Access]string{
		{Verb: "*", Group: "*", Resource: "*"}:                                                                          "* *.*",
		{Verb: "create", Resource: "pods", Subresource: "exec"}:                                                         "create pods/exec",
		{Verb: "bind", Group: "rbac.authorization.k8s.io", Resource: "roles"}:                                           "bind roles.rbac.authorization.k8s.io",
		{Verb: "delete", Resource: "secrets", Namespace: "istio-system"}:                                                "delete secrets in istio-system",
		{Verb: "update", Group: "certificates.k8s.io", Resource: "certificatesigningrequests", Subresource: "approval"}: "update certificatesigningrequests.certificates.k8s.io/approval",
	} {
		if got := a.String(); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}
