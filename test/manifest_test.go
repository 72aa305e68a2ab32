package test

import (
	"context"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/test/pluginload"
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
