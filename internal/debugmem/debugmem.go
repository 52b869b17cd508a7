// Package debugmem reports a process's memory after a full garbage
// collection, for benchmarks that compare the memory cost of connections
// across servers. Every server in the benchmark suite serves it at
// /debug/mem, so all are measured the same way.
package debugmem

import (
	"encoding/json"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// Report is what the handler returns, in bytes.
type Report struct {
	HeapInuse  uint64 `json:"heap_inuse"`
	StackInuse uint64 `json:"stack_inuse"`
	HeapObjs   uint64 `json:"heap_objects"`
	Sys        uint64 `json:"sys"`
	RSS        uint64 `json:"rss"`
	Goroutines int    `json:"goroutines"`
}

// Handler collects garbage twice, returns freed memory to the OS, and
// reports.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(Measure())
	})
}

// Measure collects garbage and reports.
func Measure() Report {
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return Report{
		HeapInuse:  m.HeapInuse,
		StackInuse: m.StackInuse,
		HeapObjs:   m.HeapObjects,
		Sys:        m.Sys,
		RSS:        rss(),
		Goroutines: runtime.NumGoroutine(),
	}
}

// rss reads the resident set size from /proc (0 where there is none).
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}
