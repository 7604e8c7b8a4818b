package images

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/meshconform/meshconform/e2e/internal/docker"
	"github.com/meshconform/meshconform/e2e/poll"
)

// Names and labels of what the local source creates in Docker.
const (
	// RegistryContainer is the local registry's container; on the clusters'
	// Docker network it answers as RegistryContainer:5000.
	RegistryContainer = "meshconform-registry"
	// OwnerLabel marks every Docker object meshconform creates, so a
	// teardown or a later run can tell its own objects from a user's.
	OwnerLabel = "dev.meshconform.owned"
	// DefaultRegistryPort is the host port (on 127.0.0.1) of the registry.
	DefaultRegistryPort = 5001
)

// RegistryHost is the registry's name and port as the nodes see it.
const RegistryHost = RegistryContainer + ":5000"

// RegistryEndpoint is the registry's address as the nodes see it.
func RegistryEndpoint() string { return "http://" + RegistryHost }

// registryConfig is distribution's configuration: filesystem storage on a
// volume the cache keeps, so a later run finds every image it pushed before.
const registryConfig = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :5000
`

// startRegistry runs the registry container on network, publishing it on
// 127.0.0.1:port, with its storage in dataDir. A registry container of ours
// that already runs the same image on the same network is kept.
func startRegistry(ctx context.Context, image, network, dataDir string, port int) error {
	if ok, err := registryRunning(ctx, image, network, port); err != nil {
		return err
	} else if ok {
		return waitRegistry(ctx, port)
	}
	if err := RemoveRegistry(ctx); err != nil {
		return err
	}
	if err := PortFree(port); err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return err
	}
	_, err := docker.Run(ctx, "run", "-d", "--name", RegistryContainer, "--label", OwnerLabel+"=true",
		"--network", network, "-p", fmt.Sprintf("127.0.0.1:%d:5000", port),
		"-v", dataDir+":/var/lib/registry", "--restart=no", image)
	if err != nil {
		return fmt.Errorf("start local registry: %w", err)
	}
	return waitRegistry(ctx, port)
}

// registryRunning tells whether our registry container runs image on
// network, published on port: only then is it kept. One published on
// another port (MESHCONFORM_REGISTRY_PORT changed) is replaced at once,
// not waited for on a port it does not serve.
func registryRunning(ctx context.Context, image, network string, port int) (bool, error) {
	if ours, err := OurRegistry(ctx); err != nil || !ours {
		return false, err
	}
	out, err := docker.Run(ctx, "inspect", "--format",
		`{{.State.Running}} {{.Config.Image}} {{range $k, $v := .NetworkSettings.Networks}}{{$k}},{{end}} {{range (index .HostConfig.PortBindings "5000/tcp")}}{{.HostPort}}{{end}}`, RegistryContainer)
	if err != nil {
		return false, err
	}
	f := strings.Fields(out)
	return len(f) == 4 && f[0] == "true" && f[1] == image && strings.Contains(","+f[2], ","+network+",") && f[3] == strconv.Itoa(port), nil
}

// OurRegistry tells whether a container of the registry's name exists and
// is meshconform's; one that is someone else's is an error that names it,
// found by the preflight before anything is created.
func OurRegistry(ctx context.Context) (bool, error) {
	exists, err := docker.Exists(ctx, "container", RegistryContainer)
	if err != nil || !exists {
		return false, err
	}
	label, err := docker.Run(ctx, "inspect", "--format", `{{index .Config.Labels "`+OwnerLabel+`"}}`, RegistryContainer)
	if err != nil {
		return false, err
	}
	if label != "true" {
		return false, fmt.Errorf("a container named %s exists and is not meshconform's: remove or rename it", RegistryContainer)
	}
	return true, nil
}

// RemoveRegistry removes the registry container if it exists; its storage
// stays in the cache.
func RemoveRegistry(ctx context.Context) error {
	if ours, err := OurRegistry(ctx); err != nil || !ours {
		return err
	}
	_, err := docker.Run(ctx, "rm", "-f", "-v", RegistryContainer)
	return err
}

// PortFree returns an error naming the port when something on this machine
// already listens on 127.0.0.1:port.
func PortFree(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("port 127.0.0.1:%d, wanted for the local registry, is in use (set MESHCONFORM_REGISTRY_PORT to another port): %w", port, err)
	}
	return l.Close()
}

func waitRegistry(ctx context.Context, port int) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/v2/", port)
	// Each try is bounded: one request left hanging by a port that
	// accepts and never answers must not spend the whole wait.
	client := &http.Client{Timeout: 2 * time.Second}
	err := poll.Until(ctx, 30*time.Second, 300*time.Millisecond, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("wait for the local registry at %s to answer: %w", url, err)
	}
	return nil
}

// RegistryServing fails unless the local registry answers on its port now:
// a run on clusters meshconform keeps (`meshconform up`) serves its app
// images from the registry that run left up.
func RegistryServing(ctx context.Context, port int) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/v2/", port), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("meshconform's local registry does not answer on 127.0.0.1:%d (%v): the app images of the local source are served by the registry `meshconform up` keeps running; run `meshconform up` again", port, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("meshconform's local registry on 127.0.0.1:%d answered %s", port, resp.Status)
	}
	return nil
}
