package conformance

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// Run runs the whole table against the middleware that build makes.
func Run(t *testing.T, build Builder) {
	t.Run("New", func(t *testing.T) { RunNew(t, build) })
	t.Run("ServeHTTP", func(t *testing.T) { RunServeHTTP(t, build) })
	RunStore(t, build, nil)
	t.Run("Adversarial", func(t *testing.T) { RunAdversarial(t, build) })
}

var runSeq atomic.Int64

// UniqueName returns a middleware name no other test in this process uses: the replay
// store belongs to the name and lives as long as the process (or the interpreter).
func UniqueName(label string) string {
	return fmt.Sprintf("%s-%d-%d@conformance", label, time.Now().UnixNano(), runSeq.Add(1))
}

// StoreConfig gives the replay-store settings of the middleware called name: nil runs
// the flows with the memory store; the Redis runs give each name its own key prefix, as
// two middlewares sharing one prefix would share one store.
type StoreConfig func(name string) map[string]any

func (sc StoreConfig) of(name string) map[string]any {
	if sc == nil {
		return nil
	}
	return sc(name)
}

// RunStore runs what depends on the replay store: the table's replay rows, the flows,
// and the store outliving a second New.
func RunStore(t *testing.T, build Builder, store StoreConfig) {
	t.Run("ReplayCases", func(t *testing.T) { RunReplayCases(t, build, store) })
	t.Run("Corpus", func(t *testing.T) { RunCorpus(t, build, store) })
	t.Run("Flows", func(t *testing.T) { RunFlows(t, build, store) })
	t.Run("StoreOutlivesNew", func(t *testing.T) { RunStoreOutlivesNew(t, build, store) })
}

// RunReplayCases runs the table's rows that exercise the replay store, with store's
// settings.
func RunReplayCases(t *testing.T, build Builder, store StoreConfig) {
	file := SecretsFile(t)
	n := len(Cases(time.Now(), file))
	for i := 0; i < n; i++ {
		c := CaseAt(i, file)
		if !c.Store {
			continue
		}
		t.Run(c.Desc, func(t *testing.T) {
			name := UniqueName("replay")
			srv := Start(t, build, merge(merge(BaseConfig(), c.Config), store.of(name)), name)
			for i, st := range c.Steps {
				CheckStep(t, fmt.Sprintf("request %d", i+1), srv, st)
			}
		})
	}
}

// BaseConfig is the configuration every case starts from.
func BaseConfig() map[string]any {
	return map[string]any{"secrets": []string{zegotest.Secret}}
}

func merge(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

// SecretsFile writes a secrets file holding zegotest.OtherSecret, with a comment and
// blank lines, and returns its path.
func SecretsFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secrets")
	writeFile(t, path, "# ZEGO CallbackSecrets, one per line\n\n  "+zegotest.OtherSecret+"  \r\n")
	return path
}

// RunServeHTTP runs every case of Cases.
func RunServeHTTP(t *testing.T, build Builder) {
	file := SecretsFile(t)
	n := len(Cases(time.Now(), file))
	for i := 0; i < n; i++ {
		c := CaseAt(i, file)
		t.Run(c.Desc, func(t *testing.T) {
			srv := Start(t, build, merge(BaseConfig(), c.Config), UniqueName("case"))
			for i, st := range c.Steps {
				CheckStep(t, fmt.Sprintf("request %d", i+1), srv, st)
			}
		})
	}
}

// CheckStep sends one step's request and checks all it states.
func CheckStep(t *testing.T, label string, srv *Server, st Step) {
	t.Helper()
	srv.Backend.SetStatus(st.Backend)
	before := len(srv.Backend.Calls())
	resp := srv.Do(t, st.Req)
	calls := srv.Backend.Calls()
	forwarded := len(calls) > before

	if resp.Status != st.Status {
		t.Errorf("%s: status %d, want %d (body %s)", label, resp.Status, st.Status, resp.Body)
	}
	if resp.Code != st.Code {
		t.Errorf("%s: error code %q, want %q", label, resp.Code, st.Code)
	}
	if st.Code != "" {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: rejection Content-Type %q", label, ct)
		}
		if !bytes.Contains(resp.Body, []byte(`"message":"`)) {
			t.Errorf("%s: rejection without a message: %s", label, resp.Body)
		}
	}
	for _, secret := range []string{zegotest.Secret, zegotest.OtherSecret} {
		if bytes.Contains(resp.Body, []byte(secret)) {
			t.Errorf("%s: the answer holds a secret", label)
		}
	}
	for k, v := range st.RespHeader {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s: response header %s = %q, want %q", label, k, got, v)
		}
	}
	if forwarded != st.Forwarded {
		t.Errorf("%s: forwarded = %v, want %v", label, forwarded, st.Forwarded)
	}
	if len(calls) > before+1 {
		t.Errorf("%s: the backend got %d requests for one", label, len(calls)-before)
	}
	if !forwarded {
		return
	}
	got := calls[len(calls)-1]
	if st.Req.Body != nil && !bytes.Equal(got.Body, st.Req.Body) {
		t.Errorf("%s: the backend got a different body:\n got %q\nwant %q", label, got.Body, st.Req.Body)
	}
	if got.ContentLength != int64(len(st.Req.Body)) || len(got.TransferEncoding) != 0 {
		t.Errorf("%s: the backend got Content-Length %d, Transfer-Encoding %v; want %d and none",
			label, got.ContentLength, got.TransferEncoding, len(st.Req.Body))
	}
	for k, want := range st.Got {
		if have := got.Header.Values(k); !slices.Equal(have, want) {
			t.Errorf("%s: the backend got %s = %q, want %q", label, k, have, want)
		}
	}
	for _, k := range st.NotGot {
		for name := range got.Header {
			if strings.EqualFold(name, k) {
				t.Errorf("%s: the backend got %s = %q, want none", label, name, got.Header[name])
			}
		}
	}
}

// RunStoreOutlivesNew builds the middleware twice under one name, as Traefik does for
// two routers and again on every reload: a callback delivered through one is a replay
// through the other, whatever else the configuration changed.
func RunStoreOutlivesNew(t *testing.T, build Builder, store StoreConfig) {
	name := UniqueName("reload")
	first := Start(t, build, merge(BaseConfig(), store.of(name)), name)
	body := zegotest.New("mix_start.json", zegotest.Secret, zegotest.Seconds(time.Now())).Body
	CheckStep(t, "through the first instance", first, Step{Req: Request{Body: body}, Status: 200, Forwarded: true})

	reloaded := merge(merge(BaseConfig(), store.of(name)), map[string]any{"duplicates": "reject", "fields": []string{"event"}})
	second := Start(t, build, reloaded, name)
	CheckStep(t, "replayed through the second", second, Step{Req: Request{Body: body}, Status: 409, Code: "duplicate"})
	CheckStep(t, "replayed through the first", first, Step{Req: Request{Body: body}, Status: 200, RespHeader: map[string]string{"X-Zego-Duplicate": "true"}})

	otherName := UniqueName("other")
	other := Start(t, build, merge(BaseConfig(), store.of(otherName)), otherName)
	CheckStep(t, "another middleware's store is its own", other, Step{Req: Request{Body: body}, Status: 200, Forwarded: true})
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
