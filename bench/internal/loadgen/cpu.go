package loadgen

import (
	"syscall"
	"time"
)

// selfCPU returns the CPU time this process (the load generator) has used,
// to report next to the server's: on a shared machine the client's share
// is part of the picture.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
