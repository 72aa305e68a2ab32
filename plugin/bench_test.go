//go:build !yaegi
// +build !yaegi

package zegocallback_test

import (
	"io"
	"log"
	"os"
	"testing"

	"github.com/zegocallback/traefik-zego-callback/internal/conformance"
)

func TestMain(m *testing.M) {
	// One line per rejection is the point in Traefik; in the test output it is noise.
	// TestRejectionLogLine captures and checks it.
	log.SetOutput(io.Discard)
	os.Exit(m.Run())
}

func BenchmarkServeHTTP(b *testing.B) {
	b.Run("new", func(b *testing.B) { conformance.BenchServeHTTP(b, nativeBuild, conformance.BenchNew, nil) })
	b.Run("new-3-fields", func(b *testing.B) {
		conformance.BenchServeHTTP(b, nativeBuild, conformance.BenchNew, map[string]any{"fields": []string{"event", "appid", "task_id"}})
	})
	b.Run("duplicate", func(b *testing.B) { conformance.BenchServeHTTP(b, nativeBuild, conformance.BenchDuplicate, nil) })
	b.Run("forged", func(b *testing.B) { conformance.BenchServeHTTP(b, nativeBuild, conformance.BenchForged, nil) })
}

// BenchmarkHostile: what a forged megabyte of each worst shape costs, beside a plain one.
func BenchmarkHostile(b *testing.B) {
	for _, shape := range conformance.HostileShapes {
		shape := shape
		b.Run(shape, func(b *testing.B) { conformance.BenchHostile(b, nativeBuild, shape) })
	}
}

// BenchmarkIdleClients: the live heap held by 100 clients that each declared 1 MiB and
// sent one byte.
func BenchmarkIdleClients(b *testing.B) {
	conformance.BenchIdleClients(b, nativeBuild, 100)
}
