package report

import (
	"fmt"
	"html"
	"io"
	"math"
	"time"
)

// WriteGantt draws the phases as a Gantt chart (SVG): one bar per phase on
// a shared time axis, so a slow phase, and what ran beside it, is seen at a
// glance. Failed phases are red, cached ones grey.
func WriteGantt(w io.Writer, phases []Phase) error {
	const (
		rowH, labelW, chartW, top = 18, 420, 760, 30
	)
	if len(phases) == 0 {
		_, err := fmt.Fprint(w, `<svg xmlns="http://www.w3.org/2000/svg" width="400" height="40"><text x="10" y="25">no phases</text></svg>`+"\n")
		return err
	}
	start, end := phases[0].Start, phases[0].Start
	for _, p := range phases {
		if p.Start.Before(start) {
			start = p.Start
		}
		if e := p.Start.Add(time.Duration(p.Seconds * float64(time.Second))); e.After(end) {
			end = e
		}
	}
	total := math.Max(end.Sub(start).Seconds(), 1)
	scale := chartW / total
	height := top + rowH*len(phases) + 20
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="monospace" font-size="11">`+"\n", labelW+chartW+80, height)
	fmt.Fprintf(w, `<text x="4" y="16" font-size="13">phases: %.0fs wall, %d phases</text>`+"\n", total, len(phases))
	// A tick every 10% of the run.
	step := niceStep(total / 10)
	for t := 0.0; t <= total; t += step {
		x := labelW + t*scale
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/><text x="%.1f" y="%d" fill="#888">%.0fs</text>`+"\n", x, top-4, x, height-16, x+2, height-4, t)
	}
	for i, p := range phases {
		y := top + i*rowH
		x := labelW + p.Start.Sub(start).Seconds()*scale
		wd := math.Max(p.Seconds*scale, 1)
		color := "#4a7fd0"
		switch {
		case !p.OK:
			color = "#d04a4a"
		case p.Note == "cached":
			color = "#aaa"
		}
		label := p.Name
		if len(label) > 60 {
			label = label[:57] + "..."
		}
		fmt.Fprintf(w, `<text x="4" y="%d">%s</text>`, y+12, html.EscapeString(label))
		fmt.Fprintf(w, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s: %.1fs</title></rect>`, x, y+2, wd, rowH-5, color, html.EscapeString(p.Name), p.Seconds)
		fmt.Fprintf(w, `<text x="%.1f" y="%d" fill="#333">%.1fs</text>`+"\n", x+wd+3, y+12, p.Seconds)
	}
	_, err := fmt.Fprintln(w, "</svg>")
	return err
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
