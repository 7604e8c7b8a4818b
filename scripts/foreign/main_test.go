package main

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// The files a user gets of the registry must work together: the pull
// secret's password matches the htpasswd entry, and the certificate
// chains to ca.crt for the registry's address (a certificate for another
// address, or one signed by another CA, is what a node must refuse).
func TestWriteRegistryFiles(t *testing.T) {
	dir := t.TempDir()
	addr := netip.MustParseAddr("172.18.128.2")
	host := "172.18.128.2:5443"
	if err := writeRegistryFiles(dir, addr, host); err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(filepath.Join(dir, name)); fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is readable by others: %v", name, fi.Mode())
		}
		return b
	}
	if got := strings.TrimSpace(string(read("registry"))); got != host {
		t.Errorf("registry = %q", got)
	}
	var cfg struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	if err := json.Unmarshal(read("pull-secret.json"), &cfg); err != nil {
		t.Fatal(err)
	}
	dec, _ := base64.StdEncoding.DecodeString(cfg.Auths[host].Auth)
	u, pass, _ := strings.Cut(string(dec), ":")
	entry := strings.TrimSpace(string(read("serve/htpasswd")))
	hu, hash, _ := strings.Cut(entry, ":")
	if u != user || hu != user || bcrypt.CompareHashAndPassword([]byte(hash), []byte(pass)) != nil {
		t.Errorf("pull secret user %q and htpasswd entry %q do not match", u, hu)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(pass+"x")) == nil {
		t.Error("htpasswd accepts another password")
	}

	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(read("ca.crt")) {
		t.Fatal("ca.crt holds no certificate")
	}
	block, _ := pem.Decode(read("serve/tls.crt"))
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "172.18.128.2"}); err != nil {
		t.Errorf("the registry's certificate does not verify for its address: %v", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "172.18.128.3"}); err == nil {
		t.Error("the certificate verifies for another address")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: x509.NewCertPool(), DNSName: "172.18.128.2"}); err == nil {
		t.Error("the certificate verifies without its CA")
	}
}

func TestLastAddr(t *testing.T) {
	for in, want := range map[string]string{"172.18.0.0/17": "172.18.127.255", "10.1.2.0/24": "10.1.2.255", "192.168.0.0/16": "192.168.255.255"} {
		if got := lastAddr(netip.MustParsePrefix(in)); got.String() != want {
			t.Errorf("lastAddr(%s) = %s, want %s", in, got, want)
		}
	}
}
