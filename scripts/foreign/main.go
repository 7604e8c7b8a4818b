// Command foreign stands up, for make byo and make byo-foreign, what a
// platform vendor's environment has and meshconform's own clusters do not:
//
//	go run ./scripts/foreign registry-up DIR NETWORK NODE...
//	go run ./scripts/foreign registry-down
//	go run ./scripts/foreign no-local-registry
//	go run ./scripts/foreign pair-up DIR
//	go run ./scripts/foreign pair-down
//
// registry-up runs a registry on the Docker network NETWORK with TLS (a CA
// of its own) and basic auth (htpasswd), at an address of the network's
// upper half that both this machine and the nodes reach; makes each kind
// node container NODE trust its CA (containerd's registry config, then a
// containerd restart, as a vendor configures its nodes); and writes into
// DIR what a user has of their registry: `registry` (host:port),
// `ca.crt`, and `pull-secret.json` (a docker config JSON). The CA's key
// and the password stay in DIR, which the caller removes. registry-down
// removes the container (and its storage); the node files go with the
// clusters. no-local-registry removes meshconform's own registry (the
// local source's, which kind nodes mirror docker.io to).
//
// pair-up makes two clusters unlike meshconform's (pair.go), a registry
// as above holding nothing yet (DIR/registry/), and the mesh on them,
// installed by hand (mesh.go); it writes DIR/kubeconfig (contexts east
// and west, admin), DIR/sa.kubeconfig (the same contexts, a
// ServiceAccount bound to `meshconform rbac`'s roles: access.go) and
// DIR/clusters.yaml. cut-remote-api DIR drops the path from
// the primary's pods to the remote's API server and restarts istiod.
// churn DIR DURATION annotates the pair's nodes, a config map in
// the istio namespace and a ClusterRole every 10 s, and adds a config map to
// the istio namespace every minute, until it is stopped or DURATION has passed
// (a CronJob, set up by pair-up, runs beside it): churn.go.
// pair-down deletes all of it.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/meshconform/meshconform/e2e/harness"
	"github.com/meshconform/meshconform/e2e/images"
	"github.com/meshconform/meshconform/e2e/report"
	"github.com/meshconform/meshconform/e2e/runlock"
)

// registryContainer names the registry's container; its image's owner
// label makes `meshconform clean` remove it after a killed run.
const registryContainer = "meshconform-user-registry"

// registryPort is the port the registry serves TLS on, in the container
// and at its address.
const registryPort = 5443

const user = "acme-ci"

func main() {
	ctx := context.Background()
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "registry-up":
		if len(os.Args) < 5 {
			usage()
		}
		err = registryUp(ctx, os.Args[2], os.Args[3], os.Args[4:])
	case "registry-down":
		err = registryDown(ctx)
	case "no-local-registry":
		// A user's machine has no meshconform registry: what the nodes
		// pull must come from the user's.
		err = images.RemoveRegistry(ctx)
	case "pair-up":
		if len(os.Args) != 3 {
			usage()
		}
		// The pair takes meshconform's registry onto its network and
		// removes it after: not while a run or a kept mesh uses it.
		var lock *runlock.Lock
		if lock, err = holdMachine(); err != nil {
			fail(err)
		}
		defer lock.Release()
		err = pairUp(ctx, os.Args[2])
		if err == nil {
			err = registryUp(ctx, filepath.Join(os.Args[2], "registry"), pairNetwork, []string{sites[0].name + "-control-plane", sites[1].name + "-control-plane"})
		}
		if err == nil {
			err = meshUp(ctx, os.Args[2])
		}
		if err == nil {
			err = churnSetup(ctx, os.Args[2])
		}
		if err == nil {
			err = accessUp(ctx, os.Args[2])
		}
	case "churn":
		if len(os.Args) != 4 {
			usage()
		}
		d, perr := time.ParseDuration(os.Args[3])
		if perr != nil {
			fail(perr)
		}
		sig, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		err = churn(sig, os.Args[2], d)
	case "cut-remote-api":
		if len(os.Args) != 3 {
			usage()
		}
		err = cutRemoteAPI(ctx, os.Args[2])
	case "pair-down":
		err = errors.Join(registryDown(ctx), pairDown(ctx))
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

// holdMachine takes meshconform's platform lock (no run that creates
// clusters goes on meanwhile) and refuses while `meshconform up` keeps a
// mesh, whose registry the pair would take.
func holdMachine() (*runlock.Lock, error) {
	if _, err := os.Stat(filepath.Join(harness.UpDir(), harness.KeptMeshFile)); err == nil {
		return nil, fmt.Errorf("a mesh kept by `meshconform up` is on this machine: the pair would take its registry; run `meshconform down` first")
	}
	cmd := strings.Join(os.Args, " ")
	return runlock.Acquire(harness.StateDir(), runlock.Owner{PID: os.Getpid(), RunID: "foreign-pair", Command: cmd, Started: time.Now()})
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: foreign registry-up DIR NETWORK NODE... | registry-down | pair-up DIR | churn DIR DURATION | cut-remote-api DIR | pair-down")
	os.Exit(2)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "foreign:", err)
	os.Exit(1)
}

