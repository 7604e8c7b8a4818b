// Package cacerts makes the mesh's trust: one root CA and, per cluster, an
// intermediate CA signed by it, as the files Istio's "Plug in CA
// Certificates" guide names (ca-cert.pem, ca-key.pem, root-cert.pem,
// cert-chain.pem), ready to become each cluster's `cacerts` secret.
//
// Keys exist only in memory and in the secrets: nothing is written to disk,
// and Bundle's String and GoString hide the key so it cannot reach a log.
package cacerts

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SecretName and the file names are what istiod reads.
const (
	SecretName   = "cacerts"
	CACert       = "ca-cert.pem"
	CAKey        = "ca-key.pem"
	RootCert     = "root-cert.pem"
	CertChain    = "cert-chain.pem"
	organization = "Istio"
	keyBits      = 2048
)

// Root is the mesh's root CA.
type Root struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
	pem  []byte
}

// Bundle is one cluster's intermediate CA material.
type Bundle struct {
	Cluster   string
	CertPEM   []byte
	keyPEM    []byte
	RootPEM   []byte
	ChainPEM  []byte
	NotBefore time.Time
}

// String keeps the key out of anything that prints a bundle.
func (b Bundle) String() string { return fmt.Sprintf("cacerts for %s (key redacted)", b.Cluster) }

// GoString does the same for %#v.
func (b Bundle) GoString() string { return b.String() }

// NewRoot makes a root CA valid for ten years, as Istio's tools/certs do.
func NewRoot() (*Root, error) {
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, fmt.Errorf("root CA key: %w", err)
	}
	now := time.Now().Add(-time.Hour)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{organization}, CommonName: "Root CA"},
		NotBefore:             now,
		NotAfter:              now.AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("root CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Root{cert: cert, key: key, pem: pemBlock("CERTIFICATE", der)}, nil
}

// CertPEM is the root certificate.
func (r *Root) CertPEM() []byte { return r.pem }

// Intermediate makes the cluster's intermediate CA, valid for two years,
// named after the cluster as Istio's tools/certs name it (O=Istio,
// CN=Intermediate CA, L=<cluster>), with istiod's service name as SAN.
func (r *Root) Intermediate(cluster string) (Bundle, error) {
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return Bundle{}, fmt.Errorf("intermediate CA key for %s: %w", cluster, err)
	}
	now := time.Now().Add(-time.Hour)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{organization}, CommonName: "Intermediate CA", Locality: []string{cluster}},
		NotBefore:             now,
		NotAfter:              now.AddDate(2, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		DNSNames:              []string{"istiod.istio-system.svc"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, r.cert, &key.PublicKey, r.key)
	if err != nil {
		return Bundle{}, fmt.Errorf("intermediate CA certificate for %s: %w", cluster, err)
	}
	certPEM := pemBlock("CERTIFICATE", der)
	return Bundle{
		Cluster:   cluster,
		CertPEM:   certPEM,
		keyPEM:    pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key)),
		RootPEM:   r.pem,
		ChainPEM:  append(append([]byte{}, certPEM...), r.pem...),
		NotBefore: now,
	}, nil
}

// Secret is the `cacerts` secret for namespace (istio-system).
func (b Bundle) Secret(namespace string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: SecretName, Namespace: namespace},
		Type:       corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			CACert: b.CertPEM, CAKey: b.keyPEM, RootCert: b.RootPEM, CertChain: b.ChainPEM,
		},
	}
}

func pemBlock(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
