package mesh

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/e2e-framework/klient"

	"github.com/meshconform/meshconform/e2e/clusters"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"

	"github.com/meshconform/meshconform/e2e/checks"
)

// RemoteSecretSelector selects the remote secrets istiod reads.
const RemoteSecretSelector = "istio/multiCluster=true"

// RemoteSecret is what the harness reads of one kubeconfig in a remote
// secret: where it points and whose credential it holds, never the
// credential itself (a token stays in the Secret; only its subject is
// read).
type RemoteSecret struct {
	// Name of the Secret; Cluster is its key, the cluster it attaches.
	Name, Cluster string
	// Server is the API server of the kubeconfig's current context.
	Server string
	// Identity is who the API server takes the credential for.
	Identity Identity
	// Err: the kubeconfig is unreadable (the rest is empty).
	Err error
}

// Identity is the user and groups an API server authenticates a
// credential as, read from the credential without using it: a
// service-account token's subject (and the groups the API server gives
// every service account), or a client certificate's CN and O. User is ""
// when the credential is neither (an exec or auth-provider plugin, a token
// file, a token that is no service account's): its rights cannot be asked
// about. Auth says which it is.
type Identity struct {
	User   string
	Groups []string
	Auth   string
}

// Name is how verdicts name the account: a service account by its name
// (istio-reader-service-account), any other user as such.
func (id Identity) Name() string {
	if _, name, ok := id.ServiceAccount(); ok {
		return name
	}
	return "user " + id.User
}

// ServiceAccount is the namespace and name of the service account the
// identity is, if it is one (system:serviceaccount:<ns>:<name>).
func (id Identity) ServiceAccount() (namespace, name string, ok bool) {
	p := strings.Split(id.User, ":")
	if len(p) == 4 && p[0] == "system" && p[1] == "serviceaccount" && p[2] != "" && p[3] != "" {
		return p[2], p[3], true
	}
	return "", "", false
}

