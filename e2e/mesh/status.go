package mesh

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/meshconform/meshconform/e2e/checks"
)

// ParseProxyStatus reads the table `istioctl proxy-status` prints, in any
// of the layouts of Istio 1.26 to 1.29: columns are located by the header's
// positions (the table is aligned by a tabwriter; cells contain spaces).
func ParseProxyStatus(out string) ([]checks.ProxyStatus, error) {
	lines := nonEmptyLines(out)
	if len(lines) == 0 {
		return nil, nil
	}
	cols := headerColumns(lines[0])
	if _, ok := cols["NAME"]; !ok {
		return nil, fmt.Errorf("proxy-status: no NAME column in header %q", lines[0])
	}
	var rows []checks.ProxyStatus
	for _, l := range lines[1:] {
		cell := func(name string) string { return cols.cell(l, name) }
		name := cell("NAME")
		pod, ns, _ := strings.Cut(name, ".")
		r := checks.ProxyStatus{Pod: pod, Namespace: ns, Cluster: cell("CLUSTER"), Istiod: cell("ISTIOD"), Version: cell("VERSION"), Types: map[string]string{}}
		for _, t := range []string{"CDS", "LDS", "EDS", "RDS", "ECDS"} {
			if _, ok := cols[t]; ok {
				// "SYNCED (3m)" → SYNCED; "NOT SENT" stays whole.
				v := cell(t)
				if i := strings.Index(v, " ("); i > 0 {
					v = v[:i]
				}
				r.Types[t] = v
			}
		}
		if sub := cell("SUBSCRIBED TYPES"); sub != "" {
			if i, j := strings.Index(sub, "("), strings.LastIndex(sub, ")"); i >= 0 && j > i {
				r.Subscribed = strings.Split(sub[i+1:j], ",")
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

type columns map[string][2]int // name → [start, end); end -1 = to line end

// headerColumns finds each header's start column. Headers are words
// separated by two or more spaces ("SUBSCRIBED TYPES" is one header).
func headerColumns(header string) columns {
	type pos struct {
		name  string
		start int
	}
	var ps []pos
	i := 0
	for i < len(header) {
		for i < len(header) && header[i] == ' ' {
			i++
		}
		if i >= len(header) {
			break
		}
		start := i
		for i < len(header) && !(header[i] == ' ' && (i+1 >= len(header) || header[i+1] == ' ')) {
			i++
		}
		ps = append(ps, pos{strings.TrimSpace(header[start:i]), start})
	}
	cols := columns{}
	for k, p := range ps {
		end := -1
		if k+1 < len(ps) {
			end = ps[k+1].start
		}
		cols[p.name] = [2]int{p.start, end}
	}
	return cols
}

func (c columns) cell(line, name string) string {
	se, ok := c[name]
	if !ok || se[0] >= len(line) {
		return ""
	}
	end := se[1]
	if end < 0 || end > len(line) {
		end = len(line)
	}
	return strings.TrimSpace(line[se[0]:end])
}

func nonEmptyLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, strings.TrimRight(l, " \r"))
		}
	}
	return out
}

// ParseClusterz reads istiod's /debug/clusterz JSON.
func ParseClusterz(raw []byte) ([]checks.RemoteCluster, error) {
	var cs []checks.RemoteCluster
	if err := json.Unmarshal(raw, &cs); err != nil {
		return nil, fmt.Errorf("parse debug/clusterz: %w (got %.200q)", err, raw)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].ID < cs[j].ID })
	return cs, nil
}
