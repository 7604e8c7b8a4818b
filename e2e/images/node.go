package images

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/meshconform/meshconform/e2e/internal/rootfs"
)

// nodePackages are the Debian packages of a kind node: the list of kind's
// base image (images/base/Dockerfile) with Debian's containerd, runc and CNI
// plugins in place of the ones kind builds. Not included: nfs-common and
// open-iscsi (storage drivers no suite uses) and crictl, which Debian does not
// package (kind's log export then lacks images.log).
var nodePackages = []string{
	"systemd", "systemd-sysv", "dbus", "containerd", "runc", "containernetworking-plugins",
	"conntrack", "iptables", "nftables", "iproute2", "ethtool", "util-linux", "mount", "kmod",
	"libseccomp2", "pigz", "bash", "ca-certificates", "curl", "jq", "procps", "socat",
}

// kubeProxyPackages are what kube-proxy's iptables mode calls.
var kubeProxyPackages = []string{"iptables", "nftables", "conntrack", "ipset", "kmod"}

// kindModuleDir finds kind's module in the module cache: its base image files
// (entrypoint, kubelet units, helper scripts) are what kind's create flow
// expects inside a node, so they are copied from the very kind version this
// harness links.
func kindModuleDir(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kind").Output()
	if err != nil {
		return "", fmt.Errorf("find the kind module (go list -m sigs.k8s.io/kind): %w", err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("the kind module is not in the module cache: run go mod download")
	}
	return dir, nil
}

// kindBaseFiles is kind's images/base/files, minus what this node does not
// use (the fuse-overlayfs snapshotter, build-time helpers, kind's own
// containerd config, which nodeContainerdConfig replaces).
func kindBaseFiles(kindDir string) (map[string]string, error) {
	base := filepath.Join(kindDir, "images", "base", "files")
	files := map[string]string{}
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		switch {
		case strings.Contains(rel, "fuse-overlayfs"), rel == "usr/local/bin/clean-install",
			rel == "etc/containerd/config.toml", strings.HasPrefix(rel, "LICENSES"):
			return nil
		}
		files[rel] = p
		return nil
	})
	return files, err
}

// nodeRootfsSpec is the Debian tree of a kind node, with kind's base files in
// place and systemd set up as kind's base image sets it up.
func nodeRootfsSpec(ctx context.Context) (rootfs.Spec, error) {
	kindDir, err := kindModuleDir(ctx)
	if err != nil {
		return rootfs.Spec{}, err
	}
	files, err := kindBaseFiles(kindDir)
	if err != nil {
		return rootfs.Spec{}, fmt.Errorf("read kind base files: %w", err)
	}
	return rootfs.Spec{Name: "node", Suite: "bookworm", Variant: "minbase", Include: nodePackages, Edits: nodeEdits(files)}, nil
}

// nodeEdits turn the debootstrapped tree into a kind node: kind's base
// files (rel → source on this machine), kind's systemd trimming, and
// Debian's containerd and CNI plugins where kind's units and configs look.
func nodeEdits(files map[string]string) rootfs.Edits {
	copied := map[string]rootfs.CopiedFile{}
	for rel, src := range files {
		mode := os.FileMode(0o644)
		if strings.HasPrefix(rel, "kind/bin/") || strings.HasPrefix(rel, "usr/local/bin/") {
			mode = 0o755
		}
		copied[rel] = rootfs.CopiedFile{Src: src, Mode: mode}
	}
	// The runtime spec every pod container starts from, made as kind makes it.
	spec := `ctr oci spec | jq '.hooks.createContainer[.hooks.createContainer|length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json`
	return rootfs.Edits{
		Copy: copied,
		// The same systemd trimming as kind's base image: no units that
		// expect a real machine (udev, getty, tmpfiles setup).
		Remove: []string{
			"lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service",
			"lib/systemd/system/multi-user.target.wants/*", "etc/systemd/system/*.wants/*",
			"lib/systemd/system/local-fs.target.wants/*", "lib/systemd/system/sockets.target.wants/*udev*",
			"lib/systemd/system/sockets.target.wants/*initctl*", "lib/systemd/system/basic.target.wants/*",
		},
		// kmsg is the host's: left alone.
		Append: map[string]string{"etc/systemd/journald.conf": "ReadKMsg=no\n"},
		// kind's containerd unit starts /usr/local/bin/containerd; Debian's
		// is in /usr/bin. Debian's CNI plugins live in /usr/lib/cni;
		// containerd and every CNI config look in /opt/cni/bin.
		Link:     map[string]string{"usr/local/bin/containerd": "/usr/bin/containerd"},
		LinkEach: map[string]string{"opt/cni/bin": "usr/lib/cni"},
		Dirs:     []string{"etc/kubernetes/manifests", "etc/cni/net.d", "kind"},
		Chmod:    map[string]os.FileMode{"kind/bin": 0o755},
		Chroot: [][]string{
			{"sh", "-c", spec},
			{"systemctl", "enable", "kubelet.service", "containerd.service", "undo-mount-hacks.service"},
			{"systemctl", "mask", "systemd-binfmt.service"},
		},
		// Each node must make its own machine ID (kind's entrypoint does).
		Write: map[string]rootfs.WrittenFile{"etc/machine-id": {Mode: 0o444}},
	}
}

// nodeContainerdConfig is kind's containerd config for this node. It differs
// from kind's in one setting: restrict_oom_score_adj is on, because this
// host gives no container CAP_SYS_RESOURCE, and without it every pod sandbox
// fails when the kubelet asks for a negative oom_score_adj.
func nodeContainerdConfig(pauseImage string) string {
	return fmt.Sprintf(`version = 2

[plugins."io.containerd.grpc.v1.cri".containerd]
  discard_unpacked_layers = true
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  base_runtime_spec = "/etc/containerd/cri-base.json"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = true

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  tolerate_missing_hugepages_controller = true
  restrict_oom_score_adj = true
`, pauseImage)
}
