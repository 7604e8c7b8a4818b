package workloads

import (
	"io/fs"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/fixtures/conformance"
	"github.com/meshconform/meshconform/fixtures/install"
	"github.com/meshconform/meshconform/fixtures/platform"
)

type podOf struct {
	name string
	meta metav1.ObjectMeta
	spec corev1.PodSpec
}

// fixturePods are every pod the run creates from fixtures: the conformance
// and platform manifests' Deployments and Pods, and the injection check's
// pod.
func fixturePods(t *testing.T) []podOf {
	t.Helper()
	var out []podOf
	for _, fsys := range []fs.FS{conformance.Manifests, platform.Manifests} {
		objs, err := decodeAll(fsys)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			switch w := o.(type) {
			case *appsv1.Deployment:
				out = append(out, podOf{"deployment " + w.Name, w.Spec.Template.ObjectMeta, w.Spec.Template.Spec})
			case *corev1.Pod:
				out = append(out, podOf{"pod " + w.Name, w.ObjectMeta, w.Spec})
			}
		}
	}
	echo, err := install.EchoPod("ns", "img")
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, podOf{"injection check's pod", echo.ObjectMeta, echo.Spec})
	if len(out) < 7 {
		t.Fatalf("only %d fixture pods found", len(out))
	}
	return out
}

// Every pod of the run passes restricted Pod Security as the API server's
// admission judges it, so hardened platforms admit the apps; and every
// injected one carries the istio-proxy overlay that makes the container
// the injector adds pass it too (the grpc-agent template sets no
// securityContext).
func TestFixturesPassRestrictedPodSecurity(t *testing.T) {
	for _, p := range fixturePods(t) {
		if err := checks.PodSecurity(PodSecurityRestricted, p.meta, p.spec); err != nil {
			t.Errorf("%s: %v", p.name, err)
		}
		injected := p.meta.Annotations["inject.istio.io/templates"] != ""
		var overlay *corev1.Container
		for i, c := range p.spec.Containers {
			if c.Name == ProxyOverlay {
				overlay = &p.spec.Containers[i]
			}
		}
		switch {
		case injected && overlay == nil:
			t.Errorf("%s is injected but declares no %s overlay: the injected agent would break restricted Pod Security", p.name, ProxyOverlay)
		case !injected && overlay != nil:
			t.Errorf("%s is not injected but declares %s: nothing would replace its image %q", p.name, ProxyOverlay, overlay.Image)
		case overlay != nil && overlay.Image != "auto":
			t.Errorf("%s: overlay image %q, want auto (the injector's own)", p.name, overlay.Image)
		case overlay != nil && overlay.ImagePullPolicy != corev1.PullIfNotPresent:
			// Defaulted, "auto" (no tag) reads as Always, which the
			// injector keeps: a node that holds the proxy image but cannot
			// reach its registry would never start the pod.
			t.Errorf("%s: overlay imagePullPolicy %q, want IfNotPresent", p.name, overlay.ImagePullPolicy)
		}
		for _, c := range p.spec.Containers {
			if c.Name == ProxyOverlay {
				continue
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("%s container %s: want requests and limits of CPU and memory (clusters with quotas refuse pods without), got %v", p.name, c.Name, c.Resources)
			}
		}
		if injected && (p.meta.Annotations["sidecar.istio.io/proxyCPULimit"] == "" || p.meta.Annotations["sidecar.istio.io/proxyMemoryLimit"] == "") {
			t.Errorf("%s: the injected agent has no limits (sidecar.istio.io/proxy*Limit)", p.name)
		}
		if p.spec.NodeSelector["kubernetes.io/arch"] != "amd64" || p.spec.NodeSelector["kubernetes.io/os"] != "linux" {
			t.Errorf("%s: node selector %v, want linux/amd64 (the images' platform)", p.name, p.spec.NodeSelector)
		}
	}
}

// The judge must refuse what restricted refuses: the fixtures' pods with
// one protection taken away each.
func TestPodSecurityRejectsEachWeakening(t *testing.T) {
	var base podOf
	for _, p := range fixturePods(t) {
		if p.name == "deployment frontend" {
			base = p
		}
	}
	if base.name == "" {
		t.Fatal("no frontend deployment")
	}
	for name, weaken := range map[string]func(s *corev1.PodSpec){
		"overlay without securityContext (the bare grpc-agent container)": func(s *corev1.PodSpec) { s.Containers[1].SecurityContext = nil },
		"app may escalate privileges": func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
		},
		"app keeps its capabilities": func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.Capabilities = nil },
		"no seccomp profile":         func(s *corev1.PodSpec) { s.SecurityContext.SeccompProfile = nil },
		"may run as root":            func(s *corev1.PodSpec) { s.SecurityContext.RunAsNonRoot = nil },
	} {
		spec := *base.spec.DeepCopy()
		if spec.Containers[1].Name != ProxyOverlay {
			t.Fatalf("frontend's second container is %s", spec.Containers[1].Name)
		}
		weaken(&spec)
		if err := checks.PodSecurity(PodSecurityRestricted, base.meta, spec); err == nil {
			t.Errorf("%s: admitted", name)
		}
	}
	if err := checks.PodSecurity("strict", base.meta, base.spec); err == nil {
		t.Error("an unknown level accepted")
	}
}

func TestParseNamespaceLabels(t *testing.T) {
	got, err := ParseNamespaceLabels(" team=mesh, policy.example.com/opt-in=true ,")
	if err != nil || len(got) != 2 || got["team"] != "mesh" || got["policy.example.com/opt-in"] != "true" {
		t.Fatalf("got %v, %v", got, err)
	}
	for in, want := range map[string]string{
		"team":          `is not namespace label key=value`,
		"team=a,team=b": "given twice",
		"bad key=x":     "namespace label key",
		"team=not ok":   "value",
		RunLabel + "=x": "the run's own",
		"pod-security.kubernetes.io/enforce=base": "the run's own",
		"istio-injection=enabled":                 "decides Istio's injection",
		"istio.io/rev=canary":                     "decides Istio's injection",
	} {
		if _, err := ParseNamespaceLabels(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", in, err, want)
		}
	}
}

func TestRunLabels(t *testing.T) {
	r := ForRun("r1").With(map[string]string{"team": "mesh", RunLabel: "other"}, PodSecurityLabels(PodSecurityRestricted))
	if r[RunLabel] != "r1" || r["team"] != "mesh" || r["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("labels = %v", r)
	}
	// The run's namespaces are found by its ID alone: labels the user adds
	// (or drops later) must not hide one from the clean-up.
	if got := r.Selector(); got != RunLabel+"=r1" {
		t.Errorf("selector = %q", got)
	}
	if ForRun("").Selector() != "" || PodSecurityLabels("") != nil {
		t.Error("no run or no level stamps something")
	}
}