func docker(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", args[0], err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

func registryUp(ctx context.Context, dir, network string, nodes []string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	addr, err := freeUpperAddress(ctx, network)
	if err != nil {
		return err
	}
	host := fmt.Sprintf("%s:%d", addr, registryPort)
	if err := writeRegistryFiles(dir, addr, host); err != nil {
		return err
	}
	image, err := registryImage(ctx)
	if err != nil {
		return err
	}
	_ = registryDown(ctx)
	if _, err := docker(ctx, nil, "run", "-d", "--name", registryContainer, "--network", network, "--ip", addr.String(),
		"-v", filepath.Join(dir, "serve")+":/certs:ro", "-v", filepath.Join(dir, "serve", "config.yml")+":/etc/distribution/config.yml:ro",
		"--restart=no", image); err != nil {
		return fmt.Errorf("start the registry: %w", err)
	}
	ca, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if err := trustOnNode(ctx, n, host, ca); err != nil {
			return err
		}
	}
	fmt.Printf("registry %s (TLS, basic auth) on %s; trusted by %s\n", host, network, strings.Join(nodes, ", "))
	return nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func registryDown(ctx context.Context) error {
	if _, err := docker(ctx, nil, "inspect", registryContainer); err != nil {
		return nil
	}
	_, err := docker(ctx, nil, "rm", "-f", "-v", registryContainer)
	return err
}

// registryImage is meshconform's own registry image (Debian's
// distribution), built if this machine has none yet.
func registryImage(ctx context.Context) (string, error) {
	cfg, err := harness.ConfigFromEnv()
	if err != nil {
		return "", err
	}
	kube, err := images.LookupKubeRelease(cfg.KubernetesVersion)
	if err != nil {
		return "", err
	}
	return images.NewLocal(kube, cfg.CacheDir, cfg.RegistryPort, report.NewRun(io.Discard), io.Discard).RegistryImage(ctx)
}

// freeUpperAddress is an address of the network's upper half (where
// Docker hands out none) that no container holds, past the first few and
// far from the end, where meshconform carves its load balancer pools.
func freeUpperAddress(ctx context.Context, network string) (netip.Addr, error) {
	out, err := docker(ctx, nil, "network", "inspect", network, "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}|{{range .Containers}}{{.IPv4Address}} {{end}}")
	if err != nil {
		return netip.Addr{}, err
	}
	subnets, used, _ := strings.Cut(out, "|")
	taken := map[netip.Addr]bool{}
	for _, f := range strings.Fields(used) {
		if p, err := netip.ParsePrefix(f); err == nil {
			taken[p.Addr()] = true
		}
	}
	for _, s := range strings.Fields(subnets) {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() || p.Bits() > 24 {
			continue
		}
		a := netip.PrefixFrom(p.Masked().Addr(), p.Bits()+1)
		// The upper half starts after the lower half's last address.
		upper := lastAddr(a).Next()
		for i := 0; i < 16; i++ {
			upper = upper.Next()
			if !taken[upper] {
				return upper, nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("network %s: no free IPv4 address in the upper half of a /24 or larger subnet (%s)", network, subnets)
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// writeRegistryFiles makes the CA, the registry's certificate for addr,
// a password and its htpasswd entry, the registry's configuration, and
// the user's side: registry, ca.crt, pull-secret.json.
func writeRegistryFiles(dir string, addr netip.Addr, host string) error {
	serve := filepath.Join(dir, "serve")
	if err := os.MkdirAll(serve, 0o700); err != nil {
		return err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "acme.example registry CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host},
		IPAddresses: []net.IP{addr.AsSlice()}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	secret := make([]byte, 18)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	password := hex.EncodeToString(secret)
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	pull, err := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password)),
	}}})
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"serve/tls.crt":    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"serve/tls.key":    pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		"serve/htpasswd":   []byte(user + ":" + string(hash) + "\n"),
		"serve/config.yml": []byte(registryConfig),
		"ca.crt":           pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		"pull-secret.json": pull,
		"registry":         []byte(host + "\n"),
	}
	for name, b := range files {
		// The registry runs as root in its container; the files stay
		// unreadable to other users of this machine.
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// registryConfig serves TLS with basic auth; storage is the container's
// own, gone with it.
const registryConfig = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: /var/lib/registry
auth:
  htpasswd:
    realm: acme
    path: /certs/htpasswd
http:
  addr: :5443
  tls:
    certificate: /certs/tls.crt
    key: /certs/tls.key
`

// trustOnNode makes a kind node's containerd trust the registry's CA for
// host (its CRI registry config; credentials come from pull secrets),
// then restarts containerd, which leaves running containers alone.
func trustOnNode(ctx context.Context, node, host string, ca []byte) error {
	caPath := "/etc/containerd/certs/" + strings.ReplaceAll(host, ":", "_") + "-ca.crt"
	if _, err := docker(ctx, strings.NewReader(string(ca)), "exec", "-i", node, "sh", "-c",
		"mkdir -p /etc/containerd/certs && cat > "+caPath); err != nil {
		return fmt.Errorf("node %s: %w", node, err)
	}
	conf := fmt.Sprintf("\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.%q.tls]\n  ca_file = %q\n", host, caPath)
	// Once per host: a table given twice would make the file invalid.
	if _, err := docker(ctx, strings.NewReader(conf), "exec", "-i", node, "sh", "-c",
		"grep -qF "+shellQuote(caPath)+" /etc/containerd/config.toml && cat >/dev/null || cat >> /etc/containerd/config.toml; systemctl restart containerd"); err != nil {
		return fmt.Errorf("node %s: %w", node, err)
	}
	return nil
}
