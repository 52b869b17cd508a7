package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"wsroom.dev/bench/internal/loadgen"
)

// report is results.json.
type report struct {
	Machine  machine           `json:"machine"`
	Command  string            `json:"command"`
	Core     string            `json:"core,omitempty"` // the wsroom built: commit, changes
	Quick    bool              `json:"quick"`
	Repeat   int               `json:"repeat"`
	Started  string            `json:"started"`
	Seconds  float64           `json:"seconds"`
	Impls    []string          `json:"impls"`
	Settings []scenarioSetting `json:"scenarios"`
	Results  []loadgen.Result  `json:"results"`
}

// scenarioSetting describes a scenario of results.json and the run that
// produced its figures: that of the file, or an earlier one when the
// scenario was kept from it (see merge).
type scenarioSetting struct {
	Name     string `json:"name"`
	About    string `json:"about"`
	Headline string `json:"headline"`
	Command  string `json:"command,omitempty"`
	Started  string `json:"started,omitempty"`
	Repeat   int    `json:"repeat,omitempty"`
	Core     string `json:"core,omitempty"`
}

// scenarioInfo returns the settings of the scenarios run by rep.
func (rep *report) scenarioInfo(ss []loadgen.Scenario) []scenarioSetting {
	var out []scenarioSetting
	for _, s := range ss {
		out = append(out, scenarioSetting{Name: s.Name, About: s.About, Headline: s.Headline, Command: rep.Command, Started: rep.Started, Repeat: rep.Repeat, Core: rep.Core})
	}
	return out
}

// setting returns the setting of scenario name.
func (rep *report) setting(name string) (scenarioSetting, bool) {
	for _, s := range rep.Settings {
		if s.Name == name {
			return s, true
		}
	}
	return scenarioSetting{}, false
}

