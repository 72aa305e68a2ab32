// Package redistest runs real redis-server processes for tests: on 127.0.0.1, on a free
// port, without persistence, stopped when the test ends. A test can stop, restart (on the
// same port) or kill the server, and send it commands with a small client of its own,
// independent of the code under test. A missing redis-server fails the test: it never
// skips.
package redistest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/proctest"
)

// Options say how to run the server.
type Options struct {
	// Password is the default user's password (requirepass); empty leaves it open.
	Password string
	// Users are ACL users, one rule list each as in redis.conf's user directive, such as
	// "alice on >secret ~* +@all".
	Users []string
	// TLS, when set, makes the server speak TLS only, on its one port.
	TLS *TLSFiles
	// AuthClients, with TLS, makes the server ask each client for a certificate its CA
	// signed (tls-auth-clients yes, Redis's default).
	AuthClients bool
	// Args are more configuration directives, as command-line pairs ("--maxclients", "20").
	Args []string
}

// Server is one redis-server process.
type Server struct {
	// Addr is 127.0.0.1:<port>; it stays the same across Restart.
	Addr string
	Port int
	// TLSAddr is, for a sentinel started with TLS (StartSentinel), the address of its TLS
	// port; empty otherwise.
	TLSAddr string

	t    testing.TB
	opts Options
	bin  string
	dir  string

	mu   sync.Mutex
	proc *proctest.Process // nil while the server is not running
}

// Start runs a redis-server and waits until it answers PING. The server is killed when
// the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if _, statErr := os.Stat("/usr/bin/redis-server"); statErr != nil {
			t.Fatalf("redistest: redis-server is not installed (Debian: apt-get install redis-server): %v", err)
		}
		bin = "/usr/bin/redis-server"
	}
	s := &Server{t: t, opts: opts, bin: bin, dir: t.TempDir()}
	t.Cleanup(s.Kill)
	// The free port found may be taken before the server binds it: try a few.
	for attempt := 0; ; attempt++ {
		addr, err := proctest.FreeAddr()
		if err == nil {
			s.Addr = addr
			s.Port, _ = strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
			err = s.start()
		}
		if err == nil {
			return s
		}
		if attempt == 4 {
			t.Fatalf("redistest: %v", err)
		}
	}
}

// Stop shuts the server down (SIGTERM) and waits for it to exit. It does nothing to a
// server that is not running.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill kills the server (SIGKILL) and waits for it to exit. It does nothing to a server
// that is not running.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

// Pause stops the server's process (SIGSTOP) without closing its connections: clients'
// commands wait in its sockets until Resume, as in a stalled server.
func (s *Server) Pause() { s.sendSignal(syscall.SIGSTOP) }

// Resume lets a paused server go on (SIGCONT): it runs the commands that waited.
func (s *Server) Resume() { s.sendSignal(syscall.SIGCONT) }

func (s *Server) sendSignal(sig syscall.Signal) {
	s.mu.Lock()
	proc := s.proc
	s.mu.Unlock()
	if proc == nil {
		s.t.Fatalf("redistest: %v: the server is not running", sig)
	}
	if err := proc.Cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redistest: %v: %v", sig, err)
	}
}

// Restart stops the server if it runs and starts it again on the same port, with no
// data (unless Args turned persistence on), and waits until it answers PING.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	// The port was just released; the server sets SO_REUSEADDR, but try a few times.
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("redistest: restart: %v", err)
}

// signal ends the server with sig, SIGKILL after 10 s.
func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	proc := s.proc
	s.proc = nil
	s.mu.Unlock()
	if proc != nil {
		proc.Stop(sig, 10*time.Second)
	}
}

// start runs the process on s.Port and waits for PING to answer.
func (s *Server) start() error {
	args := []string{
		"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s.dir,
		"--daemonize", "no", "--logfile", "", "--protected-mode", "no",
	}
	if s.opts.TLS != nil {
		args = append(args, "--port", "0", "--tls-port", strconv.Itoa(s.Port),
			"--tls-cert-file", s.opts.TLS.CertFile, "--tls-key-file", s.opts.TLS.KeyFile,
			"--tls-ca-cert-file", s.opts.TLS.CAFile, "--tls-auth-clients", map[bool]string{true: "yes", false: "no"}[s.opts.AuthClients])
	} else {
		args = append(args, "--port", strconv.Itoa(s.Port))
	}
	if s.opts.Password != "" {
		args = append(args, "--requirepass", s.opts.Password)
	}
	for _, u := range s.opts.Users {
		args = append(args, "--user")
		args = append(args, strings.Fields(u)...)
	}
	args = append(args, s.opts.Args...)
	return startArgs(s, args)
}

