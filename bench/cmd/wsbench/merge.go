package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"wsroom.dev/bench/internal/loadgen"
)

// merge adds to rep what the results.json already in dir holds of the
// scenarios rep did not run, so that running a few scenarios does not
// lose the figures of the others. Scenarios rep ran replace theirs
// whole, but for those skipped in every run (a backend was missing),
// which keep the file's figures if it has any. A file of a quick run is not merged into a full run's, nor the
// other way round. It returns the scenarios to report, in suite order,
// and what it kept, for the log.
func (rep *report) merge(dir string, ran []loadgen.Scenario, size loadgen.Size) ([]loadgen.Scenario, string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return ran, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("merge: %w", err)
	}
	var old report
	if err := json.Unmarshal(b, &old); err != nil {
		return nil, "", fmt.Errorf("merge %s: %w", filepath.Join(dir, "results.json"), err)
	}
	if old.Quick != rep.Quick {
		return ran, fmt.Sprintf("not merged with %s: quick %v there, %v here", filepath.Join(dir, "results.json"), old.Quick, rep.Quick), nil
	}
	out := slices.Clone(ran)
	var kept []string
	for _, set := range old.Settings {
		skipped := rep.skipped(set.Name)
		if slices.ContainsFunc(out, func(s loadgen.Scenario) bool { return s.Name == set.Name }) && !skipped {
			continue
		}
		s, _, ok := loadgen.ScenarioNamed(size, set.Name)
		if !ok {
			continue // no longer in the suite
		}
		if skipped {
			rep.Results = slices.DeleteFunc(rep.Results, func(r loadgen.Result) bool { return r.Scenario == set.Name })
			rep.Settings = slices.DeleteFunc(rep.Settings, func(s scenarioSetting) bool { return s.Name == set.Name })
			out = slices.DeleteFunc(out, func(s loadgen.Scenario) bool { return s.Name == set.Name })
		}
		s.About, s.Headline = set.About, set.Headline
		if set.Command == "" {
			set.Command, set.Started, set.Repeat = old.Command, old.Started, old.Repeat
		}
		rep.Settings = append(rep.Settings, set)
		for _, r := range old.Results {
			if r.Scenario == set.Name {
				rep.Results = append(rep.Results, r)
			}
		}
		out = append(out, s)
		kept = append(kept, set.Name)
	}
	order := suiteOrder(size)
	slices.SortStableFunc(out, func(a, b loadgen.Scenario) int { return order(a.Name) - order(b.Name) })
	slices.SortStableFunc(rep.Settings, func(a, b scenarioSetting) int { return order(a.Name) - order(b.Name) })
	if len(kept) == 0 {
		return out, "", nil
	}
	return out, fmt.Sprintf("kept the figures of %v from %s", kept, filepath.Join(dir, "results.json")), nil
}

// skipped reports whether every run of scenario name in rep was skipped.
func (rep *report) skipped(name string) bool {
	n := 0
	for _, r := range rep.Results {
		if r.Scenario != name {
			continue
		}
		if r.Skipped == "" {
			return false
		}
		n++
	}
	return n > 0
}

// suiteOrder returns the rank of a scenario name in the suite.
func suiteOrder(size loadgen.Size) func(name string) int {
	return func(name string) int {
		if _, i, ok := loadgen.ScenarioNamed(size, name); ok {
			return i
		}
		return 1 << 20
	}
}

// implsOf returns the servers with results for a scenario: first those of
// order, in its order, then the others in the order they appear.
func (rep *report) implsOf(order []string) func(s loadgen.Scenario) []string {
	return func(s loadgen.Scenario) []string {
		var have []string
		for _, r := range rep.Results {
			if r.Scenario == s.Name && !slices.Contains(have, r.Impl) {
				have = append(have, r.Impl)
			}
		}
		var out []string
		for _, impl := range order {
			if slices.Contains(have, impl) && !slices.Contains(out, impl) {
				out = append(out, impl)
			}
		}
		for _, impl := range have {
			if !slices.Contains(out, impl) {
				out = append(out, impl)
			}
		}
		return out
	}
}

// render rewrites RESULTS.md and chart.svg in dir from its results.json,
// running nothing: after a change to how tables and the chart are drawn.
func render(dir string, size loadgen.Size, order []string) error {
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("render %s: %w", filepath.Join(dir, "results.json"), err)
	}
	if rep.Quick {
		size = loadgen.Quick
	}
	var ss []loadgen.Scenario
	for _, set := range rep.Settings {
		s, _, ok := loadgen.ScenarioNamed(size, set.Name)
		if !ok {
			return fmt.Errorf("render: scenario %q is not in the suite", set.Name)
		}
		s.About, s.Headline = set.About, set.Headline
		ss = append(ss, s)
	}
	return rep.write(dir, ss, rep.implsOf(order))
}
