// Package proctest runs the programs the tests stand up beside the code under test
// (redis-server, Traefik, the PHP and Node backends): on a free port of 127.0.0.1, their
// output kept for the failure message, stopped (their whole process group) when asked or
// when the test process dies.
package proctest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// FreeAddr returns 127.0.0.1:<port> for a TCP port that was free a moment ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Buffer collects a process's output: the process writes it while the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Process is a started program.
type Process struct {
	Cmd    *exec.Cmd
	Output *Buffer       // its standard output and error
	Exited chan struct{} // closed once it has exited and been waited for
}

// Start starts cmd in a process group of its own, its output to a Buffer and to also.
func Start(cmd *exec.Cmd, also ...io.Writer) (*Process, error) {
	p := &Process{Cmd: cmd, Output: &Buffer{}, Exited: make(chan struct{})}
	cmd.Stdout = io.MultiWriter(append([]io.Writer{p.Output}, also...)...)
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.Exited)
	}()
	return p, nil
}

// Stop sends sig to the process's group and waits for it to exit; after wait it kills
// the group (SIGKILL). It does nothing to a process that has exited.
func (p *Process) Stop(sig syscall.Signal, wait time.Duration) {
	select {
	case <-p.Exited:
		return
	default:
	}
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGCONT) // a stopped process dies all the same
	_ = syscall.Kill(-p.Cmd.Process.Pid, sig)
	select {
	case <-p.Exited:
	case <-time.After(wait):
		_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
		<-p.Exited
	}
}
