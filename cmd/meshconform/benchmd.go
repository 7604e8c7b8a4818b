package main

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// renderMarkdown is bench.md: one column per run for the totals, then each
// run's critical path, longest phases and figures. A pure function of the
// record, so a fixed record gives a fixed table.
func renderMarkdown(rec *Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# meshconform bench (%s), Istio %s, %s\n\n", rec.Mode, rec.IstioVersion, rec.Date)
	if c := rec.ColdCaches; c != nil {
		var sizes []string
		for _, k := range []string{"GOMODCACHE", "GOCACHE", "MESHCONFORM_CACHE"} {
			sizes = append(sizes, fmt.Sprintf("%s %s", k, humanBytes(c.Bytes[k])))
		}
		fmt.Fprintf(&b, "Cold caches in %s (%s), removed afterwards. Docker's own image store is not emptied.\n\n", c.Dir, strings.Join(sizes, ", "))
	}
	runs := rec.Runs
	row := func(label string, cell func(*RunRecord) string) {
		fmt.Fprintf(&b, "| %s |", label)
		for _, r := range runs {
			fmt.Fprintf(&b, " %s |", mdCell(cell(r)))
		}
		b.WriteString("\n")
	}
	b.WriteString("| |")
	for _, r := range runs {
		fmt.Fprintf(&b, " %s |", mdCell(r.Name))
	}
	b.WriteString("\n|---|" + strings.Repeat("---:|", len(runs)) + "\n")
	row("wall", func(r *RunRecord) string { return secs(r.WallSeconds) })
	for _, name := range commandNames(runs) {
		row(name, func(r *RunRecord) string {
			for _, c := range r.Commands {
				if c.Command == name {
					if !c.OK {
						return secs(c.WallSeconds) + " ✗"
					}
					return secs(c.WallSeconds)
				}
			}
			return "–"
		})
	}
	cpu := func(f func(*RunRecord) string) func(*RunRecord) string {
		return func(r *RunRecord) string {
			if r.CPU == nil {
				return "–"
			}
			return f(r)
		}
	}
	row("CPU busy", cpu(func(r *RunRecord) string { return fmt.Sprintf("%.0f CPU-s", r.CPU.BusySeconds) }))
	row("user / system", cpu(func(r *RunRecord) string {
		return fmt.Sprintf("%.0f / %.0f CPU-s", r.CPU.UserSeconds, r.CPU.SystemSeconds)
	}))
	row("average CPU use", cpu(func(r *RunRecord) string {
		return fmt.Sprintf("%.1f %% of %d cores", 100*r.CPU.BusyAvg, r.CPU.Cores)
	}))
	row("critical path", func(r *RunRecord) string {
		return fmt.Sprintf("%s in %d phases", secs(r.CriticalPathSeconds), len(r.CriticalPath))
	})
	row("phases (cached)", func(r *RunRecord) string { return fmt.Sprintf("%d (%d)", r.PhaseCount, r.CachedPhases) })
	row("kubernetes", func(r *RunRecord) string { return value(r.KubernetesVersion) })
	row("image source", func(r *RunRecord) string { return value(r.ImageSource) })
	for _, r := range runs {
		fmt.Fprintf(&b, "\n## %s\n\n", r.Name)
		fmt.Fprintf(&b, "Artifacts: %s\n", r.Artifacts)
		for _, c := range r.Commands {
			if c.Error != "" {
				fmt.Fprintf(&b, "\n%s failed: %s\n", c.Command, c.Error)
			}
		}
		if r.Error != "" {
			fmt.Fprintf(&b, "\nNo phases: %s\n", r.Error)
			continue
		}
		fmt.Fprintf(&b, "\nCritical path, %s (★ in the Gantt chart):\n\n| at | phase | seconds |\n|---:|---|---:|\n", secs(r.CriticalPathSeconds))
		for _, s := range r.CriticalPath {
			fmt.Fprintf(&b, "| %s | %s | %.1f |\n", secs(s.At), mdCell(stepName(s)), s.Seconds)
		}
		fmt.Fprintf(&b, "\nLongest phases:\n\n| phase | seconds | note |\n|---|---:|---|\n")
		for _, s := range r.TopPhases {
			fmt.Fprintf(&b, "| %s | %.1f | %s |\n", mdCell(stepName(s)), s.Seconds, mdCell(s.Note))
		}
		fmt.Fprintf(&b, "\nFigures:\n\n| figure | value |\n|---|---|\n")
		keys := make([]string, 0, len(r.Figures))
		for k := range r.Figures {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "| %s | %s |\n", mdCell(k), mdCell(value(r.Figures[k])))
		}
	}
	return b.String()
}

// commandNames lists the runs' commands, each once, in first-run order.
func commandNames(runs []*RunRecord) []string {
	var names []string
	for _, r := range runs {
		for _, c := range r.Commands {
			if !slices.Contains(names, c.Command) {
				names = append(names, c.Command)
			}
		}
	}
	return names
}

func stepName(s Step) string {
	if !s.OK {
		return s.Name + " (failed)"
	}
	return s.Name
}

func secs(v float64) string { return fmt.Sprintf("%.1f s", v) }

// value prints a figure as read back from JSON: whole numbers without an
// exponent, others as short as they go, structures as compact JSON.
func value(v any) string {
	switch x := v.(type) {
	case nil:
		return "–"
	case string:
		return x
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatFloat(x, 'f', 0, 64)
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int:
		return strconv.Itoa(x)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(raw)
}

// mdCell keeps a value inside its table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), 0
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %cB", f, "kMGTP"[i-1])
}
