//go:build !yaegi
// +build !yaegi

package zegocallback_test

import (
	"fmt"

	zegocallback "github.com/zegocallback/traefik-zego-callback/plugin"
)

// ZEGO's documented example: secret "secret", timestamp 1470820198, nonce 123412, which
// sort to "1234121470820198secret".
func ExampleSign() {
	fmt.Println(zegocallback.Sign("secret", "1470820198", "123412"))
	// Output: 5bd59fd62953a8059fb7eaba95720f66d19e4517
}
