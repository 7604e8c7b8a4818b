package harness

import (
	"reflect"
	"testing"
)

func TestNewSinceNamesOnlyNewEntries(t *testing.T) {
	before := Inventory{Containers: []string{"users-db"}, Networks: []string{"bridge", "host"}}
	after := Inventory{
		Containers: []string{"cluster1-control-plane", "users-db"},
		Networks:   []string{"bridge", "host", "meshconform"},
		Contexts:   []string{"kind-cluster1 in /root/.kube/config"},
		TempFiles:  []string{"/root/.cache/meshconform/bin/x.tmp"},
	}
	got := after.NewSince(before)
	want := []string{
		"container cluster1-control-plane", "docker network meshconform",
		"kubeconfig context kind-cluster1 in /root/.kube/config", "temp file /root/.cache/meshconform/bin/x.tmp",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	if len(before.NewSince(before)) != 0 {
		t.Error("an inventory has new entries against itself")
	}
	if after.Count() != 7 {
		t.Errorf("count = %d", after.Count())
	}
}
