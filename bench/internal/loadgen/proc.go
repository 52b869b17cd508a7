package loadgen

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procRSS returns the resident set size of process pid from
// /proc/PID/status (VmRSS), as it is: no garbage collection first, unlike
// /debug/mem.
func procRSS(pid int) (uint64, error) {
	if pid <= 0 {
		return 0, errors.New("rss: no process")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("rss: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("rss: malformed %q", line)
			}
			kb, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("rss: %w", err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("rss: no VmRSS in /proc/PID/status")
}

// fileLimit returns the soft and hard RLIMIT_NOFILE of process pid, from
// /proc/PID/limits ("Max open files").
func fileLimit(pid int) (soft, hard uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("file limit: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) < 2 {
				break
			}
			return parseLimit(f[0]), parseLimit(f[1]), nil
		}
	}
	return 0, 0, fmt.Errorf("file limit: no Max open files in /proc/%d/limits", pid)
}

func parseLimit(s string) uint64 {
	if s == "unlimited" {
		return 1 << 62
	}
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}

// readUints reads the whitespace-separated numbers of a /proc/sys file.
func readUints(path string) ([]uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, f := range strings.Fields(string(b)) {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// fdHeadroom is what a process needs besides its connections: the
// listener, epoll, stdio, the /debug/mem and /proc reads.
const fdHeadroom = 64

// portHeadroom is the ephemeral ports of a source address kept free for
// others (the HTTP requests of the runner, other programs).
const portHeadroom = 512

// limits are what decide whether the machine can hold a number of
// connections on loopback, both sides in processes of their own.
type limits struct {
	clientFiles uint64 // this process's soft RLIMIT_NOFILE
	serverFiles uint64 // the server's soft RLIMIT_NOFILE; 0: unknown
	serverHard  uint64
	systemFiles uint64 // fs.file-max
	ports       uint64 // ephemeral ports per source address
}

// readLimits reads the limits of this process and of the server pid (0:
// unknown).
func readLimits(pid int) (limits, error) {
	var l limits
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return l, fmt.Errorf("getrlimit: %w", err)
	}
	l.clientFiles = rl.Cur
	if pid > 0 {
		soft, hard, err := fileLimit(pid)
		if err != nil {
			return l, err
		}
		l.serverFiles, l.serverHard = soft, hard
	}
	if v, err := readUints("/proc/sys/fs/file-max"); err == nil && len(v) == 1 {
		l.systemFiles = v[0]
	}
	if v, err := readUints("/proc/sys/net/ipv4/ip_local_port_range"); err == nil && len(v) == 2 && v[1] >= v[0] {
		l.ports = v[1] - v[0] + 1
	}
	return l, nil
}

// check reports why the machine cannot hold conns connections from
// sources source addresses (0: one, the system's choice), or nil.
func (l limits) check(conns, sources int) error {
	var why []string
	need := uint64(conns) + fdHeadroom
	if l.clientFiles < need {
		why = append(why, fmt.Sprintf("the load generator may open %d files (RLIMIT_NOFILE), it needs %d", l.clientFiles, need))
	}
	if l.serverFiles != 0 && l.serverFiles < need {
		why = append(why, fmt.Sprintf("the server may open %d files (RLIMIT_NOFILE, hard limit %d), it needs %d", l.serverFiles, l.serverHard, need))
	}
	if l.systemFiles != 0 && l.systemFiles < 2*need {
		why = append(why, fmt.Sprintf("fs.file-max is %d, both sides need %d", l.systemFiles, 2*need))
	}
	if l.ports != 0 {
		per := uint64(conns) / uint64(max(sources, 1))
		if per+portHeadroom > l.ports {
			why = append(why, fmt.Sprintf("%d connections per source address, but net.ipv4.ip_local_port_range has %d ports", per, l.ports))
		}
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("this machine cannot hold %d connections (%d sockets, client and server sides): %s; raise the hard limit (as root: ulimit -Hn, systemd LimitNOFILE=, docker run --ulimit nofile=N:N) or run fewer connections",
		conns, 2*conns, strings.Join(why, "; "))
}

// MachineCPU returns the CPU time the whole machine has spent busy and
// idle (idle + iowait) so far, from the first line of /proc/stat, in
// clock ticks (USER_HZ).
func MachineCPU() (busy, idle uint64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("machine cpu: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("machine cpu: malformed /proc/stat: %q", line)
	}
	// user nice system idle iowait irq softirq steal [guest guest_nice];
	// guest time is counted in user already.
	for i, s := range f[1:min(len(f), 9)] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("machine cpu: %w", err)
		}
		if i == 3 || i == 4 {
			idle += v
		} else {
			busy += v
		}
	}
	return busy, idle, nil
}

// userHZ is the unit of /proc/stat.
const userHZ = 100

// machineSample is the machine's CPU at one moment, to tell how much of
// it other programs took over a phase.
type machineSample struct {
	busy, idle uint64
	ok         bool
}

func sampleMachine() machineSample {
	b, i, err := MachineCPU()
	return machineSample{busy: b, idle: i, ok: err == nil}
}

// otherCores sets, over the phase from s0 to s1 of length d, the cores
// the whole machine kept busy ("machine_cores") and those that neither
// the server (server) nor this process (client) used ("other_cores"):
// other programs' load, which skews the figures.
func (r *Result) otherCores(s0, s1 machineSample, d, server, client time.Duration) {
	if !s0.ok || !s1.ok || d <= 0 || s1.busy < s0.busy {
		return
	}
	busy := time.Duration(s1.busy-s0.busy) * time.Second / userHZ
	r.set("machine_cores", busy.Seconds()/d.Seconds())
	r.set("other_cores", max(0, (busy-server-client).Seconds()/d.Seconds()))
}
