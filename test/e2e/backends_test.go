package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/conformance"
	"github.com/zegocallback/traefik-zego-callback/internal/proctest"
	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
	"github.com/zegocallback/traefik-zego-callback/test/pluginload"
	"github.com/zegocallback/traefik-zego-callback/test/traefiktest"
)

// Real backends behind the middleware, each reading the body its idiomatic ways: PHP (its
// built-in server, running ZEGO's own verification sample), Node (its standard library),
// Express (npm's express, its json() and urlencoded()), Go (encoding/json into structs
// and a map, FormValue, gin's ShouldBind), Python (json.loads, parse_qs, Flask), Ruby
// (Rack) and Java (a servlet's getParameter on Jetty, Jackson). Each answers what it read
// of a forwarded request; the tests hold that against the X-Zego-* headers the
// middleware wrote. A missing runtime fails the test (the README's test command installs
// them: scripts/install-backends).

// backendProc is one backend process serving on 127.0.0.1.
type backendProc struct {
	name string
	url  string
}

// startBackend runs the command with the port appended where "{port}" stands, and waits
// until it answers.
func startBackend(t *testing.T, name string, args ...string) backendProc {
	t.Helper()
	bin, err := exec.LookPath(args[0])
	if err != nil {
		t.Fatalf("%s is not installed (scripts/install-backends installs every backend's runtime): %v", args[0], err)
	}
	addr, err := proctest.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "{port}", port)
	}
	cmd := exec.Command(bin, args[1:]...)
	cmd.Dir = filepath.Join(pluginload.RepoRoot(), "test", "backends")
	cmd.Env = append(os.Environ(), "ZEGO_CALLBACK_SECRET="+zegotest.Secret)
	proc, err := proctest.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		proc.Stop(syscall.SIGKILL, 10*time.Second)
		if t.Failed() {
			t.Logf("%s backend's output:\n%s", name, proc.Output)
		}
	})
	url := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Post(url+"/ready", "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return backendProc{name: name, url: url}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the %s backend does not answer on %s: %v\n%s", name, url, err, proc.Output)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// report is what a backend answers: the X-Zego-* headers as it sees them, and each
// reading of the body (nil where that reading found nothing).
type report struct {
	Backend  string                    `json:"backend"`
	Headers  map[string]any            `json:"headers"`
	Readings map[string]map[string]any `json:"readings"`
	Checks   map[string]*bool          `json:"checks"`
}

// readingRow is a row sent to both backends.
type readingRow struct {
	desc    string
	genuine bool
	make    func() conformance.Case
}

// TestBackendsReadWhatTheMiddlewareRead sends the one-reading table and every documented
// callback through Traefik into a PHP and a Node backend. Each row's answers are
// checked as in the behaviour table; for each forwarded request, every reading each
// backend makes of the body (PHP's $_POST and json_decode, Node's JSON.parse, Express's
// json(), querystring and URLSearchParams) must find the event, app id, timestamp and
// nonce the middleware announced, or none; each X-Zego-* header a backend sees must be
// one a body field gives; and ZEGO's own PHP check must pass on every genuine callback.
func TestBackendsReadWhatTheMiddlewareRead(t *testing.T) {
	backends := startReaders(t)
	var rows []readingRow
	now := time.Now()
	for i, c := range conformance.ReadingCases(now) {
		i := i
		rows = append(rows, readingRow{desc: c.Desc, genuine: strings.HasPrefix(c.Desc, "genuine"),
			make: func() conformance.Case { return conformance.ReadingCases(time.Now())[i] }})
	}
	for _, cr := range conformance.CorpusCallbacks() {
		cr := cr
		rows = append(rows, readingRow{desc: cr.Case(now).Desc, genuine: true, make: func() conformance.Case { return cr.Case(time.Now()) }})
	}
	var routes []traefiktest.Route
	for i, r := range rows {
		for _, b := range backends {
			routes = append(routes, traefiktest.Route{Name: fmt.Sprintf("%s%d", b.name, i), Backend: b.url, Plugin: conformance.Config(r.make().Config)})
		}
	}
	tr := traefiktest.Start(t, routes, traefiktest.Options{})
	for i, r := range rows {
		i, r := i, r
		t.Run(r.desc, func(t *testing.T) {
			for _, b := range backends {
				c := r.make()
				for j, st := range c.Steps {
					label := fmt.Sprintf("%s, request %d", b.name, j+1)
					resp := conformance.Remote(tr.URL+"/"+fmt.Sprintf("%s%d", b.name, i), nil).Do(t, st.Req)
					if resp.Status != st.Status {
						t.Errorf("%s: status %d, want %d: %.200s", label, resp.Status, st.Status, resp.Body)
					}
					if resp.Status != http.StatusOK || resp.Duplicate() {
						continue
					}
					// Whatever the row expects, a request that reached the backend must be
					// read as the middleware read it.
					var rep report
					dec := json.NewDecoder(bytes.NewReader(resp.Body))
					dec.UseNumber()
					if err := dec.Decode(&rep); err != nil || rep.Backend != b.name {
						t.Errorf("%s: not the backend's report: %s", label, resp.Body)
						continue
					}
					checkReport(t, label, rep, st.Req.Body, r.genuine)
				}
			}
		})
	}
}

