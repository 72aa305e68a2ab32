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

	"github.com/zegocallback/traefik-zego-callback/internal/redistest"
	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// A Row is one behaviour written once and run at every level: natively and through
// Yaegi by RunRows, behind a real Traefik by test/e2e, with each replay store where it
// concerns the store. Its middlewares' configurations are known beforehand, as Traefik
// needs them at start; its requests are built when it runs, as signed ones hold for
// seconds only.
type Row struct {
	Desc   string
	Store  bool // exercises the replay store: runs with each store
	Shared bool // needs a store that other processes share (Redis): runs with that only
	Twins  bool // each middleware is also served through a second router
	Mws    []Mw // its middlewares; one plain one when empty
	Run    func(t *testing.T, e *Env)
}

// Mw is a middleware a row needs.
type Mw struct {
	Config  map[string]any  // over the base configuration and the store's settings
	Backend func() *Backend // its backend; nil for a plain one
}

// NewBackend returns the middleware's backend.
func (m Mw) NewBackend() *Backend {
	if m.Backend == nil {
		return &Backend{}
	}
	return m.Backend()
}

// Middlewares are the row's middlewares.
func (r Row) Middlewares() []Mw {
	if len(r.Mws) == 0 {
		return []Mw{{}}
	}
	return r.Mws
}

// Env is what a row runs against, a level's servers for the row's middlewares.
type Env struct {
	Srv []*Server // the row's middlewares, in the order of its Mws
	// Twin serves each through a second router that uses the same middleware: Traefik
	// calls New for each router, under one name. With Row.Twins only.
	Twin []*Server
	// Replica serves each as another Traefik process would: the same configuration, and
	// so the same store, under a name of its own. With Row.Shared only.
	Replica []*Server
	Redis   *redistest.Server // the Redis store's server, for the rows that stop it
	// Memory says the row runs with the memory store, which every middleware of the
	// process shares.
	Memory bool
	// Reload gives middleware i the configuration over over the base (the store's
	// settings kept), as a change of Traefik's dynamic configuration does: New again,
	// for each of its routers.
	Reload func(t *testing.T, i int, over map[string]any)
}

// Run runs the whole table against the middleware that build makes, with the memory
// store.
func Run(t *testing.T, build Builder) {
	t.Run("New", func(t *testing.T) { RunNew(t, build) })
	RunRows(t, build, AllRows(SecretsFile(t)), nil, nil)
	t.Run("Adversarial", func(t *testing.T) { RunAdversarial(t, build) })
}

// RunStore runs the rows that exercise the replay store, with store's settings.
func RunStore(t *testing.T, build Builder, store StoreConfig) {
	RunRows(t, build, StoreRows(SecretsFile(t)), store, nil)
}

// AllRows are the table's rows, the documented callbacks and the flows.
func AllRows(secretsFile string) []Row {
	return append(append(CaseRows(secretsFile), CorpusRows()...), FlowRows()...)
}

// StoreRows are the rows of AllRows that exercise the replay store, and those that need
// a store replicas share.
func StoreRows(secretsFile string) []Row {
	var rows []Row
	for _, r := range AllRows(secretsFile) {
		if r.Store {
			rows = append(rows, r)
		}
	}
	return append(rows, SharedRows()...)
}

// CaseRows are the rows of Cases, each built by CaseAt when it runs.
func CaseRows(secretsFile string) []Row {
	var rows []Row
	for i, c := range Cases(time.Now(), secretsFile) {
		i := i
		rows = append(rows, Row{Desc: c.Desc, Store: c.Store, Mws: []Mw{{Config: c.Config}},
			Run: func(t *testing.T, e *Env) { CheckSteps(t, e.Srv[0], CaseAt(i, secretsFile).Steps) }})
	}
	return rows
}

// CheckSteps checks each step in turn.
func CheckSteps(t *testing.T, srv *Server, steps []Step) {
	t.Helper()
	for i, st := range steps {
		CheckStep(t, fmt.Sprintf("request %d", i+1), srv, st)
	}
}

