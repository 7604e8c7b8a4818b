package rbac

import (
	"context"
	"slices"
	"strings"
	"testing"

	authzv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"
)

// The run's roles must not be cluster-admin in disguise: no wildcard verb,
// no verb that grants more rights (escalate, bind, impersonate), no write
// to a cluster-scoped object but the run's namespaces, no reading secrets
// outside the istio namespace. Each is what a careless role would grant.
func TestRunRolesAreLeast(t *testing.T) {
	cr, role := RunRoles("istio-system")
	clusterScoped := []string{"nodes", "mutatingwebhookconfigurations", "validatingwebhookconfigurations", "customresourcedefinitions", "clusterroles", "clusterrolebindings"}
	for _, r := range cr.Rules {
		for _, v := range r.Verbs {
			if v == "*" || v == "escalate" || v == "bind" || v == "impersonate" {
				t.Errorf("rule %v grants %q", r, v)
			}
		}
		for _, res := range r.Resources {
			writes := slices.ContainsFunc(r.Verbs, func(v string) bool { return v != "get" && v != "list" && v != "watch" })
			if writes && slices.Contains(clusterScoped, res) {
				t.Errorf("rule %v writes cluster-scoped %s", r, res)
			}
			if res == "secrets" && slices.ContainsFunc(r.Verbs, func(v string) bool { return v != "create" }) {
				t.Errorf("the ClusterRole may %v secrets everywhere: only create", r.Verbs)
			}
			if res == "*" && !slices.ContainsFunc(r.APIGroups, func(g string) bool { return strings.HasSuffix(g, ".istio.io") }) {
				t.Errorf("rule %v: a wildcard resource outside Istio's groups", r)
			}
		}
	}
	if role.Namespace != "istio-system" || len(role.Rules) != 1 || role.Rules[0].Resources[0] != "secrets" || slices.Contains(role.Rules[0].Verbs, "create") {
		t.Errorf("the Role: %+v", role)
	}
}

func TestYAMLHoldsTheFourRoles(t *testing.T) {
	b, err := YAML("istio-system")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, doc := range strings.Split(string(b), "\n---\n")[1:] {
		var o struct {
			Kind     string `json:"kind"`
			Metadata struct{ Name, Namespace string }
		}
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, o.Kind+" "+o.Metadata.Namespace+"/"+o.Metadata.Name)
	}
	want := []string{"ClusterRole /meshconform-existing-mesh", "Role istio-system/meshconform-existing-mesh", "ClusterRole /meshconform-audit", "Role istio-system/meshconform-audit"}
	if !slices.Equal(kinds, want) {
		t.Errorf("YAML holds %v, want %v", kinds, want)
	}
}

// Lacking names exactly the rights the API server denies, each once, with
// the namespace where the right is namespaced.
func TestLacking(t *testing.T) {
	cs := fake.NewClientset()
	denied := map[string]bool{"list daemonsets.apps": true, "create pods/portforward": true, "get secrets in istio-system": true}
	asked := 0
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sar := a.(k8stesting.CreateAction).GetObject().(*authzv1.SelfSubjectAccessReview)
		ra := sar.Spec.ResourceAttributes
		res := ra.Resource
		if ra.Subresource != "" {
			res += "/" + ra.Subresource
		}
		what := ra.Verb + " " + qualified(res, ra.Group)
		if ra.Namespace != "" {
			what += " in " + ra.Namespace
		}
		asked++
		sar.Status.Allowed = !denied[what]
		return true, sar, nil
	})
	got, err := Lacking(context.Background(), cs, "istio-system")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"create pods/portforward", "get secrets in istio-system", "list daemonsets.apps"}
	if !slices.Equal(got, want) {
		t.Errorf("Lacking = %v, want %v", got, want)
	}
	if asked < 50 {
		t.Errorf("only %d rights asked", asked)
	}
	// Everything allowed: nothing lacking (admin credentials).
	denied = map[string]bool{}
	if got, _ := Lacking(context.Background(), cs, "istio-system"); len(got) != 0 {
		t.Errorf("with every right: %v", got)
	}
}
