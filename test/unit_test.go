package test

import (
	"testing"

	"github.com/zegocallback/traefik-zego-callback/test/pluginload"
)

// TestPluginUnitTestsThroughYaegi runs the plugin package's own unit tests (the parser,
// the signature, the headers, the stores, the Redis client) through the interpreter:
// the same _test.go files go test runs natively, interpreted as Traefik interprets the
// plugin.
func TestPluginUnitTestsThroughYaegi(t *testing.T) {
	tests, _, err := pluginload.UnitTests(pluginload.RepoRoot(), t.TempDir())
	if err != nil {
		t.Fatalf("loading the plugin's tests into Yaegi: %v", err)
	}
	if len(tests) < 40 {
		t.Fatalf("%d tests loaded: the interpreter missed some", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.Name, tt.F)
	}
}
