package test

import (
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
