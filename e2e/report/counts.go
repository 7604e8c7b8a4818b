package report

import (
	"slices"
	"strconv"
	"strings"
)

// Counts writes counts by name for a reader, in name order: "v1 296, v2
// 704", or "none" — never the Go map fmt prints ("map[v1:296 v2:704]"),
// which a report entry would show as is.
func Counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k + " " + strconv.Itoa(m[k]))
	}
	return b.String()
}
