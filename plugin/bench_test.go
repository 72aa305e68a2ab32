//go:build !yaegi
// +build !yaegi

package zegocallback_test

import (
	"io"
	"log"
	"os"
	"testing"

	"github.com/zegocallback/traefik-zego-callback/internal/conformance"
	zegocallback "github.com/zegocallback/traefik-zego-callback/plugin"
)

func TestMain(m *testing.M) {
	// One line per rejection is the point in Traefik; in the test output it is noise.
	// TestRejectionLogLine captures and checks it.
	log.SetOutput(io.Discard)
	zegocallback.SetDebugOutput(io.Discard)
	os.Exit(m.Run())
}

// BenchmarkServeHTTP: a new, a 3-field, a duplicate and a forged callback (conformance.BenchKinds).
func BenchmarkServeHTTP(b *testing.B) { conformance.BenchKinds(b, nativeBuild) }

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
