package test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/zegocallback/traefik-zego-callback/test/pluginload"

	"github.com/zegocallback/traefik-zego-callback/internal/conformance"
)

// BenchmarkInterpretedServeHTTP is BenchmarkServeHTTP of the plugin package, through
// Yaegi: what each request costs inside Traefik.
func BenchmarkInterpretedServeHTTP(b *testing.B) { conformance.BenchKinds(b, yaegiBuild) }

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
	_, benchmarks, err := pluginload.UnitTests(pluginload.RepoRoot(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	for _, bm := range benchmarks {
		b.Run(strings.TrimPrefix(bm.Name, "BenchmarkPiece"), bm.F)
	}
}

// BenchmarkInterpretedBaseline is BenchmarkInterpretedServeHTTP for the plugin as it was
// at the git revision in $ZEGO_BENCH_BASELINE, in the same run: side by side.
func BenchmarkInterpretedBaseline(b *testing.B) {
	rev := os.Getenv("ZEGO_BENCH_BASELINE")
	if rev == "" {
		b.Skip("set ZEGO_BENCH_BASELINE to a git revision to compare with")
	}
	root, err := pluginload.Baseline(pluginload.RepoRoot(), rev, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	p, err := pluginload.Load(root, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	build := func(t testing.TB, config map[string]any, next http.Handler, name string) (http.Handler, error) {
		return p.Build(context.Background(), config, next, name)
	}
	conformance.BenchKinds(b, build)
}
