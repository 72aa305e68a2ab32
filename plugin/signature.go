package zegocallback

import (
	"crypto/md5"
	"crypto/sha1" //nolint:gosec // ZEGO's callback signature is defined as SHA-1.
	"crypto/subtle"
	"encoding/hex"
	"fmt"
)

// Sign returns the signature ZEGO puts in a callback: the lowercase hex SHA-1 of the
// CallbackSecret, the timestamp text and the nonce text, sorted as strings (byte order)
// and concatenated. Nothing else of the callback is signed.
func Sign(secret, timestamp, nonce string) string {
	sum := signatureOf(secret, timestamp, nonce)
	return hex.EncodeToString(sum[:])
}

func signatureOf(secret, timestamp, nonce string) [sha1.Size]byte {
	a, b, c := secret, timestamp, nonce
	if a > b {
		a, b = b, a
	}
	if b > c {
		b, c = c, b
	}
	if a > b {
		a, b = b, a
	}
	return sha1.Sum([]byte(a + b + c)) //nolint:gosec // see above.
}

var errSignatureNotHex = fmt.Errorf("%w: not 40 hex digits", errInvalidSignature)

// verifySignature checks cb's signature against each secret in force, in constant time
// for each, and when one yields it sets cb.key to the decoded signature as a string: it
// names the callback by exactly what is signed, and is the replay store's key. cb.key
// stays "" when none does (signatureError says why). The secrets in force are those of
// file when there is one (secretsFile, read again when it changed), else secrets. Its
// working variables are its results, as readPlain's are, each set before it is read.
//
// The signed string cannot tell where the timestamp ends and the nonce begins, so one
// signature also holds for other (timestamp, nonce) pairs made by moving digits between
// them (seconds 1689834748 with nonce 7257... and milliseconds 1689834748725 with nonce
// 7784...). The replay store therefore keys on the signature, never on the texts.
func verifySignature(secrets []string, file *watchedFile, cb *callback) (
	got []byte, err error, // the signature decoded
	lo, hi string, // the timestamp and the nonce, sorted
	signed, secret string, want [sha1.Size]byte, i int,
) {
	if file != nil {
		secrets = watchedValue(file, cb.receivedMs)
	}
	if got, err = hex.DecodeString(cb.texts[fieldSignature]); err != nil || len(got) != sha1.Size {
		return
	}
	// The three texts sorted once: the secret's place among them is found per secret.
	lo = cb.texts[fieldTimestamp]
	hi = cb.texts[fieldNonce]
	if lo > hi {
		lo = cb.texts[fieldNonce]
		hi = cb.texts[fieldTimestamp]
	}
	for i = 0; i < len(secrets); i++ {
		secret = secrets[i]
		if secret > hi {
			signed = lo + hi + secret
		} else if secret > lo {
			signed = lo + secret + hi
		} else {
			signed = secret + lo + hi
		}
		want = sha1.Sum([]byte(signed)) //nolint:gosec // see Sign.
		if subtle.ConstantTimeCompare(want[:], got) == 1 {
			cb.key = string(got)
			return
		}
	}
	return
}

// signatureError says why verifySignature refused cb's signature: built only then.
func signatureError(cb *callback) error {
	if cb.texts[fieldSignature] == "" {
		return fieldError(fieldSignature, "is missing or empty") // as readNamedTexts says it
	}
	got, err := hex.DecodeString(cb.texts[fieldSignature])
	if err == nil && len(got) == md5.Size && cb.spelling[fieldNonce] == "SignatureNonce" {
		return errMiniGameMD5
	}
	if err != nil || len(got) != sha1.Size {
		return errSignatureNotHex
	}
	return errInvalidSignature
}

// errMiniGameMD5 is a mini-game callback whose signature is an MD5: mini-game's "Making
// API Requests" page describes MD5(AppId+SignatureNonce+CallbackSecret+Timestamp) for its
// callbacks, which the middleware does not check (the README's ZEGO's products).
var errMiniGameMD5 = fmt.Errorf("%w: a mini-game callback signed with MD5 (AppId+SignatureNonce+CallbackSecret+Timestamp, as mini-game's API page describes), which this middleware does not check: only ZEGO's SHA-1 callback signature is; see the README's ZEGO's products", errInvalidSignature)

// timestampLimits returns a timestamp's unit in milliseconds and the largest timestamp
// accepted, more than a hundred thousand years away: past it, the skew could overflow.
func timestampLimits(millis bool) (int64, uint64) {
	if millis {
		return 1, 1 << 52
	}
	return 1000, 1 << 42
}

// freshnessError is the error of a timestamp outside the window, in the past or in the
// future (step 7 of ServeHTTP tells with one comparison): how far, and what a timestamp
// in the other unit looks like. The window is timestampTolerance either way of now, in
// milliseconds with timestampUnit milliseconds (AI Agent and ASR callbacks), else in
// seconds against now truncated to the second, as ZEGO's timestamps are. The digit count
// never decides the unit: the signed string cannot tell where the timestamp ends and the
// nonce begins, so digits moved from a captured callback's nonce to its timestamp would
// turn a seconds timestamp of years ago into a fresh milliseconds one under the same
// signature. Built only when a timestamp is refused.
func freshnessError(m *middleware, cb *callback) error {
	s := m.s
	hint := ""
	if n := len(cb.texts[fieldTimestamp]); !s.millis && n >= 13 {
		hint = fmt.Sprintf("; timestamp has %d digits: milliseconds? set timestampUnit: milliseconds", n)
	} else if s.millis && n <= 10 {
		hint = fmt.Sprintf("; timestamp has %d digits: seconds? set timestampUnit: seconds", n)
	}
	unit, maxTimestamp := timestampLimits(s.millis)
	skewMs := (cb.receivedMs/unit - int64(cb.timestamp)) * unit //nolint:gosec // bounded below
	switch {
	case cb.timestamp > maxTimestamp:
		return fmt.Errorf("%w: out of range%s", errStaleTimestamp, hint)
	case skewMs > 0:
		return fmt.Errorf("%w: %d s in the past%s", errStaleTimestamp, skewMs/1000, hint)
	}
	return fmt.Errorf("%w: %d s in the future%s", errStaleTimestamp, -skewMs/1000, hint)
}
