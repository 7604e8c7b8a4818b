package mesh

import (
	"context"
	"sync"

	"github.com/meshconform/meshconform/e2e/clusters"
	"github.com/meshconform/meshconform/e2e/snapshot"
)

// Inventories takes a snapshot of each cluster side by side (snapshot.Take:
// every listable kind, metadata only, so no Secret's data is read), each
// timed as an install step, so the report shows its cost: the inventory
// before the install that the uninstall is proven against (Leftovers).
func (in *Installer) Inventories(ctx context.Context, cls ...*clusters.Cluster) (map[string]snapshot.Snapshot, error) {
	out := make(map[string]snapshot.Snapshot, len(cls))
	var mu sync.Mutex
	err := eachOf(ctx, cls, func(ctx context.Context, cl *clusters.Cluster) error {
		return in.step("inventory before the install", cl.Name, func() error {
			snap, err := snapshot.Take(ctx, cl.Client.RESTConfig())
			if err != nil {
				return err
			}
			mu.Lock()
			out[cl.Name] = snap
			mu.Unlock()
			in.Run.Figure("inventory_objects_"+cl.Name, len(snap))
			return nil
		})
	})
	return out, err
}
