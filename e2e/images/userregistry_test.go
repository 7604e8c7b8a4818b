package images

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

func TestParseRegistryPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"registry.example.com":          "registry.example.com",
		"registry.example.com/team/":    "registry.example.com/team",
		"10.0.0.5:5000":                 "10.0.0.5:5000",
		"localhost/mirror":              "localhost/mirror",
		"reg.acme.example:5443/a/b/c":   "reg.acme.example:5443/a/b/c",
		"123.dkr.ecr.aws.example/mc-ci": "123.dkr.ecr.aws.example/mc-ci",
	} {
		got, err := ParseRegistryPrefix(in)
		if err != nil || got != want {
			t.Errorf("ParseRegistryPrefix(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	// Each of these would send the images somewhere the user did not mean
	// (Docker Hub for a bare name) or cannot be a reference at all.
	for _, in := range []string{"", "https://registry.example.com", "myteam", "myteam/apps", "Registry.example.com/UPPER", "reg.example.com:5000/a:tag"} {
		if got, err := ParseRegistryPrefix(in); err == nil {
			t.Errorf("ParseRegistryPrefix(%q) = %q, want an error", in, got)
		}
	}
}

func dockerConfig(t *testing.T, host, user, pass string) []byte {
	t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	return []byte(fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, host, auth))
}

func TestParseDockerConfig(t *testing.T) {
	d, err := ParseDockerConfig(dockerConfig(t, "https://reg.acme.example:5443/v2/", "ci", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	if !d.Covers("reg.acme.example:5443") || d.Covers("reg.acme.example") || d.Covers("other.example") {
		t.Errorf("Covers: registries %v", d.Registries())
	}
	reg, _ := name.NewRegistry("reg.acme.example:5443")
	a, err := d.Resolve(reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := a.Authorization()
	if err != nil || cfg.Username != "ci" || cfg.Password != "s3cret" {
		t.Errorf("Resolve(reg.acme.example:5443) = %+v, %v", cfg, err)
	}
	other, _ := name.NewRegistry("other.example")
	if a, _ := d.Resolve(other); a != authn.Anonymous {
		t.Errorf("Resolve(other.example) = %v, want anonymous", a)
	}
	for _, shown := range []string{d.String(), fmt.Sprintf("%v %+v", d, d)} {
		if strings.Contains(shown, "s3cret") || strings.Contains(shown, base64.StdEncoding.EncodeToString([]byte("ci:s3cret"))) {
			t.Errorf("the config prints its credentials: %s", shown)
		}
	}

	up, err := ParseDockerConfig([]byte(`{"auths": {"index.docker.io": {"username": "u", "password": "p"}}}`))
	if err != nil || !up.Covers("index.docker.io") || !up.Covers(name.DefaultRegistry) {
		t.Errorf("username/password form: %v, %v", up, err)
	}

	for _, bad := range []string{
		`{"auths": {}}`,
		`{"credsStore": "desktop"}`,
		`{"auths": {"r.example": {"auth": "bm90LWEtcGFpcg=="}}}`, // "not-a-pair"
		`{"auths": {"r.example": {"auth": "%%%"}}}`,
		`{"auths": {"r.example": {"password": "p"}}}`,
		`password=hunter2`,
	} {
		_, err := ParseDockerConfig([]byte(bad))
		if err == nil {
			t.Errorf("ParseDockerConfig(%s) passed", bad)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error quotes the file: %v", err)
		}
	}
}

// basicAuth refuses any request without user:pass, as a registry with
// htpasswd does.
func basicAuth(user, pass string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// tlsRegistry is a registry behind TLS with a CA of its own and basic
// auth: the user's registry of the foreign platform, in process.
func tlsRegistry(t *testing.T) (host, caFile string) {
	t.Helper()
	srv := httptest.NewTLSServer(basicAuth("ci", "s3cret", registry.New(registry.Logger(log.New(io.Discard, "", 0)))))
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(srv.URL, "https://"), caFile
}

func TestUserRegistryPushAndMissing(t *testing.T) {
	host, caFile := tlsRegistry(t)
	ctx := context.Background()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := ParseDockerConfig(dockerConfig(t, host, "ci", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	u := UserRegistry{Prefix: host + "/team", Auth: auth, CAFile: caFile}
	want := []string{"meshconform/a:k1", "meshconform/b:k2"}

	// Nothing pushed yet: both missing (never zero results read as "all there").
	missing, err := u.Missing(ctx, want)
	if err != nil || strings.Join(missing, ",") != strings.Join(want, ",") {
		t.Fatalf("Missing before push = %v, %v; want %v", missing, err, want)
	}
	if err := u.Push(ctx, map[string]v1.Image{"meshconform/a:k1": img}); err != nil {
		t.Fatal(err)
	}
	missing, err = u.Missing(ctx, want)
	if err != nil || strings.Join(missing, ",") != "meshconform/b:k2" {
		t.Fatalf("Missing after pushing a = %v, %v", missing, err)
	}
	// Another build of a (another key) is not the one pushed.
	if missing, _ := u.Missing(ctx, []string{"meshconform/a:k0"}); len(missing) != 1 {
		t.Errorf("an older key of a found: %v", missing)
	}

	// Refusals name their cause.
	for _, c := range []struct {
		name string
		u    UserRegistry
		want string
	}{
		{"no credentials", UserRegistry{Prefix: host, CAFile: caFile}, "no credentials for " + host},
		{"wrong password", UserRegistry{Prefix: host, CAFile: caFile, Auth: mustConfig(t, dockerConfig(t, host, "ci", "wrong"))}, "were refused"},
		{"CA not trusted", UserRegistry{Prefix: host, Auth: auth}, "MESHCONFORM_IMAGE_REGISTRY_CA"},
	} {
		_, err := c.u.Missing(ctx, want)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Missing error %v, want one saying %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows the password: %v", c.name, err)
		}
	}
}

func mustConfig(t *testing.T, b []byte) *DockerConfig {
	t.Helper()
	d, err := ParseDockerConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSaveLoadImages(t *testing.T) {
	a, _ := random.Image(64, 1)
	b, _ := random.Image(64, 2)
	path := filepath.Join(t.TempDir(), "apps.tar")
	if err := SaveImages(path, map[string]v1.Image{"meshconform/a:k1": a, "meshconform/b:k2": b}); err != nil {
		t.Fatal(err)
	}
	got, err := LoadImages(path)
	if err != nil {
		t.Fatal(err)
	}
	for rt, img := range map[string]v1.Image{"meshconform/a:k1": a, "meshconform/b:k2": b} {
		want, _ := img.Digest()
		if got[rt] == nil {
			t.Fatalf("LoadImages: %s missing (got %v)", rt, sortedKeys(got))
		}
		if d, _ := got[rt].Digest(); d != want {
			t.Errorf("%s: digest %s after the round trip, want %s", rt, d, want)
		}
	}
	if len(got) != 2 {
		t.Errorf("LoadImages: %v", sortedKeys(got))
	}
}

func TestAppRepoTagsFollowTheSource(t *testing.T) {
	root := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module x\n")
	write("go.sum", "")
	write(AppsDir+"/probe/main.go", "package main\nfunc main() {}\n")
	before, err := AppRepoTags(root)
	if err != nil || !strings.HasPrefix(before["probe"], "meshconform/probe:") {
		t.Fatalf("AppRepoTags = %v, %v", before, err)
	}
	write(AppsDir+"/probe/main.go", "package main\nfunc main() { println() }\n")
	after, _ := AppRepoTags(root)
	if after["probe"] == before["probe"] {
		t.Error("the app's tag did not change with its source: a registry's older build would pass for it")
	}
}

// A registry on a loopback or private address that answers plain HTTP
// must not get the credentials: go-containerregistry would fall back to
// HTTP for it.
func TestUserRegistryRefusesPlainHTTP(t *testing.T) {
	var sawAuth bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, ok := r.BasicAuth(); ok {
			sawAuth = true
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	u := UserRegistry{Prefix: host, Auth: mustConfig(t, dockerConfig(t, host, "ci", "s3cret"))}
	_, err := u.Missing(context.Background(), []string{"meshconform/a:k1"})
	if err == nil || !strings.Contains(err.Error(), "must serve HTTPS") {
		t.Errorf("Missing on a plain-HTTP registry: %v, want a refusal", err)
	}
	if sawAuth {
		t.Error("the credentials were sent over plain HTTP")
	}
}

// The pull secret holds the registry's own credentials, not every one of
// the user's docker config.
func TestDockerConfigFor(t *testing.T) {
	d := mustConfig(t, []byte(`{"auths": {"reg.acme.example:5443": {"auth": "Y2k6czNjcmV0"}, "ghcr.io": {"auth": "bWU6Z2hwX3Rva2Vu"}}}`))
	b, err := d.For("reg.acme.example:5443")
	if err != nil {
		t.Fatal(err)
	}
	only := mustConfig(t, b)
	if !only.Covers("reg.acme.example:5443") || only.Covers("ghcr.io") || strings.Contains(string(b), "bWU6Z2hwX3Rva2Vu") {
		t.Errorf("For(reg.acme.example:5443) = %s", b)
	}
	if _, err := d.For("quay.io"); err == nil {
		t.Error("For a registry without credentials passed")
	}
	for _, key := range []string{"docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"} {
		hub := mustConfig(t, []byte(`{"auths": {"`+key+`": {"auth": "Y2k6czNjcmV0"}}}`))
		if !hub.Covers("index.docker.io") || !hub.Covers("docker.io") {
			t.Errorf("docker config key %q does not cover Docker Hub", key)
		}
	}
}
