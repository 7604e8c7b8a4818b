package images

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

const (
	// CacheLimitEnv overrides DefaultCacheLimit: "8GiB", "500MiB", "0"
	// (never prune on its own).
	CacheLimitEnv = "MESHCONFORM_CACHE_LIMIT"
	// DefaultCacheLimit is the size above which a teardown prunes the
	// cache. A full cache for one Kubernetes and one Istio release is about
	// 2 GB (the Go builds, the node and kube-proxy root filesystems and the
	// registry's copy of every image); 8 GiB leaves room for a second
	// release of each, or a Go toolchain upgrade that rebuilds everything
	// beside the old builds, before anything is pruned.
	DefaultCacheLimit int64 = 8 << 30
)

// ParseCacheLimit parses a size: a number of bytes, optionally fractional,
// with a unit: B; KiB, MiB, GiB, TiB (and K, M, G, T) are powers of 1024;
// KB, MB, GB, TB powers of 1000. Units ignore case. "" is the default; "0"
// turns automatic pruning off.
func ParseCacheLimit(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return DefaultCacheLimit, nil
	}
	num := strings.TrimRightFunc(s, func(r rune) bool { return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' })
	unit := strings.ToLower(strings.TrimSpace(s[len(num):]))
	mult, ok := map[string]float64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
		"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
	}[unit]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q (want B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)", s, unit)
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("size %q: want a number of bytes ≥ 0 with an optional unit, e.g. 8GiB", s)
	}
	if f*mult >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return int64(f * mult), nil
}

// FormatBytes writes n in binary units, as limits are written: "1.5 GiB".
func FormatBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), 0
	for f >= 1024 && i < 4 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGT"[i-1])
}

// PruneIfOver prunes the cache (see Prune) when it is larger than limit
// bytes; limit 0 never prunes. It is meant for a teardown, after the
// registry's container is removed. It reports the sizes before and after
// on o.Log (the summary only), and says whether the cache was over its limit
// and a prune ran, however it ended.
func PruneIfOver(ctx context.Context, cacheDir string, limit int64, o PruneOptions) (PruneResult, bool, error) {
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	size := CacheSize(cacheDir)
	switch {
	case limit <= 0:
		fmt.Fprintf(log, "   image cache %s, not pruned (%s=0)\n", FormatBytes(size), CacheLimitEnv)
		return PruneResult{Before: size, After: size}, false, nil
	case size <= limit:
		fmt.Fprintf(log, "   image cache %s, under its limit of %s\n", FormatBytes(size), FormatBytes(limit))
		return PruneResult{Before: size, After: size}, false, nil
	}
	fmt.Fprintf(log, "   image cache %s, over its limit of %s: pruning what no current recipe uses\n", FormatBytes(size), FormatBytes(limit))
	// The per-entry lines would bury a teardown's output: only the summary.
	quiet := o
	quiet.Log = nil
	res, err := Prune(ctx, cacheDir, quiet)
	if err != nil {
		return res, true, err
	}
	fmt.Fprintf(log, "   image cache pruned from %s to %s (%d entries, registry: %s)\n",
		FormatBytes(res.Before), FormatBytes(res.After), len(res.Removed), res.Registry)
	if res.After > limit {
		fmt.Fprintf(log, "   image cache still over its limit: what current recipes use takes that much; raise %s\n", CacheLimitEnv)
	}
	return res, true, nil
}
