package checks

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// restrictedPod is an app pod as a correct run has it after injection:
// the app and the injected agent with the fixtures' overlay merged in.
func restrictedPod(name string) corev1.Pod {
	no, yes, uid := false, true, int64(1337)
	hardened := func() *corev1.SecurityContext {
		return &corev1.SecurityContext{AllowPrivilegeEscalation: &no, Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
	}
	proxy := hardened()
	proxy.RunAsUser, proxy.RunAsNonRoot = &uid, &yes
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "production", Name: name},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: &yes, SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers:      []corev1.Container{{Name: "app", SecurityContext: hardened()}, {Name: "istio-proxy", SecurityContext: proxy}},
			Volumes:         []corev1.Volume{{Name: "istio-xds", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
}

func TestPodsPassPodSecurity(t *testing.T) {
	ok := map[string][]corev1.Pod{"east-1": {restrictedPod("a")}, "west-1": {restrictedPod("b")}}
	if err := PodsPassPodSecurity("restricted", ok); err != nil {
		t.Fatal(err)
	}
	// The broken runs: the agent injected by the bare grpc-agent template
	// (no overlay: no securityContext), a webhook adding a privileged
	// container, a host path, a cluster with no pod, nothing at all.
	bare := restrictedPod("bare")
	bare.Spec.Containers[1].SecurityContext = nil
	priv := restrictedPod("priv")
	yes := true
	priv.Spec.Containers = append(priv.Spec.Containers, corev1.Container{Name: "debug", SecurityContext: &corev1.SecurityContext{Privileged: &yes}})
	host := restrictedPod("host")
	host.Spec.Volumes = append(host.Spec.Volumes, corev1.Volume{Name: "h", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}})
	for name, tc := range map[string]struct {
		pods map[string][]corev1.Pod
		want string
	}{
		"agent without the overlay":  {map[string][]corev1.Pod{"east-1": {restrictedPod("a"), bare}}, `east-1: pod production/bare: restricted Pod Security refuses it: allowPrivilegeEscalation != false, unrestricted capabilities (allowPrivilegeEscalation != false (container "istio-proxy"`},
		"a privileged container":     {map[string][]corev1.Pod{"west-1": {priv}}, `privileged (container "debug"`},
		"a host path":                {map[string][]corev1.Pod{"west-1": {host}}, "hostPath"},
		"a cluster without app pods": {map[string][]corev1.Pod{"east-1": {restrictedPod("a")}, "west-1": nil}, "west-1: no app pod to judge"},
		"nothing":                    {nil, "no cluster's pods"},
	} {
		err := PodsPassPodSecurity("restricted", tc.pods)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
}
