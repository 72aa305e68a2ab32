package test

import (
	"context"
	"github.com/zegocallback/traefik-zego-callback/test/traefikload"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/zegocallback/traefik-zego-callback/internal/conformance"
)

// BenchmarkInterpretedServeHTTP is BenchmarkServeHTTP of the plugin package, through
// Yaegi: what each request costs inside Traefik.
func BenchmarkInterpretedServeHTTP(b *testing.B) {
	b.Run("new", func(b *testing.B) { conformance.BenchServeHTTP(b, yaegiBuild, conformance.BenchNew, nil) })
	b.Run("new-3-fields", func(b *testing.B) {
		conformance.BenchServeHTTP(b, yaegiBuild, conformance.BenchNew, map[string]any{"fields": []string{"event", "appid", "task_id"}})
	})
	b.Run("duplicate", func(b *testing.B) { conformance.BenchServeHTTP(b, yaegiBuild, conformance.BenchDuplicate, nil) })
	b.Run("forged", func(b *testing.B) { conformance.BenchServeHTTP(b, yaegiBuild, conformance.BenchForged, nil) })
}

// BenchmarkInterpretedHostile is BenchmarkHostile through Yaegi.
func BenchmarkInterpretedHostile(b *testing.B) {
	for _, shape := range conformance.HostileShapes {
		shape := shape
		b.Run(shape, func(b *testing.B) { conformance.BenchHostile(b, yaegiBuild, shape) })
	}
}

// BenchmarkInterpretedIdleClients is BenchmarkIdleClients through Yaegi.
func BenchmarkInterpretedIdleClients(b *testing.B) {
	conformance.BenchIdleClients(b, yaegiBuild, 100)
}

// BenchmarkInterpretedPieces runs the plugin's BenchmarkPiece functions through Yaegi:
// what each piece of a genuine callback's path costs interpreted.
func BenchmarkInterpretedPieces(b *testing.B) {
	if _, err := traefikload.UnitTests(traefikload.RepoRoot(), b.TempDir()); err != nil {
		b.Fatal(err)
	}
	names := make([]string, 0)
	for name := range traefikload.Benchmarks() {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b.Run(strings.TrimPrefix(name, "BenchmarkPiece"), traefikload.Benchmarks()[name])
	}
}

// BenchmarkInterpretedBaseline is BenchmarkInterpretedServeHTTP for the plugin as it was
// at the git revision in $ZEGO_BENCH_BASELINE, in the same run: side by side.
func BenchmarkInterpretedBaseline(b *testing.B) {
	rev := os.Getenv("ZEGO_BENCH_BASELINE")
	if rev == "" {
		b.Skip("set ZEGO_BENCH_BASELINE to a git revision to compare with")
	}
	root, err := traefikload.Baseline(traefikload.RepoRoot(), rev, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	p, err := traefikload.Load(root, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	build := func(t testing.TB, config map[string]any, next http.Handler, name string) (http.Handler, error) {
		return p.Build(context.Background(), config, next, name)
	}
	b.Run("new", func(b *testing.B) { conformance.BenchServeHTTP(b, build, conformance.BenchNew, nil) })
	b.Run("new-3-fields", func(b *testing.B) {
		conformance.BenchServeHTTP(b, build, conformance.BenchNew, map[string]any{"fields": []string{"event", "appid", "task_id"}})
	})
}
