package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zegocallback/traefik-zego-callback/internal/proctest"
	"github.com/zegocallback/traefik-zego-callback/test/pluginload"
	"github.com/zegocallback/traefik-zego-callback/test/traefiktest"
)

// TestDemo runs what make demo runs, on a free port and without waiting for Ctrl-C: its
// output must show a forwarded, a rejected (with its ERROR line) and a duplicate callback
// (whose line is at DEBUG, which the demo does not show).
func TestDemo(t *testing.T) {
	traefiktest.Binary(t) // fails here, clearly, without Traefik
	addr, err := proctest.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "run", "./cmd/demo", "-no-wait", "-addr", addr)
	cmd.Dir = filepath.Join(pluginload.RepoRoot(), "test")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{
		"[backend] POST /zego/callback", "X-Zego-Verified: true", "X-Zego-Event: mix_start", "-> 200 OK",
		"-> 401 Unauthorized", `"invalid_signature"`, "code=invalid_signature",
		"X-Zego-Duplicate: true",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, s)
		}
	}
	if n := strings.Count(s, "[backend] POST"); n != 1 {
		t.Errorf("the backend got %d callbacks, want 1 (the forged one and the replay stay out)", n)
	}
}
