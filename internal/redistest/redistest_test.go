package redistest

import (
	"strings"
	"testing"
)

func TestServerLifecycle(t *testing.T) {
	s := Start(t, Options{Password: "pw", Users: []string{"u on >upw ~* +@all"}})
	addr := s.Addr
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("Addr %q", addr)
	}
	s.MustDo("SET", "k", "v")
	if got := s.MustDo("GET", "k"); got != "v" {
		t.Fatalf("GET = %v", got)
	}
	if got := s.MustDo("ACL", "WHOAMI"); got != "default" {
		t.Fatalf("ACL WHOAMI = %v", got)
	}
	if users, _ := s.MustDo("ACL", "USERS").([]any); len(users) != 2 {
		t.Fatalf("ACL USERS = %v", users)
	}
	if got := s.MustDo("CONFIG", "GET", "save").([]any); len(got) != 2 || got[1] != "" {
		t.Fatalf("CONFIG GET save = %v", got)
	}
	if n := s.ConnectedClients(); n != 0 {
		t.Fatalf("ConnectedClients = %d", n)
	}

	s.Stop()
	if _, err := s.Do("PING"); err == nil {
		t.Fatal("PING answered after Stop")
	}
	s.Stop() // a second time does nothing
	s.Restart()
	if s.Addr != addr {
		t.Fatalf("restarted on %s, was %s", s.Addr, addr)
	}
	if got := s.MustDo("EXISTS", "k"); got != int64(0) {
		t.Fatal("data survived the restart")
	}
	s.Kill()
	if _, err := s.Do("PING"); err == nil {
		t.Fatal("PING answered after Kill")
	}
	s.Restart()
	s.MustDo("PING")
}

func TestServerTLS(t *testing.T) {
	s := Start(t, Options{TLS: NewTLSFiles(t)})
	if got := s.MustDo("PING"); got != "PONG" {
		t.Fatalf("PING = %v", got)
	}
	if got := s.MustDo("CONFIG", "GET", "port").([]any); got[1] != "0" {
		t.Fatalf("plain port %v, want 0", got[1])
	}
}
