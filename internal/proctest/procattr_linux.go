//go:build linux

package proctest

import "syscall"

// sysProcAttr puts the process in a group of its own, which Stop and Kill signal whole,
// and has the kernel kill it when the test process dies (a panic, a timeout), so that
// nothing outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
