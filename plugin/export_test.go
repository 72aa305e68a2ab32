//go:build !yaegi
// +build !yaegi

package zegocallback

import "io"

// SetDebugOutput sends the middleware's DEBUG lines to w, for the package's external
// tests (natively, standard output is the test's own).
func SetDebugOutput(w io.Writer) { debugOut = w }
