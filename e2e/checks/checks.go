// Package checks calls the sample frontend and judges its answers: small
// composable checks whose failures say what was counted, in the manner of
// Istio's echo checkers (pkg/test/framework/components/echo/check).
package checks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/meshconform/meshconform/fixtures/apps/meshapp/api"
)

// Result and Response are the frontend's answer (its wire contract).
type (
	Result   = api.Result
	Response = api.Response
)

// Call asks the frontend at base (http://addr) for n backend calls, each
// with the given request headers ("key:value").
func Call(ctx context.Context, base string, n int, headers ...string) (Response, error) {
	q := url.Values{"n": {fmt.Sprint(n)}}
	for _, h := range headers {
		q.Add("h", h)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(n)*2*time.Second+10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/call?"+q.Encode(), nil)
	if err != nil {
		return Response{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("call frontend %s: %w", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return Response{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return Response{}, fmt.Errorf("frontend %s: %s: %s", base, resp.Status, strings.TrimSpace(string(body)))
	}
	var r Response
	if err := json.Unmarshal(body, &r); err != nil {
		return Response{}, fmt.Errorf("frontend %s: %w", base, err)
	}
	return r, nil
}

// Checker judges a response.
type Checker func(Response) error

// And passes when every checker passes.
func And(cs ...Checker) Checker {
	return func(r Response) error {
		var errs []error
		for _, c := range cs {
			if err := c(r); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
}

// Counts tallies results by a field.
func Counts(rs []Result, field func(Result) string) map[string]int {
	m := map[string]int{}
	for _, r := range rs {
		m[field(r)]++
	}
	return m
}

// ByCluster, ByVersion and ByError select fields for Counts.
func ByCluster(r Result) string { return r.Cluster }
func ByVersion(r Result) string { return r.Version }

// Failures lists the distinct errors and how often each occurred.
func Failures(rs []Result) map[string]int {
	m := map[string]int{}
	for _, r := range rs {
		if r.Error != "" {
			m[r.Error]++
		}
	}
	return m
}

// NoFailures passes when every call succeeded.
func NoFailures() Checker {
	return func(r Response) error {
		if f := Failures(r.Results); len(f) > 0 {
			return fmt.Errorf("%d of %d calls failed: %v", sum(f), len(r.Results), f)
		}
		return nil
	}
}

// ReachedClusters passes when answers came from every one of want.
func ReachedClusters(want ...string) Checker {
	return func(r Response) error {
		got := Counts(r.Results, ByCluster)
		for _, w := range want {
			if got[w] == 0 {
				return fmt.Errorf("did not reach all of %v, got %v", want, got)
			}
		}
		return nil
	}
}

// OnlyClusters passes when every answer came from one of want.
func OnlyClusters(want ...string) Checker {
	return func(r Response) error {
		got := Counts(r.Results, ByCluster)
		for c, n := range got {
			if !contains(want, c) {
				return fmt.Errorf("want answers only from %v, got %v (%d from %q)", want, got, n, c)
			}
		}
		return nil
	}
}

// OnlyVersion passes when every answer came from version v.
func OnlyVersion(v string) Checker {
	return func(r Response) error {
		got := Counts(r.Results, ByVersion)
		if len(got) != 1 || got[v] == 0 {
			return fmt.Errorf("want every answer from version %s, got %v", v, got)
		}
		return nil
	}
}

// Split passes when the share of answers from each version is within what
// chance allows around its weight: a two-sided binomial test at
// significance alpha (normal approximation; n·p·(1-p) should be ≥ 10).
func Split(weights map[string]float64, alpha float64) Checker {
	return func(r Response) error {
		n := len(r.Results)
		got := Counts(r.Results, ByVersion)
		z := zFor(alpha)
		var bad []string
		for _, v := range sortedKeys(weights) {
			p := weights[v]
			mean := float64(n) * p
			tol := z * math.Sqrt(float64(n)*p*(1-p))
			if d := math.Abs(float64(got[v]) - mean); d > tol {
				bad = append(bad, fmt.Sprintf("%s: %d of %d (expected %.0f ± %.1f at α=%g)", v, got[v], n, mean, tol, alpha))
			}
		}
		for v := range got {
			if _, ok := weights[v]; !ok {
				bad = append(bad, fmt.Sprintf("%d answers from unexpected version %q", got[v], v))
			}
		}
		if len(bad) > 0 {
			return fmt.Errorf("split off: %s", strings.Join(bad, "; "))
		}
		return nil
	}
}

// SplitTolerance is the half-width of Split's acceptance interval for
// weight p over n calls, for reports.
func SplitTolerance(n int, p, alpha float64) float64 {
	return zFor(alpha) * math.Sqrt(float64(n)*p*(1-p))
}

// zFor is the two-sided standard normal quantile for alpha.
func zFor(alpha float64) float64 {
	return math.Sqrt2 * math.Erfinv(1-alpha)
}

// PeerIdentities passes when every answer carries mTLS identities: the
// backend's (as the frontend saw it) and the frontend's (as the backend
// saw it), both SPIFFE IDs of the mesh's trust domain.
func PeerIdentities(trustDomain string) Checker {
	prefix := "spiffe://" + trustDomain + "/"
	return func(r Response) error {
		for i, res := range r.Results {
			if !strings.HasPrefix(res.PeerIdentity, prefix) || !strings.HasPrefix(res.CallerIdentity, prefix) {
				return fmt.Errorf("call %d of %d: peer identity %q, caller identity %q: want both under %s", i+1, len(r.Results), res.PeerIdentity, res.CallerIdentity, prefix)
			}
		}
		return nil
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
