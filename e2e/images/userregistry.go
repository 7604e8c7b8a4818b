package images

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// A user's registry holds the sample apps for clusters a user brings:
// `meshconform images push` puts them there, and a run given
// --image-registry has the clusters pull them from there, with the user's
// credentials. Each app is tagged with the digest of what it is built
// from (AppRepoTag), so a registry holding an older build is found out
// before anything is created, not by a pod that runs the wrong code.

// AppRepoTag is a sample app's repository and tag, without a registry:
// meshconform/<name>:<digest of what it is built from>.
func AppRepoTag(repoRoot, name string) (string, error) {
	key, err := appKey(repoRoot, name)
	if err != nil {
		return "", err
	}
	return appRepoTag(name, key), nil
}

func appRepoTag(name, key string) string { return fmt.Sprintf("meshconform/%s:%s", name, key) }

// AppRepoTags are AppRepoTag of every sample app, by app name.
func AppRepoTags(repoRoot string) (map[string]string, error) {
	apps, err := SampleApps(repoRoot)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, a := range apps {
		if out[a], err = AppRepoTag(repoRoot, a); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// UserRegistry is a registry of the user's.
type UserRegistry struct {
	// Prefix is host[:port][/path]; an app goes to Prefix/<AppRepoTag>.
	Prefix string
	// Auth holds the credentials, nil for anonymous access.
	Auth *DockerConfig
	// CAFile is a PEM bundle trusted beside the system's certificates
	// (a registry with a private CA); "" for the system's alone.
	CAFile string
}

// ParseRegistryPrefix checks a registry given by the user: a host with an
// optional port and path, no scheme, tag or digest.
func ParseRegistryPrefix(s string) (string, error) {
	p := strings.TrimSuffix(s, "/")
	if strings.Contains(p, "://") {
		return "", fmt.Errorf("image registry %q: give host[:port][/path], without a scheme", s)
	}
	host, _, _ := strings.Cut(p, "/")
	if host == "" || !strings.ContainsAny(host, ".:") && host != "localhost" {
		return "", fmt.Errorf("image registry %q: the first part must be a registry host (with a dot or a port, e.g. registry.example.com or 10.0.0.5:5000)", s)
	}
	ref, err := name.NewTag(p+"/meshconform/app:tag", name.StrictValidation)
	if err != nil {
		return "", fmt.Errorf("image registry %q: %w", s, err)
	}
	if ref.RegistryStr() != host {
		return "", fmt.Errorf("image registry %q: read as registry %q, not %q", s, ref.RegistryStr(), host)
	}
	return p, nil
}

// Ref is repoTag's image in the registry.
func (u UserRegistry) Ref(repoTag string) string { return u.Prefix + "/" + repoTag }

// Host is the registry's host[:port].
func (u UserRegistry) Host() string {
	host, _, _ := strings.Cut(u.Prefix, "/")
	return host
}

func (u UserRegistry) options(ctx context.Context) ([]remote.Option, error) {
	opts := []remote.Option{remote.WithContext(ctx)}
	if u.Auth != nil {
		opts = append(opts, remote.WithAuthFromKeychain(u.Auth))
	}
	t := remote.DefaultTransport.(*http.Transport).Clone()
	if u.CAFile != "" {
		pem, err := os.ReadFile(u.CAFile)
		if err != nil {
			return nil, fmt.Errorf("the image registry's CA: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the image registry's CA %s: no PEM certificate in it", u.CAFile)
		}
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	// go-containerregistry falls back to plain HTTP for loopback and
	// private addresses: the credentials would go out in clear text, and
	// the nodes pull over HTTPS anyway.
	return append(opts, remote.WithTransport(httpsOnly{t})), nil
}

// httpsOnly refuses every request that is not HTTPS.
type httpsOnly struct{ next http.RoundTripper }

func (h httpsOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "https" {
		return nil, fmt.Errorf("%s: the registry must serve HTTPS (plain HTTP would send the credentials in clear text)", r.URL.Host)
	}
	return h.next.RoundTrip(r)
}

// Missing returns those of repoTags the registry does not hold, sorted.
// An error is anything else: the registry unreachable, the credentials
// refused.
func (u UserRegistry) Missing(ctx context.Context, repoTags []string) ([]string, error) {
	opts, err := u.options(ctx)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, rt := range repoTags {
		ref, err := name.ParseReference(u.Ref(rt))
		if err != nil {
			return nil, err
		}
		if _, err := remote.Head(ref, opts...); err != nil {
			if registryStatus(err) == http.StatusNotFound {
				missing = append(missing, rt)
				continue
			}
			return nil, u.describe(err, "look up "+ref.String())
		}
	}
	slices.Sort(missing)
	return missing, nil
}

// Push writes each image (by repoTag) to the registry.
func (u UserRegistry) Push(ctx context.Context, imgs map[string]v1.Image) error {
	opts, err := u.options(ctx)
	if err != nil {
		return err
	}
	for _, rt := range sortedKeys(imgs) {
		ref, err := name.ParseReference(u.Ref(rt))
		if err != nil {
			return err
		}
		if err := remote.Write(ref, imgs[rt], opts...); err != nil {
			return u.describe(err, "push "+ref.String())
		}
	}
	return nil
}

// describe wraps a registry error with what the user can do about it.
func (u UserRegistry) describe(err error, what string) error {
	switch registryStatus(err) {
	case http.StatusUnauthorized, http.StatusForbidden:
		if u.Auth == nil || !u.Auth.Covers(u.Host()) {
			return fmt.Errorf("%s: %w (no credentials for %s: give a docker config JSON with them, --image-pull-secret)", what, err, u.Host())
		}
		return fmt.Errorf("%s: %w (the credentials for %s were refused)", what, err, u.Host())
	}
	var uerr x509.UnknownAuthorityError
	if errors.As(err, &uerr) {
		return fmt.Errorf("%s: %w (trust the registry's CA with MESHCONFORM_IMAGE_REGISTRY_CA)", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func registryStatus(err error) int {
	var terr *transport.Error
	if errors.As(err, &terr) {
		return terr.StatusCode
	}
	return 0
}

// SaveImages writes imgs (by repoTag) into one tarball, each under
// docker.io/<repoTag>, for a machine without a way to the registry:
// `images push --from` loads it there.
func SaveImages(path string, imgs map[string]v1.Image) error {
	refs := map[name.Reference]v1.Image{}
	for rt, img := range imgs {
		t, err := name.NewTag("docker.io/" + rt)
		if err != nil {
			return err
		}
		refs[t] = img
	}
	if err := tarball.MultiRefWriteToFile(path, refs); err != nil {
		return fmt.Errorf("save images to %s: %w", path, err)
	}
	return nil
}

// LoadImages reads the images SaveImages wrote, by repoTag.
func LoadImages(path string) (map[string]v1.Image, error) {
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
	if err != nil {
		return nil, fmt.Errorf("load images from %s: %w", path, err)
	}
	out := map[string]v1.Image{}
	for _, d := range m {
		for _, t := range d.RepoTags {
			tag, err := name.NewTag(t)
			if err != nil {
				return nil, fmt.Errorf("load images from %s: %w", path, err)
			}
			img, err := tarball.ImageFromPath(path, &tag)
			if err != nil {
				return nil, fmt.Errorf("load %s from %s: %w", t, path, err)
			}
			out[strings.TrimPrefix(tag.Context().RepositoryStr(), "library/")+":"+tag.TagStr()] = img
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("load images from %s: no tagged image in it", path)
	}
	return out, nil
}

// AppImages assembles every sample app's image, by repoTag, without a
// registry or Docker: what `images push` and `images save` write.
func (l *Local) AppImages(ctx context.Context, repoRoot string) (map[string]v1.Image, error) {
	apps, err := SampleApps(repoRoot)
	if err != nil {
		return nil, err
	}
	out := map[string]v1.Image{}
	for _, a := range apps {
		rc, err := l.appRecipe(repoRoot, a)
		if err != nil {
			return nil, err
		}
		img, err := l.assemble(ctx, rc.plan)
		if err != nil {
			return nil, err
		}
		repo, tag := rc.repoTag()
		out[repo+":"+tag] = img
	}
	return out, nil
}

// DockerConfig is registry credentials in the docker config JSON format
// (~/.docker/config.json, a kubernetes.io/dockerconfigjson Secret's
// .dockerconfigjson): the run's pull secret, and the keychain of its own
// registry calls. It never prints its credentials.
type DockerConfig struct {
	auths map[string]authn.AuthConfig
}

// ParseDockerConfig reads a docker config JSON; it must hold credentials
// for at least one registry.
func ParseDockerConfig(b []byte) (*DockerConfig, error) {
	var f struct {
		Auths map[string]struct {
			Auth     string `json:"auth"`
			Username string `json:"username"`
			Password string `json:"password"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		// Not the error text: a parse error may quote the file.
		return nil, fmt.Errorf("not a docker config JSON (want {\"auths\": {\"REGISTRY\": {\"auth\": ...}}})")
	}
	d := &DockerConfig{auths: map[string]authn.AuthConfig{}}
	for host, a := range f.Auths {
		c := authn.AuthConfig{Username: a.Username, Password: a.Password}
		if a.Auth != "" {
			dec, err := base64.StdEncoding.DecodeString(a.Auth)
			user, pass, ok := strings.Cut(string(dec), ":")
			if err != nil || !ok {
				return nil, fmt.Errorf("docker config: the auth of %s is not base64 of user:password", host)
			}
			c.Username, c.Password = user, pass
		}
		if c.Username == "" {
			return nil, fmt.Errorf("docker config: no user name for %s", host)
		}
		d.auths[registryKey(host)] = c
	}
	if len(d.auths) == 0 {
		return nil, fmt.Errorf("docker config: no credentials in it (its \"auths\" is empty)")
	}
	return d, nil
}

// registryKey is a docker config's registry key as a host[:port]: the
// keys may carry a scheme and a path (https://index.docker.io/v1/).
func registryKey(k string) string {
	if _, rest, ok := strings.Cut(k, "://"); ok {
		k = rest
	}
	k, _, _ = strings.Cut(k, "/")
	// Docker Hub goes by three names.
	if k == "docker.io" || k == "registry-1.docker.io" {
		return name.DefaultRegistry
	}
	return k
}

// For is a docker config JSON holding host's credentials alone: what a
// pull secret for that registry needs, and no other registry's.
func (d *DockerConfig) For(host string) ([]byte, error) {
	c, ok := d.auths[registryKey(host)]
	if !ok {
		return nil, fmt.Errorf("docker config: no credentials for %s", host)
	}
	return json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(c.Username + ":" + c.Password)),
	}}})
}

// Covers says whether the config has credentials for host.
func (d *DockerConfig) Covers(host string) bool {
	_, ok := d.auths[registryKey(host)]
	return ok
}

// Registries are the hosts the config has credentials for, sorted.
func (d *DockerConfig) Registries() []string { return sortedKeys(d.auths) }

// Resolve implements authn.Keychain.
func (d *DockerConfig) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if c, ok := d.auths[registryKey(r.RegistryStr())]; ok {
		return authn.FromConfig(c), nil
	}
	return authn.Anonymous, nil
}

// String keeps the credentials out of any log that prints the config.
func (d *DockerConfig) String() string {
	return "docker config for " + strings.Join(d.Registries(), ", ") + " (credentials not shown)"
}
