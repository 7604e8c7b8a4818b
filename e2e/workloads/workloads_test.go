package workloads

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/meshconform/meshconform/fixtures/conformance"
	"github.com/meshconform/meshconform/fixtures/platform"
)

func TestSetImagesReplacesFixtureNames(t *testing.T) {
	d := &appsv1.Deployment{}
	d.Name = "echo"
	d.Spec.Template.Spec.Containers = []corev1.Container{{Name: "a", Image: "meshconform/probe"}, {Name: "b", Image: "registry.k8s.io/pause:3.10"}}
	if err := SetImages(d, Images{"meshconform/probe": "docker.io/meshconform/probe:abc"}); err != nil {
		t.Fatal(err)
	}
	cs := d.Spec.Template.Spec.Containers
	if cs[0].Image != "docker.io/meshconform/probe:abc" || cs[1].Image != "registry.k8s.io/pause:3.10" {
		t.Errorf("images = %s, %s", cs[0].Image, cs[1].Image)
	}
}

func TestSetImagesRejectsUnbuiltFixtureImage(t *testing.T) {
	p := &corev1.Pod{}
	p.Name = "client"
	p.Spec.Containers = []corev1.Container{{Image: "meshconform/other"}}
	err := SetImages(p, Images{})
	if err == nil || !strings.Contains(err.Error(), "no image built for meshconform/other") {
		t.Errorf("got %v", err)
	}
}

func TestManifestsDecode(t *testing.T) {
	// The platform fixtures must decode into typed objects with fixture images.
	objs, err := decodeAll(platform.Manifests)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) < 3 {
		t.Fatalf("got %d objects", len(objs))
	}
	for _, o := range objs {
		if err := SetImages(o, Images{"meshconform/probe": "x"}); err != nil {
			t.Error(err)
		}
	}
}

func TestSetEnvPrependsToEveryContainer(t *testing.T) {
	d := &appsv1.Deployment{}
	d.Spec.Template.Spec.Containers = []corev1.Container{{Name: "app", Env: []corev1.EnvVar{{Name: "POD_NAME"}}}, {Name: "b"}, {Name: ProxyOverlay, Image: "auto"}}
	SetEnv(d, map[string]string{"ZONE": "us-east-1a", "CLUSTER": "cluster1"})
	got := d.Spec.Template.Spec.Containers[0].Env
	if len(got) != 3 || got[0].Name != "CLUSTER" || got[1].Name != "ZONE" || got[2].Name != "POD_NAME" {
		t.Errorf("env = %+v", got)
	}
	if len(d.Spec.Template.Spec.Containers[1].Env) != 2 {
		t.Error("second container not given env")
	}
	// The app's identity is not the proxy's: the overlay is merged into the
	// injected istio-proxy and must not carry the app's variables there.
	if env := d.Spec.Template.Spec.Containers[2].Env; len(env) != 0 {
		t.Errorf("istio-proxy overlay given env %+v", env)
	}
}

// The sample apps learn who they are from their environment: every
// meshapp container must declare POD_NAME and VERSION.
func TestConformanceFixturesDeclareIdentity(t *testing.T) {
	objs, err := decodeAll(conformance.Manifests)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, o := range objs {
		d, ok := o.(*appsv1.Deployment)
		if !ok {
			continue
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == ProxyOverlay {
				continue
			}
			names := map[string]bool{}
			for _, e := range c.Env {
				names[e.Name] = true
			}
			if !names["POD_NAME"] || !names["VERSION"] {
				t.Errorf("deployment %s container %s env %v lacks POD_NAME or VERSION", d.Name, c.Name, names)
			}
			seen++
		}
		if d.Spec.Template.Annotations["inject.istio.io/templates"] != "grpc-agent" {
			t.Errorf("deployment %s is not injected with the grpc-agent template", d.Name)
		}
	}
	if seen < 3 {
		t.Errorf("only %d containers checked", seen)
	}
}
