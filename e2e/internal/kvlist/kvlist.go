// Package kvlist reads the "key=value,key=value" lists settings take
// (contexts per cluster, namespace labels).
package kvlist

import (
	"fmt"
	"strings"
)

// Parse reads s: pairs separated by commas, spaces around keys and values
// allowed, empty items skipped. key and value name the two sides in
// errors ("cluster", "context"). A pair without '=', with an empty key, or
// with a key given twice is refused; an empty value is refused unless
// emptyValues.
func Parse(s, key, value string, emptyValues bool) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		if pair = strings.TrimSpace(pair); pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || (v == "" && !emptyValues) {
			return nil, fmt.Errorf("%q is not %s=%s", pair, key, value)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%s %s given twice", key, k)
		}
		out[k] = v
	}
	return out, nil
}
