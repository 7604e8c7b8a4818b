package verify

import "testing"

// A server URL gives its host and port, 443 when it names none; what is
// no URL is refused.
func TestSplitServer(t *testing.T) {
	for in, want := range map[string]struct {
		host string
		port int
	}{
		"https://172.30.0.3:6443":          {"172.30.0.3", 6443},
		"https://[fd00::3]:6443":           {"fd00::3", 6443},
		"https://api.example.com":          {"api.example.com", 443},
		"https://api.example.com:8443/k8s": {"api.example.com", 8443},
	} {
		host, port, err := splitServer(in)
		if err != nil || host != want.host || port != want.port {
			t.Errorf("%s: %s %d %v, want %s %d", in, host, port, err, want.host, want.port)
		}
	}
	for _, in := range []string{"", "172.30.0.3:6443", "https://h:port"} {
		if _, _, err := splitServer(in); err == nil {
			t.Errorf("%q taken for a server", in)
		}
	}
}
