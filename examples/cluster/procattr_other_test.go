//go:build !linux

package cluster

import "syscall"

// procAttr puts a child in a process group of its own, which the tests
// signal as a whole.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
