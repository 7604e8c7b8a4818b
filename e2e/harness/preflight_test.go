package harness

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/meshconform/meshconform/e2e/images"
)

// An install by the local source on brought clusters with a user's
// registry needs Istio's images of every version it installs there, not
// only the apps: the preflight names what is missing and the command that
// pushes it, and passes once all of it is there. An existing mesh needs
// the apps alone.
func TestPreflightLooksUpIstioImagesForAnInstall(t *testing.T) {
	srv := httptest.NewTLSServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := &images.UserRegistry{Prefix: strings.TrimPrefix(srv.URL, "https://") + "/acme", CAFile: ca}
	ctx := context.Background()
	local := images.NewLocal(images.KubeRelease{}, t.TempDir(), 0, nil, io.Discard)
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	apps, err := images.AppRepoTags("../..")
	if err != nil {
		t.Fatal(err)
	}
	push := map[string]v1.Image{}
	for _, rt := range apps {
		push[rt] = img
	}
	if err := reg.Push(ctx, push); err != nil {
		t.Fatal(err)
	}
	versions := []string{"1.26.0", "1.27.0"}
	install := &brought{cfg: Config{RepoRoot: "../..", Mesh: MeshInstall}}
	err = install.preflight(ctx, local, reg, versions)
	if err == nil || !strings.Contains(err.Error(), "meshconform/istio/pilot:1.26.0-mc") || !strings.Contains(err.Error(), "--istio-version 1.26.0 --istio-version 1.27.0") {
		t.Fatalf("install without Istio's images: err = %v", err)
	}
	existing := &brought{cfg: Config{RepoRoot: "../..", Mesh: MeshExisting}}
	if err := existing.preflight(ctx, local, reg, versions); err != nil {
		t.Errorf("existing mesh with the apps there: %v", err)
	}
	for _, v := range versions {
		rel, err := images.LookupIstioRelease(v)
		if err != nil {
			t.Fatal(err)
		}
		pilot, proxy := images.IstioUserRepoTags(rel)
		if err := reg.Push(ctx, map[string]v1.Image{pilot: img, proxy: img}); err != nil {
			t.Fatal(err)
		}
	}
	if err := install.preflight(ctx, local, reg, versions); err != nil {
		t.Errorf("install with every image there: %v", err)
	}
}
