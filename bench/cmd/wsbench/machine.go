package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"wsroom.dev/bench/internal/loadgen"
)

// machine describes where the suite ran.
type machine struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	Memory string `json:"memory"`
	Go     string `json:"go"`
	Kernel string `json:"kernel"`
	OS     string `json:"os"`
	// LoadAvg is /proc/loadavg when the suite started: other work on the
	// machine skews every figure.
	LoadAvg string `json:"loadavg_at_start"`
}

func machineInfo() machine {
	m := machine{
		CPU:    "unknown",
		Cores:  runtime.NumCPU(),
		Go:     runtime.Version(),
		Kernel: "unknown",
		OS:     runtime.GOOS + "/" + runtime.GOARCH,
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
					m.Memory = fmt.Sprintf("%.1f GiB", kb/(1<<20))
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	// The servers are built with the go command on PATH; say which.
	if out, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		if v := string(bytes.TrimSpace(out)); v != "" {
			m.Go = v
		}
	}
	return m
}

// idleFraction returns the share of the machine's CPU time that was idle
// over d, from /proc/stat: what other programs leave to the benchmark.
func idleFraction(ctx context.Context, d time.Duration) (float64, error) {
	busy0, idle0, err := loadgen.MachineCPU()
	if err != nil {
		return 0, err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-t.C:
	}
	busy1, idle1, err := loadgen.MachineCPU()
	if err != nil {
		return 0, err
	}
	total := (busy1 - busy0) + (idle1 - idle0)
	if total == 0 {
		return 0, errors.New("idle: no CPU time passed")
	}
	return float64(idle1-idle0) / float64(total), nil
}

// coreVersion names the wsroom the servers were built from: the commit
// of the repository above the bench module and, if any, the files of the
// chat server changed since (read with --no-optional-locks, so that the
// repository is not written to).
func coreVersion() string {
	mod, err := moduleDir()
	if err != nil {
		return "unknown"
	}
	repo := filepath.Dir(mod)
	git := func(args ...string) (string, error) {
		out, err := exec.Command("git", append([]string{"--no-optional-locks", "-C", repo}, args...)...).Output()
		return strings.TrimRight(string(out), "\n"), err
	}
	head, err := git("rev-parse", "--short", "HEAD")
	if err != nil {
		return "unknown (not a git checkout)"
	}
	changed, err := git("status", "--porcelain", "--", "wsroom", "examples/chat", "internal/debugmem", "go.mod", "go.sum")
	if err != nil {
		return head
	}
	var files []string
	for _, line := range strings.Split(changed, "\n") {
		if len(line) > 3 && !strings.HasSuffix(line, "_test.go") {
			files = append(files, line[3:])
		}
	}
	if len(files) == 0 {
		return head
	}
	return fmt.Sprintf("%s with uncommitted changes to %s", head, strings.Join(files, ", "))
}
