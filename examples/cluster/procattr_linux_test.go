package cluster

import "syscall"

// procAttr puts a child in a process group of its own, which the tests
// signal as a whole, and kills it if the test binary dies (a -timeout
// panic runs no cleanup).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
