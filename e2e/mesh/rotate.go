package mesh

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshconform/meshconform/e2e/clusters"
)

// WithToken is a remote secret's kubeconfig with the token of every
// credential replaced by token: a rotation, as a user who issued a new
// token for istiod's reader account would write it. A kubeconfig with no
// token credential is an error: there is nothing to rotate. Neither token
// is quoted in an error.
func WithToken(raw []byte, token string) ([]byte, error) {
	if token == "" {
		return nil, fmt.Errorf("no new token")
	}
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		return nil, fmt.Errorf("unreadable kubeconfig")
	}
	n := 0
	for _, a := range cfg.AuthInfos {
		if a.Token != "" {
			a.Token = token
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("the kubeconfig holds no token credential to rotate")
	}
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("write the rotated kubeconfig: %w", err)
	}
	return out, nil
}

// HoldsToken says whether a remote secret's kubeconfig authenticates with
// token (an empty token never matches). Neither leaves this function.
func HoldsToken(raw []byte, token string) bool {
	if token == "" {
		return false
	}
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		return false
	}
	for _, a := range cfg.AuthInfos {
		if a.Token == token {
			return true
		}
	}
	return false
}

// ClusterUpdated says whether istiod's log shows its secret controller
// rebuilding the remote cluster id from a changed secret ("Update cluster
// cluster=<id> secret=…", pkg/kube/multicluster): the proof it read the
// new secret, which debug/clusterz cannot give (it says "synced" before
// and after).
func ClusterUpdated(log, id string) bool {
	return regexp.MustCompile(`\sUpdate cluster\s+cluster=` + regexp.QuoteMeta(id) + `\s`).MatchString(log)
}

// AuthFailures counts the lines of istiod's log where it could not check
// the token of a proxy of cluster id ("failed to validate the JWT from
// cluster \"<id>\"", its KubeJWTAuthenticator): a TokenReview on that
// cluster's API server refused or unreachable, so the proxy gets no
// certificate and no configuration.
func AuthFailures(log, id string) int {
	return len(regexp.MustCompile(`failed to validate the JWT from cluster "`+regexp.QuoteMeta(id)+`"`).FindAllStringIndex(log, -1))
}

// IstiodLogsSince is the discovery container log since t of every
// running istiod pod of the revision on cl, by pod; no pod is an error.
func IstiodLogsSince(ctx context.Context, cl *clusters.Cluster, revision string, t time.Time) (map[string]string, error) {
	pods, err := IstiodPods(ctx, cl, revision)
	if err != nil {
		return nil, err
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("no running istiod pod on %s (%s)", cl.Name, IstiodSelector(revision))
	}
	cs, err := kubernetes.NewForConfig(cl.Client.RESTConfig())
	if err != nil {
		return nil, err
	}
	since := metav1.NewTime(t)
	out := map[string]string{}
	for _, p := range pods {
		stream, err := cs.CoreV1().Pods(cl.IstioNamespace()).GetLogs(p.Name, &corev1.PodLogOptions{Container: "discovery", SinceTime: &since}).Stream(ctx)
		if err != nil {
			return nil, fmt.Errorf("istiod %s: read its log: %w", p.Name, err)
		}
		// Bounded: a minute of istiod's log is far less.
		b, err := io.ReadAll(io.LimitReader(stream, 16<<20))
		stream.Close()
		if err != nil {
			return nil, fmt.Errorf("istiod %s: read its log: %w", p.Name, err)
		}
		out[p.Name] = string(b)
	}
	return out, nil
}