// namedField is, for each spelling of a named field a reading may report, the field;
// fieldHeaders are the headers (as CGI names them) that may announce each field: a Go
// struct field named AppId reads "appid", which the middleware announces as X-Zego-Appid.
var (
	namedField = map[string]string{
		"event": "event", "Event": "event", "EventType": "event", "event_type": "event",
		"timestamp": "timestamp", "Timestamp": "timestamp",
		"nonce": "nonce", "Nonce": "nonce", "SignatureNonce": "nonce",
		"appid": "appid", "Appid": "appid", "AppId": "appid", "AppID": "appid", "app_id": "appid",
	}
	fieldHeaders = map[string][]string{
		"event": {"HTTP_X_ZEGO_EVENT"}, "timestamp": {"HTTP_X_ZEGO_TIMESTAMP"}, "nonce": {"HTTP_X_ZEGO_NONCE"},
		"appid": {"HTTP_X_ZEGO_APPID", "HTTP_X_ZEGO_APP_ID"},
	}
)

// cgiName is a header's name as CGI and PHP read it.
func cgiName(name string) string {
	b := []byte(strings.ToUpper(name))
	for i, c := range b {
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			b[i] = '_'
		}
	}
	return "HTTP_" + string(b)
}

// checkReport holds a backend's readings against the headers it saw.
func checkReport(t *testing.T, label string, rep report, sent []byte, genuine bool) {
	t.Helper()
	headers := map[string]string{}
	for name, v := range rep.Headers {
		s, ok := v.(string)
		if !ok {
			t.Errorf("%s: header %s = %v, not one value", label, name, v)
			continue
		}
		switch rep.Backend {
		case "node", "express", "python", "java":
			// Read as Latin-1 (Node, WSGI, the servlet API): the text back into the bytes.
			b := make([]byte, 0, len(s))
			for _, r := range s {
				b = append(b, byte(r))
			}
			s = string(b)
		}
		if rep.Backend != "php" && rep.Backend != "ruby" { // CGI's names already
			name = cgiName(name)
		}
		headers[name] = s
	}
	if headers["HTTP_X_ZEGO_VERIFIED"] != "true" {
		t.Errorf("%s: X-Zego-Verified = %q at the backend", label, headers["HTTP_X_ZEGO_VERIFIED"])
	}
	read := 0
	for reading, fields := range rep.Readings {
		if fields == nil {
			continue
		}
		for spelling, field := range namedField {
			v, ok := fields[spelling]
			if !ok {
				continue
			}
			read++
			announced, header := "", ""
			for _, h := range fieldHeaders[field] {
				if a, ok := headers[h]; ok {
					announced, header = a, h
				}
			}
			if header == "" {
				t.Errorf("%s: %s reads %s=%v; the middleware announced no %s", label, reading, spelling, v, field)
				continue
			}
			if !sameValue(v, announced) {
				t.Errorf("%s: %s reads %s=%v; the middleware announced %s=%q", label, reading, spelling, v, header, announced)
			}
		}
	}
	// PHP and Node read every kind of body (JSON, forms, URL-encoded JSON): one of their
	// readings must find the named fields, or the row proves nothing.
	if read == 0 && (rep.Backend == "php" || rep.Backend == "node") {
		t.Errorf("%s: no reading of the backend found a named field: %v", label, rep.Readings)
	}
	// Every X-Zego-* header the backend sees is one a top-level field of the body gives,
	// with that field's value.
	var fields map[string]json.RawMessage
	if json.Unmarshal(sent, &fields) == nil {
		allowed := map[string]string{"HTTP_X_ZEGO_VERIFIED": "true"}
		for h, values := range conformance.ExpectedHeaders(fields) {
			allowed[cgiName(h)] = strings.Join(values, ", ")
		}
		// An array's header lines, joined with a comma as most backends join them (Werkzeug
		// without a space), must split back into its elements.
		elements := map[string]int{}
		for name, raw := range fields {
			if raw[0] == '[' {
				header := cgiName(conformance.ExpectedHeaderName(name))
				allowed[header] = "*"
				var elems []json.RawMessage
				_ = json.Unmarshal(raw, &elems)
				elements[header] = len(elems)
			}
		}
		for name, v := range headers {
			want, ok := allowed[name]
			switch {
			case !ok:
				t.Errorf("%s: the backend sees %s=%q, which no field of the body gives", label, name, v)
			case want != "*" && want != v:
				t.Errorf("%s: the backend sees %s=%q, the body's field says %q", label, name, v, want)
			case want == "*" && len(strings.Split(v, ",")) != elements[name]:
				t.Errorf("%s: the backend sees %s=%q, which splits at its commas into other than the array's %d strings", label, name, v, elements[name])
			}
		}
	}
	// The signature each reading finds is the one the middleware checked: the body's.
	if signed := sentSignature(sent); signed != "" {
		for reading, fields := range rep.Readings {
			for _, spelling := range []string{"signature", "Signature"} {
				if v, ok := fields[spelling]; ok && v != signed {
					t.Errorf("%s: %s reads %s=%v; the middleware checked %q", label, reading, spelling, v, signed)
				}
			}
		}
	}
	if genuine && rep.Backend == "php" {
		passed := false
		for reading, ok := range rep.Checks {
			if ok == nil {
				continue
			}
			if !*ok {
				t.Errorf("%s: ZEGO's PHP check fails on the %s reading of a genuine callback", label, reading)
			}
			passed = true
		}
		if !passed {
			t.Errorf("%s: no reading of PHP's could run ZEGO's check on a genuine callback", label)
		}
	}
}

