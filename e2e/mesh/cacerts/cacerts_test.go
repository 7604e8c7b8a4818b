package cacerts

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
)

func parse(t *testing.T, b []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return out
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

func TestIntermediatesChainToOneRoot(t *testing.T) {
	root, err := NewRoot()
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(parse(t, root.CertPEM())[0])
	for _, cluster := range []string{"cluster1", "cluster2"} {
		b, err := root.Intermediate(cluster)
		if err != nil {
			t.Fatal(err)
		}
		inter := parse(t, b.CertPEM)[0]
		if !inter.IsCA || inter.Subject.Locality[0] != cluster {
			t.Errorf("%s: intermediate %v", cluster, inter.Subject)
		}
		if _, err := inter.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("%s: intermediate does not chain to the root: %v", cluster, err)
		}
		chain := parse(t, b.ChainPEM)
		if len(chain) != 2 || !chain[0].Equal(inter) || !chain[1].Equal(parse(t, root.CertPEM())[0]) {
			t.Errorf("%s: cert-chain.pem is not intermediate+root", cluster)
		}
		s := b.Secret("istio-system")
		for _, k := range []string{CACert, CAKey, RootCert, CertChain} {
			if len(s.Data[k]) == 0 {
				t.Errorf("%s: secret lacks %s", cluster, k)
			}
		}
		if !strings.Contains(string(s.Data[CAKey]), "PRIVATE KEY") {
			t.Errorf("%s: ca-key.pem is not a key", cluster)
		}
	}
}

func TestBundleNeverPrintsItsKey(t *testing.T) {
	root, _ := NewRoot()
	b, _ := root.Intermediate("cluster1")
	for _, s := range []string{fmt.Sprint(b), fmt.Sprintf("%v", b), fmt.Sprintf("%+v", b), fmt.Sprintf("%#v", b)} {
		if strings.Contains(s, "PRIVATE KEY") {
			t.Fatalf("key printed: %s", s)
		}
	}
}
