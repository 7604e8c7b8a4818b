package workloads

import (
	"context"
	"os"

	"sigs.k8s.io/e2e-framework/klient/decoder"
	"sigs.k8s.io/e2e-framework/klient/k8s"
)

func decodeDir(dir string) ([]k8s.Object, error) {
	return decoder.DecodeAllFiles(context.Background(), os.DirFS(dir), "*.yaml")
}
