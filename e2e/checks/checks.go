// Package checks judges what the mesh did: plain functions from data (the
// sample frontend's answers, pod lists, istiod's views) to an error that
// names what was wrong, in the manner of Istio's echo checkers
// (pkg/test/framework/components/echo/check). Nothing here talks to a
// cluster or the network, so every judge is unit-tested against the broken
// meshes it must reject. It is the one home of the judges: package verify
// (for the specs) and package doctor gather data from real clusters and
// judge it here, so a fact about a mesh is judged the same way by both.
//
// Rules every judge keeps:
//   - no verdict on nothing: a batch with fewer answers than calls asked
//     for, or none, fails (see Complete);
//   - each judge states, in its comment, the broken mesh it rejects.
package checks

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/meshconform/meshconform/fixtures/apps/meshapp/api"
)

// Result and Response are the frontend's answer (its wire contract).
type (
	Result   = api.Result
	Response = api.Response
)

// Calls is one batch: how many calls the suite asked the frontend for, and
// what came back (package frontend asks). Asked is set by the caller of the
// frontend, not by the frontend, so a frontend that drops calls cannot hide
// it.
type Calls struct {
	Asked int
	Response
}

// Checker judges a batch of calls.
type Checker func(Calls) error

// And passes when every checker passes, and always checks the batch is
// complete first: no checker passes on fewer answers than calls asked for.
func And(cs ...Checker) Checker {
	return func(c Calls) error {
		if err := Complete(c); err != nil {
			return err
		}
		var errs []error
		for _, ch := range cs {
			if err := ch(c); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
}

// Complete rejects a batch that asked for nothing or got fewer (or more)
// answers than calls asked for: a frontend that lost calls, or a suite that
// would otherwise pass on zero results.
func Complete(c Calls) error {
	if c.Asked <= 0 {
		return fmt.Errorf("no calls were asked for: nothing to judge")
	}
	if len(c.Results) != c.Asked {
		return fmt.Errorf("asked for %d calls, got %d answers", c.Asked, len(c.Results))
	}
	return nil
}

// Counts tallies results by a field.
func Counts(rs []Result, field func(Result) string) map[string]int {
	m := map[string]int{}
	for _, r := range rs {
		m[field(r)]++
	}
	return m
}

// ByCluster and ByVersion select fields for Counts. ByCluster is what the
// backend says of itself; ServedFrom proves it.
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

// NoFailures rejects a mesh that drops or refuses calls: any failed call.
func NoFailures() Checker {
	return func(c Calls) error {
		if err := Complete(c); err != nil {
			return err
		}
		if f := Failures(c.Results); len(f) > 0 {
			return fmt.Errorf("%d of %d calls failed: %v", sum(f), len(c.Results), f)
		}
		return nil
	}
}

// ReachedClusters rejects a mesh that does not spread calls over every one
// of want (a cluster's endpoints missing from the mesh): it passes only
// when answers came from each.
func ReachedClusters(want ...string) Checker {
	return func(c Calls) error {
		if err := Complete(c); err != nil {
			return err
		}
		if len(want) == 0 {
			return fmt.Errorf("no cluster to reach: nothing to judge")
		}
		got := Counts(answered(c.Results), ByCluster)
		for _, w := range want {
			if got[w] == 0 {
				return fmt.Errorf("no answer from cluster %s: want answers from each of %v, got %v of %d calls", w, want, got, c.Asked)
			}
		}
		return nil
	}
}

// OnlyClusters rejects a mesh that sends any call elsewhere than want (a
// leak across localities, or to a cluster that should not serve): every
// answer must come from one of want. Over n calls it catches a mesh leaking
// a share q of calls with probability 1-(1-q)^n (see LeakCaught).
func OnlyClusters(want ...string) Checker {
	return func(c Calls) error {
		if err := someAnswered(c); err != nil {
			return err
		}
		got := Counts(answered(c.Results), ByCluster)
		var stray []string
		for _, cl := range sortedKeys(got) {
			if !contains(want, cl) {
				stray = append(stray, fmt.Sprintf("%d from %s", got[cl], cl))
			}
		}
		if len(stray) > 0 {
			return fmt.Errorf("want every answer from %v, got %s (of %d calls: %v)", want, strings.Join(stray, ", "), c.Asked, got)
		}
		return nil
	}
}

// OnlyVersion rejects a mesh whose route for a request goes to another
// subset than v (a header match ignored, subsets selecting the wrong pods):
// every answer must come from version v.
func OnlyVersion(v string) Checker {
	return func(c Calls) error {
		if err := someAnswered(c); err != nil {
			return err
		}
		got := Counts(answered(c.Results), ByVersion)
		if len(got) != 1 || got[v] == 0 {
			return fmt.Errorf("want every answer from version %s, got %v of %d calls", v, got, c.Asked)
		}
		return nil
	}
}

// PeerIdentities rejects a mesh whose calls are not mutually authenticated
// as the two workloads they are: every answer must carry exactly the
// backend's SPIFFE ID (the certificate the frontend saw) and the frontend's
// (the certificate the backend saw). A plaintext call carries neither; a
// certificate of another workload or trust domain carries the wrong one.
func PeerIdentities(backend, frontend string) Checker {
	return func(c Calls) error {
		if err := someAnswered(c); err != nil {
			return err
		}
		bad := map[string]int{}
		for _, r := range answered(c.Results) {
			if r.PeerIdentity != backend || r.CallerIdentity != frontend {
				bad[fmt.Sprintf("backend %q, frontend %q", r.PeerIdentity, r.CallerIdentity)]++
			}
		}
		if len(bad) > 0 {
			return fmt.Errorf("want backend %s and frontend %s on every call, got %v (of %d calls)", backend, frontend, bad, c.Asked)
		}
		return nil
	}
}

// SpiffeID is the identity Istio gives a workload of a service account.
func SpiffeID(trustDomain, namespace, serviceAccount string) string {
	return "spiffe://" + trustDomain + "/ns/" + namespace + "/sa/" + serviceAccount
}

// someAnswered rejects a batch in which no call was answered: judges of
// answers never pass on none (failed calls are NoFailures' business).
func someAnswered(c Calls) error {
	if err := Complete(c); err != nil {
		return err
	}
	if len(answered(c.Results)) == 0 {
		return fmt.Errorf("none of %d calls was answered: %v", c.Asked, Failures(c.Results))
	}
	return nil
}

// answered keeps the results that carry an answer (failed calls are judged
// by NoFailures, not counted as some cluster's or version's).
func answered(rs []Result) []Result {
	out := make([]Result, 0, len(rs))
	for _, r := range rs {
		if r.Error == "" {
			out = append(out, r)
		}
	}
	return out
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