// RemoteSecrets reads every remote secret (label istio/multiCluster=true in
// the primary's istio namespace) on a primary, one entry per kubeconfig, sorted by cluster.
// An unreadable kubeconfig is an entry with Err, not an error: callers
// report it in their own words.
func RemoteSecrets(ctx context.Context, primary *clusters.Cluster) ([]RemoteSecret, error) {
	var list corev1.SecretList
	if err := primary.Client.Resources(primary.IstioNamespace()).List(ctx, &list, resources.WithLabelSelector(RemoteSecretSelector)); err != nil {
		return nil, fmt.Errorf("list remote secrets: %w", err)
	}
	var out []RemoteSecret
	for _, s := range list.Items {
		for cluster, raw := range s.Data {
			rs := RemoteSecret{Name: s.Name, Cluster: cluster}
			rs.Server, rs.Identity, rs.Err = ParseRemoteKubeconfig(raw)
			out = append(out, rs)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Cluster != out[j].Cluster {
			return out[i].Cluster < out[j].Cluster
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// ParseRemoteKubeconfig returns a remote secret's API server and the
// identity of its credential (the JWT's subject, read without verifying:
// only the API server can verify it). The credential never leaves this
// function, and no error quotes it.
func ParseRemoteKubeconfig(raw []byte) (server string, id Identity, err error) {
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		// clientcmd's errors quote no field values, but say nothing of
		// them either way: the error is ours.
		return "", Identity{}, fmt.Errorf("unreadable kubeconfig")
	}
	kctx, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok {
		return "", Identity{}, fmt.Errorf("kubeconfig has no current context")
	}
	if c, ok := cfg.Clusters[kctx.Cluster]; ok {
		server = c.Server
	}
	a, ok := cfg.AuthInfos[kctx.AuthInfo]
	switch {
	case !ok:
		id.Auth = "no credential"
	case a.Token != "":
		id.Auth = "token"
		if sa := (Identity{User: tokenSubject(a.Token)}); sa.isServiceAccount() {
			id.User, id.Groups, id.Auth = sa.User, ServiceAccountGroups(sa.User), "service account token"
		}
	case len(a.ClientCertificateData) > 0:
		id.Auth = "client certificate"
		if b, _ := pem.Decode(a.ClientCertificateData); b != nil {
			if cert, err := x509.ParseCertificate(b.Bytes); err == nil && cert.Subject.CommonName != "" {
				// The API server's x509 authenticator: CN the user, each O
				// a group, and every authenticated user in
				// system:authenticated.
				id.User = cert.Subject.CommonName
				id.Groups = append(append([]string(nil), cert.Subject.Organization...), "system:authenticated")
			}
		}
	case a.Exec != nil:
		id.Auth = "exec plugin " + a.Exec.Command
	case a.AuthProvider != nil:
		id.Auth = "auth provider " + a.AuthProvider.Name
	case a.TokenFile != "" || a.ClientCertificate != "":
		id.Auth = "a file on istiod's disk"
	default:
		id.Auth = "no credential"
	}
	return server, id, nil
}

// tokenSubject is a JWT's "sub" claim, or "".
func tokenSubject(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	return claims.Sub
}

func (id Identity) isServiceAccount() bool {
	_, _, ok := id.ServiceAccount()
	return ok
}

// ServiceAccountGroups are the groups the API server puts a service
// account's token in: a role bound to any of them counts.
func ServiceAccountGroups(user string) []string {
	groups := []string{"system:serviceaccounts", "system:authenticated"}
	if ns, _, ok := (Identity{User: user}).ServiceAccount(); ok {
		groups = append(groups, "system:serviceaccounts:"+ns)
	}
	return groups
}

// CredentialRights is a remote cluster's API server's answers about one
// remote secret's identity: for what istiod needs (checks.ReaderNeeds) and
// for what it must not hold (checks.ExcessRights). Judge them with
// checks.JudgeReaderNeeds and checks.JudgeLeastPrivilege.
type CredentialRights struct {
	Needs, Excess []checks.Answer
}

// AskCredentialRights asks the remote cluster's API server, through the
// harness's own (admin) client c, what id may do: one SubjectAccessReview
// per access of checks.ReaderNeeds and checks.ExcessAccess. A review is
// answered, never stored: asking changes nothing.
//
// Why SubjectAccessReview about the identity, not the credential itself
// asking SelfSubjectAccessReview: the identity is read from the secret
// (a token's subject, a certificate's CN and O) for tokens and client
// certificates alike, so both are judged; the secret's credential is never
// used by the harness, only read where needed; and the question goes to
// the cluster by the harness's own client, which works wherever the
// harness runs — the secret's server address is only promised to be
// reachable from istiod's pods (a brought cluster's private endpoint, or
// the 127.0.0.1 of a broken secret, which the remote-secret checks judge,
// would otherwise make this check fail for a reason not its own). What it
// cannot judge — an exec or auth-provider plugin — has no User, and the
// callers say so rather than pass.
func AskCredentialRights(ctx context.Context, c klient.Client, id Identity) (CredentialRights, error) {
	if id.User == "" {
		return CredentialRights{}, fmt.Errorf("the credential (%s) names no user an access review can ask about", id.Auth)
	}
	// ~80 reviews per secret: client-go's default 5 requests/s would make
	// that 16 s; asked side by side at a rate the API server takes easily.
	cfg := rest.CopyConfig(c.RESTConfig())
	cfg.QPS, cfg.Burst = 100, 200
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return CredentialRights{}, fmt.Errorf("client: %w", err)
	}
	ask := func(accesses []checks.Access) ([]checks.Answer, error) {
		out := make([]checks.Answer, len(accesses))
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(16)
		for i, a := range accesses {
			g.Go(func() error {
				sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
					User: id.User, Groups: id.Groups,
					ResourceAttributes: &authzv1.ResourceAttributes{
						Verb: a.Verb, Group: a.Group, Resource: a.Resource, Subresource: a.Subresource, Namespace: a.Namespace,
					}}}
				got, err := cs.AuthorizationV1().SubjectAccessReviews().Create(gctx, sar, metav1.CreateOptions{})
				if err != nil {
					return fmt.Errorf("ask whether %s may %s: %w", id.User, a, err)
				}
				out[i] = checks.Answer{Access: a, Allowed: got.Status.Allowed}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		return out, nil
	}
	var r CredentialRights
	if r.Needs, err = ask(checks.ReaderNeeds); err != nil {
		return r, err
	}
	r.Excess, err = ask(checks.ExcessAccess())
	return r, err
}
