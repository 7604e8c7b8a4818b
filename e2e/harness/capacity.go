package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/meshconform/meshconform/e2e/images"
	"github.com/meshconform/meshconform/e2e/internal/docker"
)

// What one run needs of the machine, per cluster and besides them. Per
// cluster: its node container's memory at its peak (1.28 GiB for a primary,
// 1.03 for a remote, measured over an upgrade run) with a margin, and its
// node's disk (the node image unpacked, Istio's and the apps' images
// loaded). Besides: the builds and the harness (a cold Istio build's
// linker alone takes over 1 GiB) and the image cache a warm run holds
// (2.6 GB; a cold build also fills Go's caches, ~15 GB, not counted here).
const (
	gib               = int64(1) << 30
	memoryPerCluster  = 3 * gib / 2
	memoryBesides     = 2 * gib
	diskPerCluster    = 3 * gib
	diskBesides       = 2 * gib
	cacheDiskRequired = 4 * gib
)

// capacity is what the preflight reads of the machine and its Docker.
type capacity struct {
	MemTotal        int64    // the Docker host's memory
	SecurityOptions []string // docker info's (name=userns, name=rootless, …)
	// DockerFree and CacheFree are the free bytes of the filesystems of
	// Docker's root directory and of the image cache; -1 when unknown (a
	// daemon on another machine); SameDisk when both are one filesystem.
	DockerFree, CacheFree int64
	SameDisk              bool
}

// check refuses a machine that cannot hold clusters clusters, with one
// error naming what is short, by how much, and what to do.
func (c capacity) check(clusters int) error {
	var short []string
	if need := int64(clusters)*memoryPerCluster + memoryBesides; c.MemTotal > 0 && c.MemTotal < need {
		short = append(short, fmt.Sprintf("memory: Docker's host has %s, %d clusters need %s", images.FormatBytes(c.MemTotal), clusters, images.FormatBytes(need)))
	}
	dockerNeed := int64(clusters)*diskPerCluster + diskBesides
	if c.SameDisk && c.DockerFree >= 0 {
		if need := dockerNeed + cacheDiskRequired; c.DockerFree < need {
			short = append(short, fmt.Sprintf("disk: %s free for Docker and the image cache, %d clusters and the cache need %s", images.FormatBytes(c.DockerFree), clusters, images.FormatBytes(need)))
		}
	} else {
		if c.DockerFree >= 0 && c.DockerFree < dockerNeed {
			short = append(short, fmt.Sprintf("disk: %s free in Docker's root directory, %d clusters need %s", images.FormatBytes(c.DockerFree), clusters, images.FormatBytes(dockerNeed)))
		}
		if c.CacheFree >= 0 && c.CacheFree < cacheDiskRequired {
			short = append(short, fmt.Sprintf("disk: %s free for the image cache (MESHCONFORM_CACHE), it needs %s", images.FormatBytes(c.CacheFree), images.FormatBytes(cacheDiskRequired)))
		}
	}
	if slices.ContainsFunc(c.SecurityOptions, func(o string) bool { return strings.Contains(o, "name=userns") }) {
		short = append(short, "privileged containers: Docker remaps user namespaces (userns-remap), and kind's nodes must run privileged in the host's; use a daemon without userns-remap")
	}
	if len(short) == 0 {
		return nil
	}
	return fmt.Errorf("this machine cannot run the topology's %d clusters: %s", clusters, strings.Join(short, "; "))
}

// readCapacity reads the machine as the preflight judges it.
func readCapacity(ctx context.Context, cacheDir string) (capacity, error) {
	out, err := docker.Run(ctx, "info", "--format", "{{json .}}")
	if err != nil {
		return capacity{}, err
	}
	var info struct {
		MemTotal        int64
		DockerRootDir   string
		SecurityOptions []string
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		return capacity{}, fmt.Errorf("docker info: %w", err)
	}
	c := capacity{MemTotal: info.MemTotal, SecurityOptions: info.SecurityOptions, DockerFree: -1, CacheFree: -1}
	var dockerDev, cacheDev uint64
	c.DockerFree, dockerDev = freeBytes(info.DockerRootDir)
	c.CacheFree, cacheDev = freeBytes(cacheDir)
	c.SameDisk = c.DockerFree >= 0 && c.CacheFree >= 0 && dockerDev == cacheDev
	return c, nil
}

// freeBytes is what an unprivileged writer may still use on path's
// filesystem, and the device it is on; -1 when path cannot be read (a
// Docker daemon on another machine or in a VM has its root elsewhere).
func freeBytes(path string) (int64, uint64) {
	var fs syscall.Statfs_t
	st, err := os.Stat(path)
	if err != nil || syscall.Statfs(path, &fs) != nil {
		return -1, 0
	}
	dev := uint64(0)
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		dev = uint64(sys.Dev)
	}
	return int64(fs.Bavail) * fs.Frsize, dev
}
