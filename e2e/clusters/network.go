package clusters

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"

	"github.com/meshconform/meshconform/e2e/images"
	"github.com/meshconform/meshconform/e2e/internal/docker"
	"github.com/meshconform/meshconform/e2e/topology"
)

// CheckNetwork says whether the topology's Docker network can be used: it is
// ours already, or its name is free and its subnet overlaps no route on this
// machine and no other Docker network. Nothing is created.
func CheckNetwork(ctx context.Context, n topology.Network) error {
	exists, err := docker.Exists(ctx, "network", n.Name)
	if err != nil {
		return err
	}
	if exists {
		return checkOurNetwork(ctx, n)
	}
	routes, err := exec.CommandContext(ctx, "ip", "-4", "route", "show").Output()
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	if r := overlappingRoute(string(routes), n.Subnet); r != "" {
		return fmt.Errorf("docker network %s: subnet %s overlaps this machine's route %q; choose another subnet in the topology file of kindconfigs/ (MESHCONFORM_TOPOLOGY)", n.Name, n.Subnet, r)
	}
	return nil
}

func checkOurNetwork(ctx context.Context, n topology.Network) error {
	out, err := docker.Run(ctx, "network", "inspect", "--format",
		`{{index .Labels "`+images.OwnerLabel+`"}} {{range .IPAM.Config}}{{.Subnet}} {{end}}`, n.Name)
	if err != nil {
		return err
	}
	f := strings.Fields(out)
	if len(f) == 0 || f[0] != "true" {
		return fmt.Errorf("docker network %s exists and is not meshconform's: remove it or name another network in the topology file of kindconfigs/ (MESHCONFORM_TOPOLOGY)", n.Name)
	}
	for _, s := range f[1:] {
		if s == n.Subnet.String() {
			return nil
		}
	}
	return fmt.Errorf("docker network %s exists with subnets %v, not %s: remove it (make clean) to recreate it", n.Name, f[1:], n.Subnet)
}

// overlappingRoute returns the first route in `ip route` output whose
// destination overlaps subnet.
func overlappingRoute(routes string, subnet netip.Prefix) string {
	for _, line := range strings.Split(routes, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "default" {
			continue
		}
		dst := f[0]
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		p, err := netip.ParsePrefix(dst)
		if err != nil {
			continue
		}
		if p.Overlaps(subnet) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// EnsureNetwork creates the topology's Docker network, labelled as ours,
// unless it exists already (and is ours, with the right subnet).
func EnsureNetwork(ctx context.Context, n topology.Network) error {
	if err := CheckNetwork(ctx, n); err != nil {
		return err
	}
	if exists, err := docker.Exists(ctx, "network", n.Name); err != nil || exists {
		return err
	}
	_, err := docker.Run(ctx, "network", "create", "--driver", "bridge",
		"--subnet", n.Subnet.String(), "--ip-range", n.NodeRange().String(),
		"--label", images.OwnerLabel+"=true",
		"-o", "com.docker.network.bridge.enable_ip_masquerade=true", n.Name)
	if err != nil {
		if strings.Contains(err.Error(), "overlaps") {
			return fmt.Errorf("docker network %s: subnet %s overlaps another Docker network; choose another subnet in the topology file of kindconfigs/ (MESHCONFORM_TOPOLOGY): %w", n.Name, n.Subnet, err)
		}
		return fmt.Errorf("create docker network %s: %w", n.Name, err)
	}
	return nil
}

// RemoveNetwork removes the network if it exists and is ours.
func RemoveNetwork(ctx context.Context, n topology.Network) error {
	exists, err := docker.Exists(ctx, "network", n.Name)
	if err != nil || !exists {
		return err
	}
	if err := checkOurNetwork(ctx, n); err != nil {
		return err
	}
	_, err = docker.Run(ctx, "network", "rm", n.Name)
	return err
}
