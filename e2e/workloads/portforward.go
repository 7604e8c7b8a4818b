package workloads

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"sigs.k8s.io/e2e-framework/klient"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"

	"github.com/meshconform/meshconform/e2e/checks"
)

// PortForward forwards a port of a Ready pod matching selector in ns to a
// free port on 127.0.0.1, as `kubectl port-forward` does, for clusters
// whose Services get no load balancer address. It returns the local base
// URL and a stop function; the forward also ends with ctx.
func PortForward(ctx context.Context, c klient.Client, ns, selector string, port int) (base string, stop func(), err error) {
	pod, err := readyPod(ctx, c, ns, selector)
	if err != nil {
		return "", nil, err
	}
	cfg := c.RESTConfig()
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return "", nil, err
	}
	u, err := url.Parse(cfg.Host)
	if err != nil {
		return "", nil, err
	}
	u.Path = fmt.Sprintf("%s/api/v1/namespaces/%s/pods/%s/portforward", u.Path, ns, pod)
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
	fctx, cancel := context.WithCancel(ctx)
	ready := make(chan struct{})
	pf, err := portforward.NewOnAddressesWithContext(fctx, dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", port)}, ready, io.Discard, io.Discard)
	if err != nil {
		cancel()
		return "", nil, fmt.Errorf("port-forward to %s/%s: %w", ns, pod, err)
	}
	done := make(chan error, 1)
	go func() { done <- pf.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		return "", nil, fmt.Errorf("port-forward to %s/%s: %w", ns, pod, err)
	case <-time.After(30 * time.Second):
		cancel()
		return "", nil, fmt.Errorf("port-forward to %s/%s: not ready after 30s", ns, pod)
	}
	ports, err := pf.GetPorts()
	if err != nil || len(ports) != 1 {
		cancel()
		return "", nil, fmt.Errorf("port-forward to %s/%s: local port: %v", ns, pod, err)
	}
	stop = func() {
		cancel()
		<-done
	}
	return fmt.Sprintf("http://127.0.0.1:%d", ports[0].Local), stop, nil
}

// readyPod names a Running, Ready pod matching selector.
func readyPod(ctx context.Context, c klient.Client, ns, selector string) (string, error) {
	var pods corev1.PodList
	if err := c.Resources(ns).List(ctx, &pods, resources.WithLabelSelector(selector)); err != nil {
		return "", fmt.Errorf("list pods %s in %s: %w", selector, ns, err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && checks.PodReady(p) {
			return p.Name, nil
		}
	}
	return "", fmt.Errorf("no Ready pod %s in %s to forward to", selector, ns)
}
