package traffic

import (
	"fmt"
	"html"
	"math"
	"os"
	"strings"
	"time"
)

// Second is one second of the time line: requests started in it, and how
// many of them failed.
type Second struct{ Requests, Failed int }

// Seconds buckets the record's requests by the second they started in.
func (r Record) Seconds() []Second {
	n := int(math.Ceil(r.End.Sub(r.Start).Seconds()))
	out := make([]Second, max(n, 1))
	for _, s := range r.Samples {
		i := min(max(int(s.At.Sub(r.Start)/time.Second), 0), len(out)-1)
		out[i].Requests++
		if !s.OK() {
			out[i].Failed++
		}
	}
	return out
}

// WriteSVG draws the time line: requests per second (answered in green,
// failed in red) with each phase's start marked and named, so an upgrade's
// disruption is seen where it happened.
func (r Record) WriteSVG(path, title string) error {
	secs := r.Seconds()
	peak := 1
	for _, s := range secs {
		peak = max(peak, s.Requests)
	}
	const left, top, height, labelH = 50, 40, 200, 14
	barW := max(1.0, math.Min(6, 1100/float64(len(secs))))
	width := left + int(barW*float64(len(secs))) + 20
	phases := r.Phases()
	total := top + height + 30 + labelH*len(phases) + 10
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="monospace" font-size="11">`+"\n", width, total)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%d" y="20" font-size="13">%s</text>`+"\n", left, html.EscapeString(title))
	y := func(v int) float64 { return top + height - float64(v)/float64(peak)*height }
	for i, s := range secs {
		x := left + barW*float64(i)
		ok := s.Requests - s.Failed
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#4caf50"/>`, x, y(ok), barW, top+height-y(ok))
		if s.Failed > 0 {
			// Failures stand on the answered part, and are at least a few
			// pixels tall so a single failed request is seen.
			h := math.Max(3, top+height-y(s.Failed))
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#e53935"/>`, x, y(ok)-h, math.Max(barW, 2), h)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, top+height, width-20, top+height)
	fmt.Fprintf(&b, `<text x="5" y="%d">%d/s</text><text x="5" y="%d">0</text>`+"\n", top+8, peak, top+height)
	for i, p := range phases {
		x := left + barW*p.Start.Seconds()
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#1e88e5" stroke-dasharray="3,2"/>`, x, top, x, top+height+12)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#1e88e5">%d</text>`+"\n", x+2, top+height+12, i+1)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%d %s — %ds–%ds: %d requests, %d failed, longest gap %s, p99 %s (after the action %s)</text>`+"\n",
			left, top+height+30+labelH*i, i+1, html.EscapeString(p.Name), int(p.Start.Seconds()), int(p.End.Seconds()),
			p.Requests, p.Failed, p.LongestGap.Round(time.Millisecond), p.P99.Round(time.Millisecond), p.SteadyP99.Round(time.Millisecond))
	}
	b.WriteString("</svg>\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
