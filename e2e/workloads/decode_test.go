package workloads

import (
	"context"
	"io/fs"

	"sigs.k8s.io/e2e-framework/klient/decoder"
	"sigs.k8s.io/e2e-framework/klient/k8s"
)

// decodeAll decodes the manifests embedded in fsys (a fixtures package's
// Manifests: the bytes the suites apply) into typed objects.
func decodeAll(fsys fs.FS) ([]k8s.Object, error) {
	return decoder.DecodeAllFiles(context.Background(), fsys, "*.yaml")
}
