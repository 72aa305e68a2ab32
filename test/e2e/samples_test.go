package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/conformance"
	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
	"github.com/zegocallback/traefik-zego-callback/test/pluginload"
	"github.com/zegocallback/traefik-zego-callback/test/traefiktest"
)

// TestSamplesRefuseForgeries runs each sample of testdata/traefik as a user would copy it,
// with only its addresses changed (the backend's URL and the secrets file's path),
// through a real Traefik: a genuine callback is forwarded, a forged one gets 401.
func TestSamplesRefuseForgeries(t *testing.T) {
	dir := filepath.Join(pluginload.RepoRoot(), "testdata", "traefik")
	secrets := filepath.Join(t.TempDir(), "zego_callback_secrets")
	if err := os.WriteFile(secrets, []byte(zegotest.Secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, url string, backend *conformance.Backend) {
		t.Helper()
		srv := conformance.Remote(url, backend)
		client := &http.Client{Timeout: 10 * time.Second, Transport: traefiktest.InsecureTransport}
		post := func(body []byte) conformance.Response {
			resp, err := conformance.Post(context.Background(), client, url, conformance.Request{Body: body})
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}
		genuine := conformance.Fresh()
		if r := post(genuine); r.Status != http.StatusOK || len(srv.Backend.Calls()) != 1 {
			t.Errorf("a genuine callback: %d %s, forwarded %d times; want 200, once", r.Status, r.Body, len(srv.Backend.Calls()))
		}
		forged := zegotest.New("mix_start.json", zegotest.OtherSecret, zegotest.Seconds(time.Now())).Body
		if r := post(forged); r.Status != http.StatusUnauthorized || r.Code != "invalid_signature" || len(srv.Backend.Calls()) != 1 {
			t.Errorf("a forged callback: %d %s, the backend has %d callbacks; want 401 invalid_signature, not forwarded", r.Status, r.Body, len(srv.Backend.Calls()))
		}
	}
	for _, name := range []string{"dynamic.yml", "dynamic.toml"} {
		name := name
		t.Run(name, func(t *testing.T) {
			backend := &conformance.Backend{}
			content, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			replaced := strings.NewReplacer("http://callback-backend:9000", upstream(t, backend), "/run/secrets/zego_callback_secrets", secrets).Replace(string(content))
			if replaced == string(content) {
				t.Fatal("the sample's addresses were not found")
			}
			tr := traefiktest.StartFile(t, name, replaced, traefiktest.Options{}, "/zego/callback")
			check(t, tr.TLSURL+"/zego", backend) // conformance.Post adds /callback

		})
	}
	for _, d := range []struct{ desc, file string }{{"Docker labels", "docker-compose.yml"}, {"Kubernetes", "kubernetes.yml"}} {
		d := d
		t.Run(d.desc, func(t *testing.T) {
			var plugin map[string]any
			var err error
			if d.file == "docker-compose.yml" {
				var labels map[string]string
				if labels, err = pluginload.ComposeLabels(filepath.Join(dir, d.file), "callback-backend"); err == nil {
					plugin, err = pluginload.PluginConfFromLabels(labels, "zego-callback", "zegocallback")
				}
			} else {
				plugin, err = pluginload.PluginConfFromKubernetes(filepath.Join(dir, d.file), "zego-callback", "zegocallback")
			}
			if err != nil {
				t.Fatal(err)
			}
			plugin["secretsFile"] = secrets
			backend := &conformance.Backend{}
			tr := traefiktest.Start(t, []traefiktest.Route{{Name: "sample", Backend: upstream(t, backend), Plugin: plugin}}, traefiktest.Options{})
			check(t, tr.URL+"/sample", backend)
		})
	}
}
