package zegocallback

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// The fuzz targets check properties against references written apart from the code they
// test: encoding/json and net/url as the README describes the parser, the tests' own
// signer, and a plain re-statement of the header rules. Their seed corpora live in
// testdata/fuzz/<target>/ (the repository's testdata/fuzz links there); plain go test
// runs the seeds. To fuzz longer (the minimisation cap keeps the fuzzer from spending
// minutes shrinking each new large input):
//
//	go test -run XXX -fuzz FuzzParseCallback -fuzztime 10m -fuzzminimizetime 5s ./plugin/

// FuzzParseCallback: whatever the body, the parser does not panic, it refuses with an
// error wrapping errMalformedBody, and it accepts exactly what the reference accepts,
// with the same signed fields and the same Fields.
func FuzzParseCallback(f *testing.F) {
	f.Add([]byte(`{"timestamp":"1","nonce":"2","signature":"ab"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		cb, err := readCallback(body)
		want, why := referenceParse(body)
		if err != nil {
			if !errors.Is(err, errMalformedBody) {
				t.Fatalf("error %v does not wrap errMalformedBody", err)
			}
			if want != nil {
				t.Fatalf("refused (%v) what encoding/json and net/url accept: %+v", err, want.texts)
			}
			return
		}
		if want == nil {
			t.Fatalf("accepted what the reference refuses (%s): %+v", why, cb)
		}
		got := [len(refNames)]string{cb.texts[fieldSignature], cb.texts[fieldTimestamp], cb.texts[fieldNonce], cb.texts[fieldEvent], cb.texts[fieldAppID]}
		if got != want.texts {
			t.Fatalf("signed fields %q, the reference says %q", got, want.texts)
		}
		// Sent with a form's Content-Type, a JSON body is also read as PHP and Node
		// read a form, and refused if that reading holds a named field.
		formCB, formErr := parseCallback(body, true)
		if formErr == nil {
			formErr = checkReading(formCB, body)
		}
		if wantForm, why := referenceParseAs(body, true); (formErr != nil) != (wantForm == nil) {
			t.Fatalf("with a form's Content-Type: %v, the reference says %q", formErr, why)
		}
		if !allDigits(cb.texts[fieldTimestamp]) {
			t.Fatalf("accepted timestamp %q is not all ASCII digits", cb.texts[fieldTimestamp])
		}
		checkFieldsAgree(t, cb, want)
	})
}

// FuzzVerify: a callback signed with the secret always verifies with it, in either hex
// case, and with that secret among others; changing one byte of the signature (other
// than its hex letters' case), the timestamp, the nonce or the secret never verifies.
//
// No single-byte change of the timestamp, the nonce or the secret can keep the signed
// string: it is the three sorted and joined, so its bytes are the three's bytes taken
// together, and changing one byte's value changes that multiset of bytes, whatever the
// new order. (Moving digits between timestamp and nonce keeps the multiset and can keep
// the string: that is checked against the string itself, not assumed either way.) Only
// a SHA-1 collision could then verify.
func FuzzVerify(f *testing.F) {
	f.Add("secret", "1470820198", "123412", uint(0))
	f.Fuzz(func(t *testing.T, secret, timestamp, nonce string, flip uint) {
		// A timestamp that is not digits, or an empty or non-UTF-8 nonce, is refused
		// before any signature is looked at; then the fuzzer's bytes are made valid.
		if !allDigits(timestamp) {
			mustRefuse(t, "timestamp "+strconvQuote(timestamp), callbackBody("ab", timestamp, "1", false))
			timestamp = digitsOf(timestamp)
		}
		// A nonce a header cannot carry as it is (not printable ASCII, or a space at an
		// end) is refused too, so that every reader reads the nonce the middleware does.
		if nonce == "" || strings.Trim(nonce, printableASCII) != "" || nonce[0] == ' ' || nonce[len(nonce)-1] == ' ' {
			mustRefuse(t, "nonce "+strconvQuote(nonce), callbackBody("ab", "1", nonce, false))
			nonce = "n" + strings.Map(func(r rune) rune {
				if r < 0x21 || r > 0x7e {
					return '?'
				}
				return r
			}, nonce) + "n"
		}
		// A nonce that URL-decodes to another text ('+', or a %XX escape) is refused in a
		// JSON body that still reads as JSON once URL-decoded: a backend that URL-decodes
		// the body, as ZEGO's pages show, would read another nonce.
		if urlDecoder.Replace(nonce) != nonce {
			body := callbackBody("ab", "1", nonce, false)
			if cb, err := readCallback(body); err == nil && json.Valid([]byte(urlDecoder.Replace(string(body)))) {
				t.Fatalf("nonce %s: parsed as %+v; want errMalformedBody", strconvQuote(nonce), cb)
			}
			nonce = strings.NewReplacer("+", "?", "%", "?").Replace(nonce)
		}
		sig := Sign(secret, timestamp, nonce)
		if other := zegotest.Sign(secret, timestamp, nonce); sig != other {
			t.Fatalf("Sign = %s, the tests' signer says %s", sig, other)
		}
		want, _ := hex.DecodeString(sig)
		pascal := flip>>63 == 1
		numbers := false
		verifies := func(sig, ts, nonce string, secrets ...string) bool {
			body := callbackBody(sig, ts, nonce, pascal)
			if numbers {
				body = numericBody(sig, ts, nonce)
			}
			cb, err := readCallback(body)
			if err != nil {
				if !errors.Is(err, errMalformedBody) {
					t.Fatalf("parse: %v does not wrap errMalformedBody", err)
				}
				return false
			}
			key := verifiedKey(secrets, cb)
			if key == "" {
				if err := signatureError(cb); !errors.Is(err, errInvalidSignature) {
					t.Fatalf("Verify: %v does not wrap errInvalidSignature", err)
				}
				return false
			}
			if key != string(want) {
				t.Fatalf("Verify's key %x, want the signature's bytes %x", key, want)
			}
			return true
		}

		cb, err := readCallback(callbackBody(sig, timestamp, nonce, pascal))
		if err != nil || cb.texts[fieldTimestamp] != timestamp || cb.texts[fieldNonce] != nonce || cb.texts[fieldSignature] != sig {
			t.Fatalf("signed body parsed as %+v, %v", cb, err)
		}
		if !verifies(sig, timestamp, nonce, secret) {
			t.Fatal("a callback signed with the secret does not verify")
		}
		if !verifies(strings.ToUpper(sig), timestamp, nonce, secret) {
			t.Fatal("the upper-case signature does not verify")
		}
		if !verifies(sig, timestamp, nonce, secret+"x", secret) {
			t.Fatal("the secret second in the list does not verify")
		}
		if jsonInteger(timestamp) && jsonInteger(nonce) {
			numbers = true
			if !verifies(sig, timestamp, nonce, secret) {
				t.Fatal("the same callback with numbers does not verify")
			}
			numbers = false
		}
		if verifies(sig, timestamp, nonce, secret+"x") || verifies(sig[:39], timestamp, nonce, secret) || verifies(sig+"0", timestamp, nonce, secret) {
			t.Fatal("a longer secret, or a signature one digit shorter or longer, verifies")
		}

		// One byte changed: which value, where and to what, all from flip.
		values := [4]string{sig, timestamp, nonce, secret}
		which := int(flip % 4)
		v := []byte(values[which])
		if len(v) == 0 {
			return // an empty secret has no byte to change
		}
		pos := int((flip / 4) % uint(len(v)))
		v[pos] ^= byte(1 + (flip/4/uint(len(v)))%255)
		values[which] = string(v)
		got := verifies(values[0], values[1], values[2], values[3])
		expect := which == 0 && strings.EqualFold(values[0], sig) // a hex letter's case
		if got != expect {
			t.Fatalf("byte %d of %s changed to %q: verifies = %v, want %v",
				pos, [4]string{"signature", "timestamp", "nonce", "secret"}[which], v[pos], got, expect)
		}

		// Digits moved from the nonce to the timestamp: verifies exactly when the sorted,
		// joined string is unchanged (the limitation the README documents).
		if allDigits(nonce) && len(nonce) > 1 {
			ts2, nonce2 := timestamp+nonce[:1], nonce[1:]
			same := sortedJoin(secret, ts2, nonce2) == sortedJoin(secret, timestamp, nonce)
			if got := verifies(sig, ts2, nonce2, secret); got != same {
				t.Fatalf("digit moved to the timestamp: verifies = %v, signed string unchanged = %v", got, same)
			}
		}
	})
}

// callbackBody writes a JSON callback with the values as strings, escaping only what
// JSON requires: bytes that are not UTF-8 stay as they are, for the parser to refuse.
func callbackBody(sig, ts, nonce string, pascal bool) []byte {
	names := [3]string{"signature", "timestamp", "nonce"}
	if pascal {
		names = [3]string{"Signature", "Timestamp", "Nonce"}
	}
	var b bytes.Buffer
	b.WriteString(`{"event":"mix_start",`)
	for i, v := range [3]string{sig, ts, nonce} {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + names[i] + `":"`)
		for j := 0; j < len(v); j++ {
			switch c := v[j]; {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c < 0x20:
				b.WriteString(`\u00`)
				b.WriteString(hex.EncodeToString([]byte{c}))
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.Bytes()
}

// numericBody writes the timestamp and the nonce as JSON numbers, as room_create and
// the AI Agent callbacks do.
func numericBody(sig, ts, nonce string) []byte {
	return []byte(`{"Event":"x","Timestamp":` + ts + `,"Nonce":` + nonce + `,"Signature":"` + sig + `"}`)
}

// jsonInteger reports whether s is digits that JSON allows as a number (no leading 0).
func jsonInteger(s string) bool {
	return allDigits(s) && (s == "0" || s[0] != '0')
}

func mustRefuse(t *testing.T, what string, body []byte) {
	t.Helper()
	if cb, err := readCallback(body); !errors.Is(err, errMalformedBody) {
		t.Fatalf("%s: parsed as %+v, %v; want errMalformedBody", what, cb, err)
	}
}

func sortedJoin(s ...string) string {
	sort.Strings(s)
	return strings.Join(s, "")
}

// digitsOf maps each byte to a digit, so that every input yields a timestamp.
func digitsOf(s string) string {
	b := make([]byte, 0, len(s)+1)
	for i := 0; i < len(s); i++ {
		b = append(b, '0'+s[i]%10)
	}
	if len(b) == 0 {
		b = append(b, '0')
	}
	return string(b)
}

// FuzzAnnotate: with any body, prefix and bounds, the headers built are exactly what the
// README's rules give, every name a canonical header token with the prefix and no '_',
// every value free of bytes below 0x20 and of 0x7F, at most maxHeaderFields of them, none
// of the middleware's own; and every incoming header with the prefix is stripped first.
func FuzzAnnotate(f *testing.F) {
	f.Add([]byte(`{"event":"mix_start","list":["a",1,true]}`), uint8(0))
	f.Fuzz(func(t *testing.T, body []byte, choice uint8) {
		prefix := fuzzPrefixes[int(choice)%len(fuzzPrefixes)]
		maxFields := [4]int{64, 1, 2, 3}[choice>>3&3]
		maxValue := [4]int{1024, 1, 8, 64}[choice>>5&3]
		var selected []string
		if choice>>7 == 1 {
			selected = []string{"event", "appid", "task_id", "list", "verified", "Duplicate", "a"}
		}
		cb := fieldsOf(body)
		if cb == nil {
			return
		}
		b := newHeaderBuilder(prefix, selected, maxFields, maxValue)

		// Whatever the client sent with the prefix, in any case and with '_', is gone.
		h := http.Header{"Content-Type": {"application/json"}}
		i := 0
		for field := range cb.Fields {
			if i++; i > 8 {
				break
			}
			h[strings.ToLower(prefix)+field] = []string{"spoofed"}
			h[strings.ReplaceAll(strings.ToUpper(prefix), "-", "_")+field] = []string{"spoofed"}
			h[http.CanonicalHeaderKey(prefix+headerVerified)] = []string{"spoofed"}
		}
		stripPrefixed(b, h)
		for name := range h {
			if name != "Content-Type" {
				t.Fatalf("incoming header %q survived stripping with prefix %q", name, prefix)
			}
		}

		h[b.verified] = []string{"true"}
		annotate(b, h, cb)
		ref, _ := referenceParse(body)
		if ref == nil {
			ref = &refCallback{}
		}
		want := referenceHeaders(prefix, ref, cb.Fields, selected, maxFields, maxValue)
		for name, vs := range h {
			if name == "Content-Type" || name == b.verified {
				continue
			}
			if !validFieldName(name) || strings.ContainsRune(name, '_') || name != http.CanonicalHeaderKey(name) ||
				len(name) <= len(prefix) || !strings.EqualFold(name[:len(prefix)], prefix) {
				t.Fatalf("header name %q is not a canonical token with the prefix %q and no '_'", name, prefix)
			}
			for _, v := range vs {
				if strings.ContainsAny(v, controlBytes) || len(v) > 3*maxValue {
					t.Fatalf("header %s value %q holds a control byte or is too long", name, v)
				}
			}
			if !equalStrings(vs, want[name]) {
				t.Fatalf("header %s = %q, want %q", name, vs, want[name])
			}
		}
		if n := len(h) - 2 - namedHeaders(h, prefix); n > maxFields {
			t.Fatalf("%d field headers besides the named ones, maxHeaderFields %d", n, maxFields)
		}
		if len(h) != len(want)+2 {
			t.Fatalf("%d field headers %v, want %d: %v", len(h)-2, h, len(want), want)
		}
		if !equalStrings(h[b.verified], []string{"true"}) || h[b.duplicate] != nil || h[b.rejection] != nil {
			t.Fatalf("a field set the middleware's own header: %v", h)
		}

		// Once the names are cached, the same body gives the same headers.
		again := http.Header{}
		annotate(b, again, cb)
		for name, vs := range want {
			if !equalStrings(again[name], vs) {
				t.Fatalf("second annotate gave %s = %q, the first %q", name, again[name], vs)
			}
		}
		if len(again) != len(want) {
			t.Fatalf("second annotate gave %v, the first %v", again, h)
		}
	})
}

// fuzzPrefixes are header prefixes New accepts, in the shapes users write.
var fuzzPrefixes = []string{"X-Zego-", "X-callback-", "x-zego-", "X-ZEGO-", "Zego", "X-", "A", "X-Zego"}

// fieldsOf parses a body as readCallback would; a body without the signed fields keeps
// its fields, and no named one.
func fieldsOf(body []byte) *callback {
	if cb, err := readCallback(body); err == nil {
		return cb
	}
	cb := &callback{}
	if parseOtherBody(cb, body) != nil || cb.walkKeys && keysUnique(cb.doc, cb.Fields) != nil {
		return nil
	}
	if cb.Fields == nil {
		cb.Fields = formFields(cb.form)
	}
	return cb
}

// namedHeaders counts the named fields' headers in h.
func namedHeaders(h http.Header, prefix string) int {
	n := 0
	for _, name := range []string{"Event", "Event-Type", "Timestamp", "Nonce", "Appid", "App-Id"} {
		if _, ok := h[http.CanonicalHeaderKey(prefix+name)]; ok {
			n++
		}
	}
	return n
}

// FuzzKeyLimit: however the keys are spaced (any JSON white space before and after each
// colon) or written (escaped), and at the top level or nested, a JSON body of more than
// 10 000 keys is refused, and one of at most 10 000 is not refused for its keys (except a
// body of more than 1 000 top-level keys with one written with an escape, which is
// refused rather than walked key by key).
func FuzzKeyLimit(f *testing.F) {
	f.Add([]byte(" "), uint8(10), false, false)
	f.Fuzz(func(t *testing.T, spacing []byte, extra uint8, escaped, nested bool) {
		if len(spacing) > 8 {
			spacing = spacing[:8]
		}
		ws := make([]byte, len(spacing))
		for i, c := range spacing {
			ws[i] = " \t\r\n"[c%4]
		}
		n := 9990 + int(extra%21) // 9 990 to 10 010 keys in all
		keys := n
		if nested {
			keys-- // the key that holds them counts too
		}
		var b strings.Builder
		b.WriteString("{")
		if nested {
			b.WriteString(`"nested"` + string(ws) + `:` + string(ws) + `{`)
		}
		for i := 0; i < keys; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			name := "k" + strconv.Itoa(i)
			if escaped {
				name = `\u006b` + strconv.Itoa(i)
			}
			b.WriteString(`"` + name + `"` + string(ws) + ":" + string(ws) + "1")
		}
		if nested {
			b.WriteString("}")
		}
		b.WriteString("}")
		_, _, err := parseJSONObject([]byte(b.String()))
		walkRefused := escaped && !nested
		switch {
		case n > maxKeys && err == nil:
			t.Fatalf("%d keys spaced %q (escaped %v, nested %v) accepted", n, ws, escaped, nested)
		case n <= maxKeys && err != nil && !walkRefused:
			t.Fatalf("%d keys spaced %q (escaped %v, nested %v) refused: %v", n, ws, escaped, nested, err)
		case err != nil && !errors.Is(err, errMalformedBody):
			t.Fatalf("error %v does not wrap errMalformedBody", err)
		}
	})
}

// FuzzStrip: whatever the incoming header's name, it is stripped exactly when, read in
// lower case with every character but a letter or digit as '-', it starts with the
// prefix read the same way.
func FuzzStrip(f *testing.F) {
	f.Add("X-Zego.Verified", uint8(0))
	f.Fuzz(func(t *testing.T, name string, choice uint8) {
		prefix := fuzzPrefixes[int(choice)%len(fuzzPrefixes)]
		b := newHeaderBuilder(prefix, nil, 64, 1024)
		h := http.Header{name: {"spoofed"}}
		stripPrefixed(b, h)
		_, kept := h[name]
		// Byte by byte, as CGI and PHP read a header's name.
		norm := func(s string) string {
			out := []byte(s)
			for i, c := range out {
				switch {
				case 'A' <= c && c <= 'Z':
					out[i] = c + 'a' - 'A'
				case 'a' <= c && c <= 'z' || '0' <= c && c <= '9':
				default:
					out[i] = '-'
				}
			}
			return string(out)
		}
		if shouldGo := strings.HasPrefix(norm(name), norm(prefix)); kept == shouldGo {
			t.Fatalf("header %q with prefix %q: kept %v", name, prefix, kept)
		}
	})
}
