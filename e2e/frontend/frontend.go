// Package frontend asks the sample frontend (fixtures/apps/meshapp) for
// batches of mesh calls over HTTP: the suite's one client of it, so that
// package checks, which judges the answers, talks to nothing.
package frontend

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/meshconform/meshconform/e2e/checks"
	"github.com/meshconform/meshconform/fixtures/apps/meshapp/api"
)

// Call asks the frontend at base (http://addr) for n backend calls, each
// with the given request headers ("key:value"). A frontend that cannot be
// reached or answers badly is an error; the answers are judged by package checks.
func Call(ctx context.Context, base string, n int, headers ...string) (checks.Calls, error) {
	q := url.Values{"n": {fmt.Sprint(n)}}
	for _, h := range headers {
		q.Add("h", h)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(n)*2*time.Second+10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/call?"+q.Encode(), nil)
	if err != nil {
		return checks.Calls{Asked: n}, err
	}
	resp, err := frontendClient.Do(req)
	if err != nil {
		return checks.Calls{Asked: n}, fmt.Errorf("call frontend %s: %w", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return checks.Calls{Asked: n}, fmt.Errorf("frontend %s: read answer: %w", base, err)
	}
	if resp.StatusCode != http.StatusOK {
		return checks.Calls{Asked: n}, fmt.Errorf("frontend %s: %s: %s", base, resp.Status, strings.TrimSpace(string(body)))
	}
	var r checks.Response
	if err := json.Unmarshal(body, &r); err != nil {
		return checks.Calls{Asked: n}, fmt.Errorf("frontend %s: %w", base, err)
	}
	return checks.Calls{Asked: n, Response: r}, nil
}

// Endpoints asks the frontend at base for the endpoints its own xDS
// client holds (GET /endpoints): the caller's view of the mesh.
func Endpoints(ctx context.Context, base string) (api.Endpoints, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var out api.Endpoints
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/endpoints", nil)
	if err != nil {
		return out, err
	}
	resp, err := frontendClient.Do(req)
	if err != nil {
		return out, fmt.Errorf("frontend %s: endpoints: %w", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return out, fmt.Errorf("frontend %s: read endpoints: %w", base, err)
	}
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("frontend %s: endpoints: %s: %s", base, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return out, fmt.Errorf("frontend %s: endpoints: %w", base, err)
	}
	return out, nil
}

// frontendClient opens a connection per batch: a kept-alive connection
// would pin every batch to the one frontend replica it first reached, and
// the other replica's calls would never be judged.
var frontendClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
