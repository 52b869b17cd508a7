package main

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"

	"wsroom.dev/bench/internal/loadgen"
)

// Chart geometry, in SVG user units.
const (
	panelW   = 300
	panelH   = 250
	panelGap = 16
	chartTop = 78 // title and legend
	chartPad = 16
	maxCols  = 4
	clipAt   = 4.0 // bars above this many × wsroom are drawn broken
)

var implColors = map[string]string{
	"wsroom":  "#2563eb",
	"coder":   "#f59e0b",
	"gorilla": "#10b981",
	"melody":  "#ef4444",
	"gws":     "#8b5cf6",
	"bare":    "#6b7280",
}

var spareColors = []string{"#0891b2", "#db2777", "#65a30d", "#a16207"}

func colorOf(impl string, impls []string) string {
	if c, ok := implColors[impl]; ok {
		return c
	}
	n := 0
	for _, i := range impls {
		if i == impl {
			break
		}
		if _, ok := implColors[i]; !ok {
			n++
		}
	}
	return spareColors[n%len(spareColors)]
}

// chart draws one panel per scenario: each server's headline metric
// relative to wsroom's (wsroom = 1), with the raw value over each bar.
func (rep *report) chart(w io.Writer, ss []loadgen.Scenario, implsFor func(loadgen.Scenario) []string) {
	cols := min(maxCols, max(len(ss), 1))
	rowsN := (len(ss) + cols - 1) / cols
	width := max(chartPad*2+cols*panelW+(cols-1)*panelGap, 960)
	height := chartTop + rowsN*panelH + (rowsN-1)*panelGap + 52
	esc := html.EscapeString

	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif">`+"\n", width, height, width, height)
	fmt.Fprintf(w, `<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">`+
		`<rect width="2.5" height="6" fill="#ffffff" fill-opacity="0.7"/></pattern></defs>`+"\n")
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	title := "wsroom and its peers: each scenario's headline metric, relative to wsroom (= 1)"
	if rep.Quick {
		title += " — quick run"
	}
	fmt.Fprintf(w, `<text x="%d" y="28" font-size="17" font-weight="bold" fill="#111827">%s</text>`+"\n", chartPad, esc(title))
	sub := fmt.Sprintf("%s, %d cores · %s · %s", rep.Machine.CPU, rep.Machine.Cores, rep.Machine.Go, rep.Started)
	fmt.Fprintf(w, `<text x="%d" y="46" font-size="11" fill="#6b7280">%s</text>`+"\n", chartPad, esc(sub))

	// Legend: every impl that appears.
	var all []string
	for _, s := range ss {
		for _, impl := range implsFor(s) {
			if !contains(all, impl) {
				all = append(all, impl)
			}
		}
	}
	x := chartPad
	for _, impl := range all {
		fmt.Fprintf(w, `<rect x="%d" y="56" width="12" height="12" rx="2" fill="%s"/>`, x, colorOf(impl, all))
		fmt.Fprintf(w, `<text x="%d" y="66" font-size="12" fill="#111827">%s</text>`+"\n", x+16, esc(impl))
		x += 24 + 8*len(impl)
	}

	for i, s := range ss {
		px := chartPad + (i%cols)*(panelW+panelGap)
		py := chartTop + (i/cols)*(panelH+panelGap)
		impls := implsFor(s)
		rep.panel(w, px, py, s, impls, rep.pick(s, impls), all)
	}
	for i, line := range []string{
		"Bars: each server's value ÷ wsroom's (the dashed line at 1), the raw value above; bars past 4× are broken.",
		"Hatched, with ! : the run had problems (loss, dropped members, timeouts), so it is not like-for-like. ✕ : no figure (failed or incomplete). Details in RESULTS.md.",
	} {
		fmt.Fprintf(w, `<text x="%d" y="%d" font-size="11" fill="#6b7280">%s</text>`+"\n", chartPad, height-30+16*i, esc(line))
	}
	fmt.Fprintln(w, "</svg>")
}

