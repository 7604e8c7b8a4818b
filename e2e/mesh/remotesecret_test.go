package mesh

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func jwt(payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(payload)) + ".c2ln"
}

const remoteKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: cluster2
  cluster: {server: "SERVER"}
users:
- name: cluster2
  user: {USER}
contexts:
- name: cluster2
  context: {cluster: cluster2, user: cluster2}
current-context: cluster2
`

func kubeconfig(server, user string) []byte {
	return []byte(strings.NewReplacer("SERVER", server, "USER", user).Replace(remoteKubeconfig))
}

const readerSA = "system:serviceaccount:istio-system:istio-reader-service-account"

// The remote secret the doctor must reject: one whose server is loopback
// (made for kubectl on a laptop); its account is read from the token's
// subject, and the token itself is never returned.
func TestParseRemoteKubeconfig(t *testing.T) {
	tok := jwt(`{"sub":"` + readerSA + `"}`)
	server, id, err := ParseRemoteKubeconfig(kubeconfig("https://127.0.0.1:6443", "token: "+tok))
	if err != nil || server != "https://127.0.0.1:6443" || id.User != readerSA || id.Auth != "service account token" {
		t.Fatalf("got %q %+v %v", server, id, err)
	}
	if id.Name() != "istio-reader-service-account" || len(id.Groups) != 3 || id.Groups[2] != "system:serviceaccounts:istio-system" {
		t.Fatalf("identity %+v (%s)", id, id.Name())
	}
	if !LoopbackServer(server) || !LoopbackServer("https://localhost:6443") || !LoopbackServer("https://[::1]:6443") {
		t.Error("loopback servers not recognised")
	}
	if LoopbackServer("https://172.30.0.3:6443") || LoopbackServer("https://api.prod.example.com") {
		t.Error("a routable server taken for loopback")
	}
	if tokenSubject("not-a-jwt") != "" || tokenSubject(jwt(`not json`)) != "" {
		t.Error("garbage token gave a subject")
	}
}

// Credentials an access review cannot ask about have no user, and say what
// they are; none of them, nor an unreadable kubeconfig, quotes the secret.
func TestParseRemoteKubeconfigUnjudgeable(t *testing.T) {
	const secret = "s3cr3t-token-value"
	for user, auth := range map[string]string{
		"token: " + secret:                 "token",
		"token: " + jwt(`{"sub":"alice"}`): "token",
		"exec: {apiVersion: client.authentication.k8s.io/v1, command: gke-gcloud-auth-plugin}": "exec plugin gke-gcloud-auth-plugin",
		"tokenFile: /var/run/token": "a file on istiod's disk",
	} {
		_, id, err := ParseRemoteKubeconfig(kubeconfig("https://10.0.0.1", user))
		if err != nil || id.User != "" || id.Auth != auth {
			t.Errorf("%s: got %+v %v, want no user, auth %q", user, id, err, auth)
		}
		if _, err := AskCredentialRights(context.Background(), nil, id); err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("%s: asked about no user: %v", user, err)
		}
	}
	if _, _, err := ParseRemoteKubeconfig([]byte("users: [token: " + secret)); err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("unreadable kubeconfig: %v", err)
	}
}

// A client certificate is judged too: the API server takes its CN for the
// user and each O for a group.
func TestParseRemoteKubeconfigClientCertificate(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "istio-reader", Organization: []string{"istio-readers"}},
		NotBefore:    time.Now(), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certData := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	_, id, err := ParseRemoteKubeconfig(kubeconfig("https://10.0.0.1", "client-certificate-data: "+certData+", client-key-data: a2V5"))
	if err != nil || id.User != "istio-reader" || strings.Join(id.Groups, ",") != "istio-readers,system:authenticated" || id.Auth != "client certificate" {
		t.Fatalf("got %+v %v", id, err)
	}
	if id.Name() != "user istio-reader" {
		t.Errorf("name %q", id.Name())
	}
}

func TestServiceAccountGroups(t *testing.T) {
	g := ServiceAccountGroups(readerSA)
	if len(g) != 3 || g[2] != "system:serviceaccounts:istio-system" {
		t.Fatalf("groups %v", g)
	}
}