// sameValue compares what a backend read with the header's text: a string exactly, a
// number as the backend's number type holds it (Node's doubles round 19 digits).
func sameValue(v any, header string) bool {
	switch v := v.(type) {
	case string:
		return v == header
	case json.Number:
		if v.String() == header {
			return true
		}
		a, err1 := v.Float64()
		b, err2 := strconv.ParseFloat(header, 64)
		return err1 == nil && err2 == nil && a == b
	case bool:
		return strconv.FormatBool(v) == header
	}
	return false
}

// sentSignature is the signature the middleware checked in a forwarded body: its JSON's
// or its form's, under either spelling.
func sentSignature(sent []byte) string {
	var fields map[string]any
	if json.Unmarshal(sent, &fields) == nil {
		for _, spelling := range []string{"signature", "Signature"} {
			if v, ok := fields[spelling].(string); ok {
				return v
			}
		}
		return ""
	}
	if form, err := url.ParseQuery(string(sent)); err == nil {
		for _, spelling := range []string{"signature", "Signature"} {
			if v := form.Get(spelling); v != "" {
				return v
			}
		}
	}
	return ""
}

// startReaders starts every backend: PHP and Node as they are, the Go reader built from
// its module, the Java reader compiled against Debian's Jetty and Jackson.
func startReaders(t *testing.T) []backendProc {
	t.Helper()
	dir := filepath.Join(pluginload.RepoRoot(), "test", "backends")
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "goreader"), ".")
	build.Dir = filepath.Join(dir, "goreader")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the Go reader: %v\n%s", err, out)
	}
	classpath := strings.Join(append(javaJars(t), bin), ":")
	javac := exec.Command("javac", "-d", bin, "-cp", classpath, filepath.Join(dir, "Reader.java"))
	if out, err := javac.CombinedOutput(); err != nil {
		t.Fatalf("compiling the Java reader (scripts/install-backends installs javac, Jetty and Jackson): %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "express")); err != nil {
		t.Fatalf("express is not installed in test/backends (scripts/install-backends runs npm ci there): %v", err)
	}
	return []backendProc{
		startBackend(t, "php", "php", "-d", "max_input_vars=1000", "-S", "127.0.0.1:{port}", "reader.php"),
		startBackend(t, "node", "node", "reader.js", "{port}"),
		startBackend(t, "express", "node", "express-reader.js", "{port}"),
		startBackend(t, "go", filepath.Join(bin, "goreader"), "{port}"),
		startBackend(t, "python", "/usr/bin/python3", "reader.py", "{port}"),
		startBackend(t, "ruby", "ruby", "reader.rb", "{port}"),
		startBackend(t, "java", "java", "-cp", classpath, "Reader", "{port}"),
	}
}

// javaJars are the jars the Java reader needs, as Debian installs them.
func javaJars(t *testing.T) []string {
	t.Helper()
	var jars []string
	for _, pattern := range []string{"jetty9-server.jar", "jetty9-servlet.jar", "jetty9-http.jar", "jetty9-io.jar", "jetty9-util.jar",
		"jetty9-security.jar", "servlet-api.jar", "jackson-databind.jar", "jackson-core.jar", "jackson-annotations.jar"} {
		jar := filepath.Join("/usr/share/java", pattern)
		if _, err := os.Stat(jar); err != nil {
			t.Fatalf("%s is missing (scripts/install-backends installs Debian's libjetty9-java and libjackson2-databind-java): %v", jar, err)
		}
		jars = append(jars, jar)
	}
	return jars
}
