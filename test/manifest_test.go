package test

import (
	"context"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/test/pluginload"
	"gopkg.in/yaml.v3"
)

// TestManifestFollowsCatalogRules checks .traefik.yml and go.mod against what the plugin
// catalog (traefik/piceus) and Traefik require.
func TestManifestFollowsCatalogRules(t *testing.T) {
	root := pluginload.RepoRoot()
	m, err := pluginload.ReadManifest(root)
	if err != nil {
		t.Fatal(err)
	}
	if m.DisplayName == "" || m.Summary == "" || len(m.TestData) == 0 {
		t.Errorf("displayName, summary and testData are required: %+v", m)
	}
	if m.Type != "middleware" {
		t.Errorf("type = %q, want middleware", m.Type)
	}
	if m.Runtime != "" && m.Runtime != "yaegi" {
		t.Errorf("runtime = %q, want yaegi or nothing", m.Runtime)
	}
	for _, p := range []string{m.IconPath, m.BannerPath} {
		if p != "" {
			if _, err := os.Stat(filepath.Join(root, p)); err != nil {
				t.Errorf("manifest names %s: %v", p, err)
			}
		}
	}

	mod, err := pluginload.ModulePath(root)
	if err != nil {
		t.Fatal(err)
	}
	if parts := strings.Split(mod, "/"); len(parts) != 3 || parts[0] != "github.com" {
		t.Errorf("module path %q is not github.com/<owner>/<repo>", mod)
	}
	if m.Import != mod && !strings.HasPrefix(m.Import, mod+"/") {
		t.Errorf("import %q is not under the module path %q", m.Import, mod)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(gomod), "require") {
		t.Errorf("the root go.mod requires modules; the plugin must need the standard library only:\n%s", gomod)
	}
	if _, err := os.Stat(filepath.Join(root, "vendor")); err == nil {
		t.Errorf("vendor/ exists; a standard-library plugin needs none")
	}

	// The package Traefik imports, and its basePkg, must name the package in it.
	pkgDir := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(strings.TrimPrefix(m.Import, mod), "/")))
	files, err := filepath.Glob(filepath.Join(pkgDir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files for import %q in %s", m.Import, pkgDir)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		if m.BasePkg != "" && af.Name.Name != m.BasePkg {
			t.Errorf("%s: package %s, but basePkg is %s", filepath.Base(f), af.Name.Name, m.BasePkg)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if first := strings.Split(p, "/")[0]; strings.Contains(first, ".") {
				t.Errorf("%s imports %s: the plugin must use the standard library only", filepath.Base(f), p)
			}
			if p == "unsafe" || p == "C" || p == "embed" || p == "os/exec" {
				t.Errorf("%s imports %s, which Yaegi does not give plugins", filepath.Base(f), p)
			}
		}
	}
}

// TestManifestTestDataBuilds does what the catalog's crawler does: decode testData as
// Traefik does and call New, which must answer within 10 seconds without failing.
func TestManifestTestDataBuilds(t *testing.T) {
	p, err := pluginload.Shared()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.Build(context.Background(), p.Manifest.TestData, http.NotFoundHandler(), "catalog@plugin")
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("New with testData: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("New with testData took more than 10 s")
	}
}

// TestInstallSamplesAgree holds the install samples of testdata/traefik to the module
// and the release: each names the module go.mod declares and the version CHANGELOG.md
// gives first (as does the README's install snippet); the compose file mounts the plugin
// where Traefik's official image reads local plugins and the secret where its labels
// read it; the Helm values mount kubernetes.yml's Secret where its Middleware reads it.
func TestInstallSamplesAgree(t *testing.T) {
	root := pluginload.RepoRoot()
	dir := filepath.Join(root, "testdata", "traefik")
	mod, err := pluginload.ModulePath(root)
	if err != nil {
		t.Fatal(err)
	}
	changelog, err := os.ReadFile(filepath.Join(root, "CHANGELOG.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^## (v\d+\.\d+\.\d+)`).FindSubmatch(changelog)
	if m == nil {
		t.Fatal("CHANGELOG.md names no version")
	}
	version := string(m[1])
	readYAML := func(name string, v any) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	type catalog struct {
		Experimental struct {
			Plugins map[string]struct {
				ModuleName string `yaml:"moduleName"`
				Version    string `yaml:"version"`
			} `yaml:"plugins"`
		} `yaml:"experimental"`
	}
	for _, name := range []string{"traefik.yml", "helm-values.yml"} {
		var c catalog
		readYAML(name, &c)
		if p := c.Experimental.Plugins["zegocallback"]; p.ModuleName != mod || p.Version != version {
			t.Errorf("%s installs %s@%s, want %s@%s", name, p.ModuleName, p.Version, mod, version)
		}
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "moduleName: "+mod+"\n      version: "+version) {
		t.Errorf("the README's install snippet does not name %s %s", mod, version)
	}

	var compose struct {
		Services map[string]struct {
			Command    []string `yaml:"command"`
			WorkingDir string   `yaml:"working_dir"`
			Volumes    []string `yaml:"volumes"`
			Secrets    []string `yaml:"secrets"`
			Labels     []string `yaml:"labels"`
		} `yaml:"services"`
	}
	readYAML("docker-compose.yml", &compose)
	tr := compose.Services["traefik"]
	if !slices.Contains(tr.Command, "--experimental.localPlugins.zegocallback.moduleName="+mod) {
		t.Errorf("the compose file's Traefik does not load %s as a local plugin: %q", mod, tr.Command)
	}
	mounted := false
	for _, v := range tr.Volumes {
		mounted = mounted || strings.Contains(v, ":/plugins-local/src/"+mod+":") || strings.HasSuffix(v, ":/plugins-local/src/"+mod)
	}
	if tr.WorkingDir != "/" || !mounted {
		t.Errorf("the compose file's Traefik runs in %q and mounts %q; local plugins are read from ./plugins-local/src/%s", tr.WorkingDir, tr.Volumes, mod)
	}
	for _, secret := range tr.Secrets {
		want := "plugin.zegocallback.secretsFile=/run/secrets/" + secret
		if !slices.ContainsFunc(compose.Services["callback-backend"].Labels, func(l string) bool { return strings.HasSuffix(l, want) }) {
			t.Errorf("the compose file mounts the secret %s, which no label reads", secret)
		}
	}

	var helm struct {
		Volumes []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			Type      string `yaml:"type"`
		} `yaml:"volumes"`
	}
	readYAML("helm-values.yml", &helm)
	plugin, err := pluginload.PluginConfFromKubernetes(filepath.Join(dir, "kubernetes.yml"), "zego-callback", "zegocallback")
	if err != nil {
		t.Fatal(err)
	}
	file, _ := plugin["secretsFile"].(string)
	ok := false
	for _, v := range helm.Volumes {
		ok = ok || v.Type == "secret" && v.Name == "zego-callback" && file == v.MountPath+"/secrets"
	}
	if !ok {
		t.Errorf("the Helm values do not mount the Secret zego-callback where the Middleware reads %q: %+v", file, helm.Volumes)
	}
}
