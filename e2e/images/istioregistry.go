package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"
)

// Istio's images in a user's registry: an install by the local source on
// clusters a user brings takes istiod and the proxyless agent from there
// (`meshconform images push --istio-version V` puts them there), under a
// repository of meshconform's own, so they never shadow a mirror of
// Istio's official images (whose proxyv2 carries Envoy; this one does
// not). Both images share one tag, as Istio's hub/tag scheme asks: the
// release and a digest of what both are built from, so a registry holding
// an older build is found out before anything is created.

// istioUserRepo is the path, under the user's registry, of Istio's images.
const istioUserRepo = "meshconform/istio"

// IstioUserRepoTags are the release's pilot and proxyv2 repoTags in a
// user's registry (without the registry).
func IstioUserRepoTags(r IstioRelease) (pilot, proxy string) {
	tag := istioUserTag(r)
	return istioUserRepo + "/pilot:" + tag, istioUserRepo + "/proxyv2:" + tag
}

// IstioHubTag are the install's hub and tag for the release's images in
// the registry u.
func (u UserRegistry) IstioHubTag(r IstioRelease) (hub, tag string) {
	return u.Prefix + "/" + istioUserRepo, istioUserTag(r)
}

func istioUserTag(r IstioRelease) string {
	pilot, proxy := istioUserRecipes(nil, r)
	sum := sha256.Sum256([]byte(pilot.key() + "\n" + proxy.key()))
	return fmt.Sprintf("%s-mc%s", r.Version, hex.EncodeToString(sum[:])[:12])
}

// istioUserRecipes are the local source's pilot and proxyv2 recipes (see
// istioRecipes); with a nil l only their keys are meaningful.
func istioUserRecipes(l *Local, r IstioRelease) (pilot, proxy recipe) {
	rs := istioRecipes(l, r)
	return rs[0], rs[1]
}

// IstioUserImages assembles the release's pilot and proxyv2 images, by their
// repoTag in a user's registry (IstioUserRepoTags), without a registry or
// Docker: what `images push --istio-version` and `images save` write.
func (l *Local) IstioUserImages(ctx context.Context, r IstioRelease) (map[string]v1.Image, error) {
	pilot, proxy := istioUserRecipes(l, r)
	pilotRT, proxyRT := IstioUserRepoTags(r)
	out := map[string]v1.Image{}
	var pi, xi v1.Image
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { pi, err = l.assemble(gctx, pilot.plan); return err })
	g.Go(func() (err error) { xi, err = l.assemble(gctx, proxy.plan); return err })
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("Istio %s images: %w", r.Version, err)
	}
	out[pilotRT], out[proxyRT] = pi, xi
	return out, nil
}
