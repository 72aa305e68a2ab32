// Package passthrough is a Traefik plugin that only calls the next handler: what any
// Yaegi plugin costs at least. The load generator measures the ZEGO middleware against it.
package passthrough

import (
	"context"
	"net/http"
)

// Config is empty.
type Config struct{}

// CreateConfig returns the empty configuration.
func CreateConfig() *Config { return &Config{} }

type passthrough struct{ next http.Handler }

// New returns the pass-through handler.
func New(_ context.Context, next http.Handler, _ *Config, _ string) (http.Handler, error) {
	return &passthrough{next: next}, nil
}

func (p *passthrough) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	p.next.ServeHTTP(rw, req)
}
