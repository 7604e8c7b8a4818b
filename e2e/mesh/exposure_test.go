package mesh

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestIngressAddress(t *testing.T) {
	for name, tc := range map[string]struct {
		ings []corev1.LoadBalancerIngress
		want string
	}{
		"MetalLB's IP":              {[]corev1.LoadBalancerIngress{{IP: "172.30.255.200"}}, "172.30.255.200"},
		"AWS's host name":           {[]corev1.LoadBalancerIngress{{Hostname: "a1b2-123.elb.us-east-1.amazonaws.com"}}, "a1b2-123.elb.us-east-1.amazonaws.com"},
		"an IP before a host name":  {[]corev1.LoadBalancerIngress{{Hostname: "lb.example"}, {IP: "10.0.0.9"}}, "10.0.0.9"},
		"a malformed IP, then name": {[]corev1.LoadBalancerIngress{{IP: "10.0.0", Hostname: "lb.example"}}, "lb.example"},
	} {
		if got, err := IngressAddress(tc.ings); err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, tc.want)
		}
	}
	if _, err := IngressAddress(nil); err == nil || !strings.Contains(err.Error(), "no IP or host name") {
		t.Errorf("no ingress: %v", err)
	}
}

func lb(name string, ports []int32, ings ...corev1.LoadBalancerIngress) corev1.Service {
	s := corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: p})
	}
	s.Status.LoadBalancer.Ingress = ings
	return s
}

// istiod is found under meshconform's names first, then under any name a
// hand-made mesh gave the LoadBalancer Service carrying istiod's xDS port;
// Services that expose something else are never taken for it.
func TestExposure(t *testing.T) {
	ip := corev1.LoadBalancerIngress{IP: "172.30.255.200"}
	host := corev1.LoadBalancerIngress{Hostname: "istiod.elb.example"}
	for name, tc := range map[string]struct {
		svcs         []corev1.Service
		rev          string
		addr, svc    string
		errSubstring string
	}{
		"ours":                     {[]corev1.Service{lb("istiod-remote", nil, ip)}, "", "172.30.255.200", "istiod-remote", ""},
		"revision's first":         {[]corev1.Service{lb("istio-eastwestgateway", []int32{15012}, host), lb("istiod-canary-remote", nil, ip)}, "canary", "172.30.255.200", "istiod-canary-remote", ""},
		"east-west gateway":        {[]corev1.Service{lb("istio-eastwestgateway", []int32{15443, 15012}, host)}, "", "istiod.elb.example", "istio-eastwestgateway", ""},
		"any name with port 15012": {[]corev1.Service{lb("ingress", []int32{80, 443}, ip), lb("mesh-cp-public", []int32{15012, 15017}, host)}, "", "istiod.elb.example", "mesh-cp-public", ""},
		"address pending":          {[]corev1.Service{lb("mesh-cp-public", []int32{15012})}, "", "", "", "have no address yet"},
		"ours pending":             {[]corev1.Service{lb("istiod-remote", nil), lb("mesh-cp-public", []int32{15012}, host)}, "", "", "", "istio-system/istiod-remote has no address yet"},
		"another revision's":       {[]corev1.Service{lb("istiod-old-remote", []int32{15012}, ip)}, "canary", "", "", "none with port 15012"},
		"only an ingress":          {[]corev1.Service{lb("ingress", []int32{80, 443}, ip)}, "", "", "", "none with port 15012"},
		"a ClusterIP istiod":       {[]corev1.Service{{ObjectMeta: metav1.ObjectMeta{Name: "istiod-remote"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 15012}}}}}, "", "", "", "exposed by no load balancer"},
	} {
		addr, svc, err := exposure("istio-system", tc.svcs, tc.rev)
		if tc.errSubstring != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errSubstring) {
				t.Errorf("%s: err = %v, want %q", name, err, tc.errSubstring)
			}
			continue
		}
		if err != nil || addr != tc.addr || svc != tc.svc {
			t.Errorf("%s: %q %q %v; want %q %q", name, addr, svc, err, tc.addr, tc.svc)
		}
	}
}