func (rep *report) panel(w io.Writer, px, py int, s loadgen.Scenario, impls []string, picked map[string]loadgen.Result, all []string) {
	esc := html.EscapeString
	col, _ := s.Column(s.Headline)
	fmt.Fprintf(w, `<g transform="translate(%d,%d)">`+"\n", px, py)
	fmt.Fprintf(w, `<rect x="0.5" y="0.5" width="%d" height="%d" rx="6" fill="#f9fafb" stroke="#e5e7eb"/>`+"\n", panelW-1, panelH-1)
	fmt.Fprintf(w, `<text x="12" y="22" font-size="14" font-weight="bold" fill="#111827">%s</text>`+"\n", esc(s.Name))
	better := "higher is better"
	if col.Better < 0 {
		better = "lower is better"
	}
	fmt.Fprintf(w, `<text x="12" y="39" font-size="11" fill="#4b5563">%s (%s)</text>`+"\n", esc(col.Header), better)

	const top, bottom, left, right = 74, panelH - 34, 34, panelW - 10
	base, ok := value(picked["wsroom"], s.Headline)
	if !ok || base == 0 {
		fmt.Fprintf(w, `<text x="%d" y="%d" font-size="12" fill="#b91c1c" text-anchor="middle">no wsroom figure: nothing to compare</text>`+"\n", panelW/2, (top+bottom)/2)
		fmt.Fprintln(w, "</g>")
		return
	}
	ymax := 1.0
	for _, impl := range impls {
		if v, ok := value(picked[impl], s.Headline); ok {
			ymax = max(ymax, math.Min(v/base, clipAt))
		}
	}
	ymax = niceCeil(ymax * 1.12)
	y := func(v float64) float64 { return bottom - (bottom-top)*math.Min(v, ymax)/ymax }

	// Axis: gridlines at nice steps.
	step := niceStep(ymax)
	for g := 0.0; g <= ymax+1e-9; g += step {
		fmt.Fprintf(w, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e5e7eb"/>`, left, right, y(g), y(g))
		fmt.Fprintf(w, `<text x="%d" y="%.1f" font-size="10" fill="#6b7280" text-anchor="end">%s</text>`+"\n", left-4, y(g)+3, trimFloat(g)+"×")
	}
	slot := float64(right-left) / float64(len(impls))
	barW := math.Min(slot*0.62, 34)
	var labels strings.Builder // drawn last, over the bars and the line
	const halo = `stroke="#f9fafb" stroke-width="3" paint-order="stroke"`
	for i, impl := range impls {
		cx := float64(left) + slot*(float64(i)+0.5)
		fmt.Fprintf(w, `<text x="%.1f" y="%d" font-size="11" fill="#111827" text-anchor="middle">%s</text>`+"\n", cx, bottom+15, esc(impl))
		r, ran := picked[impl]
		v, ok := value(r, s.Headline)
		if !ok {
			label := "not run"
			if ran {
				label = "✕ !" // failed, or no figure (incomplete)
			}
			fmt.Fprintf(&labels, `<text x="%.1f" y="%d" font-size="11" font-weight="bold" fill="#b91c1c" text-anchor="middle" %s>%s</text>`+"\n", cx, bottom-6, halo, label)
			continue
		}
		norm := v / base
		top := y(norm)
		fill := colorOf(impl, all)
		if len(r.Problems) > 0 {
			// Not like-for-like: faded and hatched.
			fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" fill-opacity="0.35"/>`+"\n",
				cx-barW/2, top, barW, float64(bottom)-top, fill)
			fill = "url(#hatch)"
		}
		fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s (%.2f× wsroom)</title></rect>`+"\n",
			cx-barW/2, top, barW, float64(bottom)-top, fill, esc(impl), esc(format(col.Format, v)), norm)
		if norm > ymax {
			// A break across the clipped bar.
			fmt.Fprintf(w, `<path d="M%.1f %.1f l%.1f -6 M%.1f %.1f l%.1f -6" stroke="#f9fafb" stroke-width="3"/>`+"\n",
				cx-barW/2-1, top+16, barW+2, cx-barW/2-1, top+22, barW+2)
		}
		mark := ""
		if len(r.Problems) > 0 {
			mark = " !"
		}
		fmt.Fprintf(&labels, `<text x="%.1f" y="%.1f" font-size="10.5" font-weight="bold" fill="#111827" text-anchor="middle" %s>%s<tspan fill="#b91c1c">%s</tspan></text>`+"\n",
			cx, top-15, halo, trimFloat2(norm)+"×", mark)
		fmt.Fprintf(&labels, `<text x="%.1f" y="%.1f" font-size="9" fill="#4b5563" text-anchor="middle" %s>%s</text>`+"\n",
			cx, top-4, halo, esc(compact(format(col.Format, v))))
	}
	fmt.Fprintf(w, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#111827" stroke-width="1" stroke-dasharray="4 3"/>`+"\n", left, right, y(1), y(1))
	fmt.Fprintf(w, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#9ca3af"/>`+"\n", left, right, bottom, bottom)
	io.WriteString(w, labels.String())
	fmt.Fprintln(w, "</g>")
}

// compact drops the space before a unit, to fit under narrow bars.
func compact(s string) string { return strings.Replace(s, " ", "", 1) }

func niceCeil(v float64) float64 {
	s := niceStep(v)
	return math.Ceil(v/s) * s
}

// niceStep returns a gridline step giving 3 to 6 lines up to v.
func niceStep(v float64) float64 {
	for _, s := range []float64{0.25, 0.5, 1, 2, 5, 10, 20, 50} {
		if v/s <= 5 {
			return s
		}
	}
	return 100
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

func trimFloat2(v float64) string {
	if v >= 10 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
