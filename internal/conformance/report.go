package conformance

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Status is the verdict on one row.
type Status string

const (
	Pass Status = "pass"
	Fail Status = "FAIL"
	// Known is a row listed as a known failure of the core: it failed as
	// expected and was skipped.
	Known Status = "known"
	// Fixed is a row listed as a known failure that passed: it must leave
	// the list.
	Fixed Status = "FIXED"
)

// Result is the outcome of one row of the suite against one endpoint.
type Result struct {
	ID       string // Autobahn's case number, or the suite's own
	Endpoint string // "echo" or "chat"
	Desc     string
	Expected string // what Autobahn grades OK
	Got      string // what the server did
	Status   Status
}

// WriteTable writes results as an aligned table, ordered by endpoint and
// case number, followed by a count per status.
func WriteTable(w io.Writer, results []Result) error {
	rs := slices.Clone(results)
	slices.SortStableFunc(rs, func(a, b Result) int {
		return cmp.Or(cmp.Compare(a.Endpoint, b.Endpoint), compareIDs(a.ID, b.ID))
	})
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "id\tendpoint\tdescription\texpected\tgot\tresult")
	counts := map[Status]int{}
	for _, r := range rs {
		counts[r.Status]++
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Endpoint, cell(r.Desc, 70), cell(r.Expected, 40), cell(r.Got, 60), r.Status)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d rows: %d pass, %d FAIL, %d known failures, %d FIXED (remove from knownFailures)\n",
		len(rs), counts[Pass], counts[Fail], counts[Known], counts[Fixed])
	return err
}

// cell keeps a table cell on one line and at most n characters.
func cell(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// compareIDs orders case numbers such as "2.10" after "2.9": numeric
// parts as numbers, others as text.
func compareIDs(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range min(len(pa), len(pb)) {
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		if ea == nil && eb == nil {
			if c := cmp.Compare(na, nb); c != 0 {
				return c
			}
			continue
		}
		if c := cmp.Compare(pa[i], pb[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(pa), len(pb))
}
