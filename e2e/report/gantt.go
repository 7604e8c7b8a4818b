package report

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

// WriteGanttCPU draws the phases as a Gantt chart (SVG): one bar per phase on
// a shared time axis, so a slow phase, and what ran beside it, is seen at a
// glance. Failed phases are red, cached ones grey; phases on the critical
// path (CriticalPath) carry a ★ and a dark outline. When cpu has samples, a
// strip above the bars shows the machine's busy (blue) and iowait (orange)
// share of all cores on the same axis: a long phase under a full strip is
// CPU-bound, one under an empty strip waits on something else.
func WriteGanttCPU(w io.Writer, phases []Phase, cpu *CPU) error {
	const (
		rowH, labelW, chartW, top = 18, 420, 760, 30
		stripH                    = 60 // the CPU strip's height at 100 %
	)
	var samples []CPUSample
	if cpu != nil {
		samples = cpu.Samples
	}
	if len(phases) == 0 && len(samples) == 0 {
		_, err := fmt.Fprint(w, `<svg xmlns="http://www.w3.org/2000/svg" width="400" height="40"><text x="10" y="25">no phases</text></svg>`+"\n")
		return err
	}
	start, end := timeSpan(phases, cpu)
	total := math.Max(end.Sub(start).Seconds(), 1)
	scale := chartW / total
	barsTop := top
	if len(samples) > 0 {
		barsTop = top + stripH + 16
	}
	height := barsTop + rowH*len(phases) + 20
	crit := criticalSet(phases)
	critSec := 0.0
	for i := range crit {
		critSec += phases[i].Seconds
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="monospace" font-size="11">`+"\n", labelW+chartW+80, height)
	fmt.Fprintf(&b, `<text x="4" y="16" font-size="13">phases: %.0fs wall, %d phases, ★ critical path %.0fs</text>`+"\n", total, len(phases), critSec)
	// A tick every 10% of the run.
	step := niceStep(total / 10)
	for t := 0.0; t <= total; t += step {
		x := labelW + t*scale
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/><text x="%.1f" y="%d" fill="#888">%.0fs</text>`+"\n", x, top-4, x, height-16, x+2, height-4, t)
	}
	if len(samples) > 0 {
		writeCPUStrip(&b, cpu, start, float64(labelW), scale, top, stripH, chartW)
	}
	for i, p := range phases {
		y := barsTop + i*rowH
		x := labelW + p.Start.Sub(start).Seconds()*scale
		wd := math.Max(p.Seconds*scale, 1)
		color := "#4a7fd0"
		switch {
		case !p.OK:
			color = "#d04a4a"
		case p.Note == "cached":
			color = "#aaa"
		}
		label, outline := p.Name, ""
		if len(label) > 58 {
			label = label[:55] + "..."
		}
		if crit[i] {
			label, outline = "★ "+label, ` stroke="#111" stroke-width="1.5"`
		}
		fmt.Fprintf(&b, `<text x="4" y="%d">%s</text>`, y+12, html.EscapeString(label))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"%s><title>%s: %.1fs</title></rect>`, x, y+2, wd, rowH-5, color, outline, html.EscapeString(p.Name), p.Seconds)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#333">%.1fs</text>`+"\n", x+wd+3, y+12, p.Seconds)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// timeSpan is the axis: from the first phase or CPU sample to the last.
func timeSpan(phases []Phase, cpu *CPU) (start, end time.Time) {
	first := true
	add := func(s, e time.Time) {
		if first || s.Before(start) {
			start = s
		}
		if first || e.After(end) {
			end = e
		}
		first = false
	}
	for _, p := range phases {
		add(p.Start, phaseEnd(p))
	}
	if cpu != nil && len(cpu.Samples) > 0 {
		s0 := cpu.Samples[0]
		last := cpu.Samples[len(cpu.Samples)-1]
		add(cpu.Summary.Start.Add(seconds(s0.At-s0.Seconds)), cpu.Summary.Start.Add(seconds(last.At)))
	}
	return start, end
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// writeCPUStrip draws the samples as two stacked step areas, busy below
// iowait, between y=top (100 %) and y=top+h (0 %). Samples are merged
// until there are at most half as many as pixels: a 2-hour run has 7200,
// more than the strip can show and a needlessly large file.
func writeCPUStrip(b *strings.Builder, cpu *CPU, axisStart time.Time, left, scale float64, top, h, width int) {
	samples := cpu.Samples
	if n := (len(samples) + width/2 - 1) / (width / 2); n > 1 {
		samples = mergeSamples(samples, n)
	}
	base := float64(top + h)
	offset := cpu.Summary.Start.Sub(axisStart).Seconds()
	xOf := func(at float64) float64 { return left + (offset+at)*scale }
	area := func(frac func(CPUSample) float64) string {
		var d strings.Builder
		x0 := xOf(samples[0].At - samples[0].Seconds)
		fmt.Fprintf(&d, "M%.1f %.1f", x0, base)
		for _, s := range samples {
			y := base - frac(s)*float64(h)
			fmt.Fprintf(&d, " L%.1f %.1f L%.1f %.1f", xOf(s.At-s.Seconds), y, xOf(s.At), y)
		}
		fmt.Fprintf(&d, " L%.1f %.1f Z", xOf(samples[len(samples)-1].At), base)
		return d.String()
	}
	s := cpu.Summary
	fmt.Fprintf(b, `<g class="cpu"><text x="4" y="%d">CPU, %d cores: %.0f%% busy on average</text>`, top+14, s.Cores, 100*s.BusyAvg)
	fmt.Fprintf(b, `<text x="4" y="%d" fill="#888">%.0f CPU-s (user %.0f, system %.0f)</text>`, top+28, s.BusySeconds, s.UserSeconds, s.SystemSeconds)
	for _, pct := range []int{0, 50, 100} {
		y := base - float64(pct)/100*float64(h)
		fmt.Fprintf(b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#bbb" stroke-dasharray="2,2"/><text x="%.0f" y="%.1f" fill="#888" text-anchor="end">%d%%</text>`,
			left, y, left+float64(width), y, left-4, y+4, pct)
	}
	fmt.Fprintf(b, `<path d="%s" fill="#e0a040" opacity="0.8"><title>iowait</title></path>`, area(func(s CPUSample) float64 { return math.Min(s.Busy+s.IOWait, 1) }))
	fmt.Fprintf(b, `<path d="%s" fill="#4a7fd0" opacity="0.8"><title>busy</title></path>`, area(func(s CPUSample) float64 { return s.Busy }))
	b.WriteString("</g>\n")
}

// niceStep rounds a tick interval up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}
