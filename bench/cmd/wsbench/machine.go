package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
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