// Do sends one command on a new connection, authenticated as the default user when the
// server has a password, and returns the reply: a string for a simple or bulk string,
// an int64, nil, or a []any; an error reply is an error.
func (s *Server) Do(args ...string) (any, error) {
	nc, err := net.DialTimeout("tcp", s.Addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	if s.opts.TLS != nil {
		config := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // a test's own server
		if pair, err := tls.LoadX509KeyPair(s.opts.TLS.ClientCertFile, s.opts.TLS.ClientKeyFile); err == nil {
			config.Certificates = []tls.Certificate{pair}
		}
		nc = tls.Client(nc, config)
	}
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(nc)
	if s.opts.Password != "" {
		if _, err := roundTrip(nc, r, "AUTH", s.opts.Password); err != nil {
			return nil, fmt.Errorf("AUTH: %w", err)
		}
	}
	return roundTrip(nc, r, args...)
}

// MustDo is Do, failing the test on an error.
func (s *Server) MustDo(args ...string) any {
	s.t.Helper()
	reply, err := s.Do(args...)
	if err != nil {
		s.t.Fatalf("redistest: %s: %v", strings.Join(args, " "), err)
	}
	return reply
}

// ConnectedClients is INFO clients' connected_clients, the query's own connection
// not counted.
func (s *Server) ConnectedClients() int {
	s.t.Helper()
	info, _ := s.MustDo("INFO", "clients").(string)
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_clients:"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				s.t.Fatalf("redistest: INFO clients: %q", line)
			}
			return n - 1
		}
	}
	s.t.Fatalf("redistest: INFO clients has no connected_clients:\n%s", info)
	return 0
}

func roundTrip(w io.Writer, r *bufio.Reader, args ...string) (any, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return nil, err
	}
	return readReply(r)
}

func readReply(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply line")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return nil, errors.New(line[1:])
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$', '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return nil, fmt.Errorf("bad length in %q", line)
		}
		if n < 0 {
			return nil, nil
		}
		if line[0] == '$' {
			buf := make([]byte, n+2)
			if _, err := io.ReadFull(r, buf); err != nil {
				return nil, err
			}
			return string(buf[:n]), nil
		}
		items := make([]any, n)
		for i := range items {
			if items[i], err = readReply(r); err != nil {
				return nil, err
			}
		}
		return items, nil
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}

// writeFile writes a file under dir and returns its path.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return p
}

// Proxy forwards TCP connections to a server, each dialing it on its own (as clients of
// a slow server reach it, none waiting for the others' dials), until the test ends.
type Proxy struct {
	Addr  string
	Conns atomic.Int32 // the connections it made to the server
	// DropNextReply, once set, closes the connection that carries the server's next
	// reply instead of passing the reply on: a reply lost after the server ran the command.
	DropNextReply atomic.Bool

	delay time.Duration
	mu    sync.Mutex
	open  []net.Conn
	wg    sync.WaitGroup
}

// StartProxy starts a Proxy to target that holds every reply for delay before passing it
// on: with a delay, a server that answers, slowly.
func StartProxy(t testing.TB, target string, delay time.Duration) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	p := &Proxy{Addr: l.Addr().String(), delay: delay}
	t.Cleanup(func() {
		_ = l.Close()
		p.mu.Lock()
		for _, c := range p.open {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go proxyConnect(p, client, target)
		}
	}()
	return p
}

// proxyConnect and proxyPipe are functions, not methods: two goroutines started on a method
// value at once race inside Yaegi (its lazy type setup), and the plugin's tests that use
// a Proxy also run interpreted.
func proxyConnect(p *Proxy, client net.Conn, target string) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", target)
	if err != nil {
		_ = client.Close()
		return
	}
	p.Conns.Add(1)
	p.mu.Lock()
	p.open = append(p.open, client, server)
	p.mu.Unlock()
	p.wg.Add(2)
	go proxyPipe(p, server, client, false)
	go proxyPipe(p, client, server, true)
}

// proxyPipe copies src to dst until either fails; replies, from the server, are delayed or
// dropped.
func proxyPipe(p *Proxy, dst, src net.Conn, replies bool) {
	defer p.wg.Done()
	defer dst.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && replies && p.DropNextReply.CompareAndSwap(true, false) {
			_ = src.Close()
			return
		}
		if n > 0 {
			if replies {
				time.Sleep(p.delay)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
