// Package zegotest builds signed ZEGO callbacks for the tests, the demo and the load
// generator. Its signer is written apart from the plugin's, so that a test signing with
// one and verifying with the other checks both against ZEGO's published vectors.
package zegotest

import (
	"crypto/sha1" //nolint:gosec // ZEGO's callback signature is defined as SHA-1.
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Secret is the CallbackSecret the tests sign with, shaped like the ones ZEGO issues.
const Secret = "5f2b1d9c8e7a4b3c2d1e0f9a8b7c6d5e"

// OtherSecret is a second valid-looking secret, for rotation and forgery cases.
const OtherSecret = "00112233445566778899aabbccddeeff"

// Template returns a sample callback body (see templates) with {{timestamp}},
// {{nonce}} and {{signature}} where the signed values go. It panics on an unknown name:
// the names are the test's own.
func Template(name string) string {
	t, ok := templates[name]
	if !ok {
		panic(fmt.Sprintf("zegotest: no sample callback %q", name))
	}
	return t
}

// Sign is ZEGO's signature: SHA-1 of secret, timestamp and nonce sorted as strings and
// concatenated, in lowercase hex.
func Sign(secret, timestamp, nonce string) string {
	parts := []string{secret, timestamp, nonce}
	sort.Strings(parts)
	sum := sha1.Sum([]byte(strings.Join(parts, ""))) //nolint:gosec // see above.
	return hex.EncodeToString(sum[:])
}

// Fill puts timestamp, nonce and their signature with secret into template.
func Fill(template, secret, timestamp, nonce string) []byte {
	return FillSigned(template, timestamp, nonce, Sign(secret, timestamp, nonce))
}

// FillSigned puts the given values into template, signature included, as they are.
func FillSigned(template, timestamp, nonce, signature string) []byte {
	r := strings.NewReplacer("{{timestamp}}", timestamp, "{{nonce}}", nonce, "{{signature}}", signature)
	return []byte(r.Replace(template))
}

// Seconds is t as ZEGO writes most timestamps.
func Seconds(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// Millis is t as AI Agent and ASR callbacks write their timestamps.
func Millis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

var nonceSeq atomic.Uint64

func init() {
	nonceSeq.Store(uint64(time.Now().UnixNano()) % 1e17)
}

// Nonce returns a 19-digit nonce, as ZEGO's look, new on every call in this process.
func Nonce() string {
	return strconv.FormatUint(7e18+nonceSeq.Add(1), 10)
}

// Callback is a signed sample: its body and the values signed.
type Callback struct {
	Body      []byte
	Timestamp string
	Nonce     string
	Signature string
}

// New signs the sample called name with secret, timestamp ts and a fresh nonce.
func New(name, secret, ts string) Callback {
	nonce := Nonce()
	sig := Sign(secret, ts, nonce)
	return Callback{Body: FillSigned(Template(name), ts, nonce, sig), Timestamp: ts, Nonce: nonce, Signature: sig}
}