var runSeq atomic.Int64

// UniqueName returns a middleware name no other test in this process uses: the replay
// store belongs to the name and lives as long as the process (or the interpreter).
func UniqueName(label string) string {
	return fmt.Sprintf("%s-%d-%d@conformance", label, time.Now().UnixNano(), runSeq.Add(1))
}

// StoreConfig gives the replay-store settings of a middleware whose store is called key:
// nil runs the rows with the memory store; the Redis store gives each key its own key
// prefix, as two middlewares sharing one prefix would share one store.
type StoreConfig func(key string) map[string]any

func (sc StoreConfig) of(key string) map[string]any {
	if sc == nil {
		return nil
	}
	return sc(key)
}

// RunRows runs rows against the middleware that build makes, each middleware under a
// name of its own, with store's settings (nil: the memory store, and the rows that need
// a shared store are left out); redis is the store's server, when it is Redis.
func RunRows(t *testing.T, build Builder, rows []Row, store StoreConfig, redis *redistest.Server) {
	for _, r := range rows {
		r := r
		if r.Shared && store == nil {
			continue
		}
		t.Run(r.Desc, func(t *testing.T) {
			e := &Env{Redis: redis, Memory: store == nil}
			var names []string
			for _, mw := range r.Middlewares() {
				name := UniqueName("row")
				names = append(names, name)
				config := Config(store.of(name), mw.Config)
				backend := mw.NewBackend()
				e.Srv = append(e.Srv, StartWith(t, build, config, name, backend))
				if r.Twins {
					e.Twin = append(e.Twin, StartWith(t, build, config, name, backend))
				}
				if r.Shared {
					e.Replica = append(e.Replica, StartWith(t, build, config, UniqueName("replica"), backend))
				}
			}
			e.Reload = func(t *testing.T, i int, over map[string]any) {
				config := Config(store.of(names[i]), over)
				e.Srv[i].rebuild(t, build, config, names[i])
				if r.Twins {
					e.Twin[i].rebuild(t, build, config, names[i])
				}
			}
			r.Run(t, e)
		})
	}
}

// Config is the configuration every case starts from (the tests' secret), with each of
// over laid on it in turn.
func Config(over ...map[string]any) map[string]any {
	out := map[string]any{"secrets": []string{zegotest.Secret}}
	for _, o := range over {
		for k, v := range o {
			out[k] = v
		}
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

// CheckStep sends one step's request and checks all it states.
func CheckStep(t *testing.T, label string, srv *Server, st Step) {
	t.Helper()
	srv.Backend.SetStatus(st.Backend)
	srv.Backend.SetAnswer(st.BackendBody, st.BackendType)
	before := len(srv.Backend.Calls())
	resp := srv.Do(t, st.Req)
	calls := srv.Backend.Calls()
	forwarded := len(calls) > before

	for _, c := range srv.Crashes() {
		t.Errorf("%s: the middleware panicked with %s (only http.ErrAbortHandler closes a connection on purpose)", label, c)
	}
	if resp.NoAnswer != st.NoAnswer {
		t.Errorf("%s: no answer = %v, want %v (status %d)", label, resp.NoAnswer, st.NoAnswer, resp.Status)
	}
	if st.RespBody != "" && string(resp.Body) != st.RespBody {
		t.Errorf("%s: answer body %q, want %q", label, resp.Body, st.RespBody)
	}
	if !st.NoAnswer && resp.Status != st.Status {
		t.Errorf("%s: status %d, want %d (body %s)", label, resp.Status, st.Status, resp.Body)
	}
	if !st.NoAnswer && resp.Code != st.Code {
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
	if !forwarded && len(resp.Left) != 0 {
		t.Errorf("%s: refused, yet the request kept %v once the middleware returned (an access log would record them)", label, resp.Left)
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

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
