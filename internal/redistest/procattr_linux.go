//go:build linux

package redistest

import "syscall"

// sysProcAttr has the kernel kill the server when the test process dies (a panic, a
// timeout), so that no redis-server outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