// pick returns, per impl, the run of s shown in the tables: the median by
// the headline metric when there are several (failed runs sort last).
func (rep *report) pick(s loadgen.Scenario, impls []string) map[string]loadgen.Result {
	col, _ := s.Column(s.Headline)
	out := make(map[string]loadgen.Result)
	for _, impl := range impls {
		var runs []loadgen.Result
		for _, r := range rep.Results {
			if r.Scenario == s.Name && r.Impl == impl {
				runs = append(runs, r)
			}
		}
		if len(runs) == 0 {
			continue
		}
		slices.SortStableFunc(runs, func(a, b loadgen.Result) int {
			va, oka := value(a, s.Headline)
			vb, okb := value(b, s.Headline)
			switch {
			case !oka || !okb:
				return boolCmp(okb, oka)
			case col.Better < 0:
				return cmpFloat(va, vb)
			default:
				return cmpFloat(vb, va)
			}
		})
		out[impl] = runs[(len(runs)-1)/2]
	}
	return out
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// value returns a metric of a run, if it was measured.
func value(r loadgen.Result, key string) (float64, bool) {
	v, ok := r.Metrics[key]
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

// ratio returns wsroom's value over impl's for key, or "—".
func ratio(picked map[string]loadgen.Result, impl, key string) string {
	w, ok1 := value(picked["wsroom"], key)
	v, ok2 := value(picked[impl], key)
	if !ok1 || !ok2 || v == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", w/v)
}

// rows returns a scenario's table: a header and one row per impl, plus the
// notes (problems) to print under it.
func rows(s loadgen.Scenario, impls []string, picked map[string]loadgen.Result) (header []string, body [][]string, notes []string) {
	if len(s.Variants) > 0 {
		return variantRows(s, impls, picked)
	}
	header = []string{"impl"}
	for _, c := range s.Columns {
		header = append(header, c.Header)
		if c.Ratio {
			header = append(header, "wsroom÷ ("+c.Header+")")
		}
	}
	header = append(header, "status")
	for _, impl := range impls {
		r, ok := picked[impl]
		row := []string{impl}
		for _, c := range s.Columns {
			cell := "—"
			if v, ok := value(r, c.Key); ok {
				cell = format(c.Format, v)
			}
			row = append(row, cell)
			if c.Ratio {
				cell := ratio(picked, impl, c.Key)
				if cell != "—" && len(r.Problems) > 0 {
					cell += " !"
				}
				row = append(row, cell)
			}
		}
		switch {
		case !ok:
			row = append(row, "not run")
		case r.Skipped != "":
			row = append(row, "skipped")
			notes = append(notes, fmt.Sprintf("%s: skipped: %s", impl, r.Skipped))
		case r.Err != "":
			row = append(row, "FAILED")
			notes = append(notes, fmt.Sprintf("%s: failed: %s", impl, r.Err))
		case len(r.Problems) > 0:
			row = append(row, fmt.Sprintf("%d problem(s)", len(r.Problems)))
			for _, p := range r.Problems {
				notes = append(notes, fmt.Sprintf("%s: %s", impl, p))
			}
		default:
			row = append(row, "ok")
		}
		body = append(body, row)
	}
	return header, body, notes
}

// variantRows returns the table of a scenario with variants: a row per
// impl and variant, the variant's metrics in the columns, and each
// variant's problems (those that name no variant on every row) counted in
// its status.
func variantRows(s loadgen.Scenario, impls []string, picked map[string]loadgen.Result) (header []string, body [][]string, notes []string) {
	header = []string{"impl"}
	for _, c := range s.Columns {
		header = append(header, c.Header)
	}
	header = append(header, "status")
	ofVariant := func(p string) (loadgen.Variant, bool) {
		for _, v := range s.Variants {
			if strings.HasPrefix(p, v.Label+": ") {
				return v, true
			}
		}
		return loadgen.Variant{}, false
	}
	for _, impl := range impls {
		r, ok := picked[impl]
		for _, v := range s.Variants {
			row := []string{impl + ": " + v.Label}
			for _, c := range s.Columns {
				cell := "—"
				if x, ok := value(r, v.Key+"_"+c.Key); ok {
					cell = format(c.Format, x)
				}
				row = append(row, cell)
			}
			n := 0
			for _, p := range r.Problems {
				if pv, ok := ofVariant(p); !ok || pv == v {
					n++
				}
			}
			switch {
			case !ok:
				row = append(row, "not run")
			case r.Skipped != "":
				row = append(row, "skipped")
			case r.Err != "":
				row = append(row, "FAILED")
			case n > 0:
				row = append(row, fmt.Sprintf("%d problem(s)", n))
			default:
				row = append(row, "ok")
			}
			body = append(body, row)
		}
		switch {
		case !ok:
		case r.Skipped != "":
			notes = append(notes, fmt.Sprintf("%s: skipped: %s", impl, r.Skipped))
		case r.Err != "":
			notes = append(notes, fmt.Sprintf("%s: failed: %s", impl, r.Err))
		}
		for _, p := range r.Problems {
			notes = append(notes, fmt.Sprintf("%s: %s", impl, p))
		}
	}
	return header, body, notes
}

// writeTable prints a scenario's table as aligned text.
func writeTable(w io.Writer, s loadgen.Scenario, impls []string, picked map[string]loadgen.Result) {
	header, body, notes := rows(s, impls, picked)
	fmt.Fprintf(w, "== %s: %s\n", s.Name, s.About)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, row := range append([][]string{header}, body...) {
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
	if len(notes) > 0 {
		fmt.Fprintf(w, "  (%s)\n", problemLegend)
	}
	for _, n := range notes {
		fmt.Fprintf(w, "  ! %s\n", n)
	}
}

// problemLegend explains the ! of a ratio.
const problemLegend = "a ratio marked ! compares with a run that had problems, listed here: its figures are not like-for-like"

// markdown writes RESULTS.md.
func (rep *report) markdown(w io.Writer, ss []loadgen.Scenario, implsFor func(loadgen.Scenario) []string) {
	fmt.Fprintf(w, "# wsroom benchmark results\n\n")
	fmt.Fprintf(w, "Generated by `%s` on %s (%s in all).\n\n", rep.Command, rep.Started, (time.Duration(rep.Seconds) * time.Second).String())
	m := rep.Machine
	fmt.Fprintf(w, "| machine | |\n| --- | --- |\n")
	fmt.Fprintf(w, "| CPU | %s, %d cores |\n| memory | %s |\n| kernel | %s (%s) |\n| Go | %s |\n| /proc/loadavg at start | %s |\n", m.CPU, m.Cores, m.Memory, m.Kernel, m.OS, m.Go, m.LoadAvg)
	if rep.Core != "" {
		fmt.Fprintf(w, "| wsroom built from | %s |\n", rep.Core)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Every server ran as a fresh process per scenario, on 127.0.0.1, sharing the machine with the load generator. ")
	fmt.Fprintf(w, "The `wsroom÷` columns divide wsroom's figure by the row's: above 1 means wsroom is higher (better for rates, worse for costs and latencies).")
	if rep.Repeat > 1 {
		fmt.Fprintf(w, " Each figure is the median of %d runs by the scenario's headline metric; results.json has every run.", rep.Repeat)
	}
	if rep.Quick {
		fmt.Fprintf(w, "\n\n**Quick run** (`-quick`): small N and short phases, for a smoke test; not figures to quote.")
	}
	merged := false
	for _, s := range ss {
		if set, ok := rep.setting(s.Name); ok && set.Started != "" && set.Started != rep.Started {
			merged = true
		}
	}
	if merged {
		fmt.Fprintf(w, "\n\nScenarios not run by this command keep the figures of the run that last did, named under each.")
	}
	fmt.Fprintf(w, "\n\n![chart](chart.svg)\n")
	for _, s := range ss {
		impls := implsFor(s)
		picked := rep.pick(s, impls)
		header, body, notes := rows(s, impls, picked)
		fmt.Fprintf(w, "\n## %s\n\n%s.\n\n", s.Name, s.About)
		if set, ok := rep.setting(s.Name); ok && merged && set.Command != "" {
			fmt.Fprintf(w, "Run by `%s` on %s", set.Command, set.Started)
			if set.Repeat > 1 {
				fmt.Fprintf(w, " (median of %d)", set.Repeat)
			}
			if set.Core != "" {
				fmt.Fprintf(w, ", wsroom %s", set.Core)
			}
			fmt.Fprintf(w, ".\n\n")
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(header, " | "))
		align := []string{"---"}
		for range header[1:] {
			align = append(align, "---:")
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(align, " | "))
		for _, row := range body {
			fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
		}
		rep.spread(w, s, impls, picked)
		if len(notes) > 0 {
			fmt.Fprintf(w, "\nProblems (%s):\n\n", problemLegend)
			for _, n := range notes {
				fmt.Fprintf(w, "- %s\n", strings.ReplaceAll(n, "|", "\\|"))
			}
		}
	}
}

// spread writes, when a scenario ran more than once per server, the range
// of its compared metrics over the runs: min – max, and the largest
// distance of a run from the median shown, in percent of it.
func (rep *report) spread(w io.Writer, s loadgen.Scenario, impls []string, picked map[string]loadgen.Result) {
	// The rows: an impl's, or with variants an impl's per variant, whose
	// metrics have the variant's prefix.
	type line struct{ label, prefix string }
	lineOf := func(impl string) []line {
		if len(s.Variants) == 0 {
			return []line{{impl, ""}}
		}
		var out []line
		for _, v := range s.Variants {
			out = append(out, line{impl + ": " + v.Label, v.Key + "_"})
		}
		return out
	}
	var cols []loadgen.Column
	for _, c := range s.Columns {
		headline := c.Key == s.Headline
		for _, v := range s.Variants {
			headline = headline || v.Key+"_"+c.Key == s.Headline
		}
		if c.Ratio || headline {
			cols = append(cols, c)
		}
	}
	var lines []string
	for _, impl := range impls {
		var runs []loadgen.Result
		for _, r := range rep.Results {
			if r.Scenario == s.Name && r.Impl == impl {
				runs = append(runs, r)
			}
		}
		if len(runs) < 2 {
			continue
		}
		for _, l := range lineOf(impl) {
			var cells []string
			for _, c := range cols {
				key := l.prefix + c.Key
				med, ok := value(picked[impl], key)
				if !ok {
					cells = append(cells, "—")
					continue
				}
				lo, hi, n := math.Inf(1), math.Inf(-1), 0
				for _, r := range runs {
					if v, ok := value(r, key); ok {
						lo, hi, n = math.Min(lo, v), math.Max(hi, v), n+1
					}
				}
				cell := fmt.Sprintf("%s – %s", format(c.Format, lo), format(c.Format, hi))
				if med != 0 {
					cell += fmt.Sprintf(" (±%.0f%%)", 100*math.Max(hi-med, med-lo)/math.Abs(med))
				}
				if n < len(runs) {
					cell += fmt.Sprintf(", %d of %d runs", n, len(runs))
				}
				cells = append(cells, cell)
			}
			lines = append(lines, fmt.Sprintf("| %s | %d | %s |", l.label, len(runs), strings.Join(cells, " | ")))
		}
	}
	if len(lines) == 0 {
		return
	}
	head := []string{"impl", "runs"}
	for _, c := range cols {
		head = append(head, c.Header+" (min – max)")
	}
	fmt.Fprintf(w, "\nRun-to-run spread:\n\n| %s |\n| --- |%s\n", strings.Join(head, " | "), strings.Repeat(" ---: |", len(head)-1))
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

// write writes results.json, RESULTS.md and chart.svg into dir.
func (rep *report) write(dir string, ss []loadgen.Scenario, implsFor func(loadgen.Scenario) []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("results.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("results.json: %w", err)
	}
	var md strings.Builder
	rep.markdown(&md, ss, implsFor)
	if err := os.WriteFile(filepath.Join(dir, "RESULTS.md"), []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("RESULTS.md: %w", err)
	}
	var svg strings.Builder
	rep.chart(&svg, ss, implsFor)
	if err := os.WriteFile(filepath.Join(dir, "chart.svg"), []byte(svg.String()), 0o644); err != nil {
		return fmt.Errorf("chart.svg: %w", err)
	}
	return nil
}

// summary is a one-line account of a run, for the progress log.
func summary(s loadgen.Scenario, r loadgen.Result) string {
	switch {
	case r.Skipped != "":
		return "skipped: " + r.Skipped
	case r.Err != "":
		return "FAILED: " + r.Err
	}
	prefixes := []string{""}
	for i, v := range s.Variants {
		if i == 0 {
			prefixes = nil
		}
		prefixes = append(prefixes, v.Key+"_")
	}
	var parts []string
	for _, p := range prefixes {
		var vparts []string
		for _, c := range s.Columns {
			if v, ok := value(r, p+c.Key); ok {
				vparts = append(vparts, c.Header+" "+format(c.Format, v))
			}
		}
		if p != "" && len(vparts) > 0 {
			vparts[0] = "[" + strings.TrimSuffix(p, "_") + "] " + vparts[0]
		}
		parts = append(parts, vparts...)
	}
	line := strings.Join(parts, ", ")
	if len(r.Problems) > 0 {
		line += fmt.Sprintf(" [%d problem(s): %s]", len(r.Problems), strings.Join(r.Problems, "; "))
	}
	if idle, ok := value(r, "machine_idle_before"); ok {
		return line + fmt.Sprintf(" (%.1fs; machine %.0f%% idle before)", r.Seconds, 100*idle)
	}
	return line + fmt.Sprintf(" (%.1fs)", r.Seconds)
}

// format prints v in the column's unit.
func format(f loadgen.Format, v float64) string {
	switch f {
	case loadgen.Rate:
		switch {
		case v >= 1e6:
			return fmt.Sprintf("%.2fM/s", v/1e6)
		case v >= 1e3:
			return fmt.Sprintf("%.1fk/s", v/1e3)
		}
		return fmt.Sprintf("%.0f/s", v)
	case loadgen.Micros:
		switch {
		case v >= 1e6:
			return fmt.Sprintf("%.2f s", v/1e6)
		case v >= 1e3:
			return fmt.Sprintf("%.2f ms", v/1e3)
		case v >= 100:
			return fmt.Sprintf("%.0f µs", v)
		}
		return fmt.Sprintf("%.1f µs", v)
	case loadgen.Millis:
		switch {
		case v >= 1e3:
			return fmt.Sprintf("%.2f s", v/1e3)
		case v >= 100:
			return fmt.Sprintf("%.0f ms", v)
		case v >= 10:
			return fmt.Sprintf("%.1f ms", v)
		}
		return fmt.Sprintf("%.2f ms", v)
	case loadgen.Seconds:
		if v < 1 {
			return fmt.Sprintf("%.0f ms", v*1e3)
		}
		return fmt.Sprintf("%.2f s", v)
	case loadgen.Bytes:
		switch {
		case math.Abs(v) >= 1<<20:
			return fmt.Sprintf("%.2f MiB", v/(1<<20))
		case math.Abs(v) >= 1<<10:
			return fmt.Sprintf("%.1f KiB", v/(1<<10))
		}
		return fmt.Sprintf("%.0f B", v)
	case loadgen.Fraction:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.0f", v)
}
