package zegocallback

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// ZEGO's published vectors, and what sorting as numbers would wrongly give.
func TestSignKnownAnswers(t *testing.T) {
	tests := []struct {
		desc, secret, timestamp, nonce, want string
	}{
		{"ZEGO's documented example", "secret", "1470820198", "123412", "5bd59fd62953a8059fb7eaba95720f66d19e4517"},
		{"string order differs from numeric order", "secret", "1499676978", "350176", "264b7f500b4935a082fef1da1760769245880d7c"},
	}
	for _, tt := range tests {
		if got := Sign(tt.secret, tt.timestamp, tt.nonce); got != tt.want {
			t.Errorf("%s: Sign = %s, want %s", tt.desc, got, tt.want)
		}
		if got := zegotest.Sign(tt.secret, tt.timestamp, tt.nonce); got != tt.want {
			t.Errorf("%s: the tests' signer = %s, want %s", tt.desc, got, tt.want)
		}
	}
	if Sign("secret", "1499676978", "350176") == "b7debda3eaa1ff1c1103ab74d5d0f4a70b0b83db" {
		t.Error("Sign sorted numerically")
	}
}

func TestSignAgreesWithTestSigner(t *testing.T) {
	for _, in := range [][3]string{
		{"", "", ""}, {"a", "b", "c"}, {"c", "b", "a"}, {"b", "a", "c"}, {"same", "same", "same"},
		{zegotest.Secret, "1689834748", "7257784982359218206"}, {"Z", "9", "10"},
	} {
		if a, b := Sign(in[0], in[1], in[2]), zegotest.Sign(in[0], in[1], in[2]); a != b {
			t.Errorf("Sign%q = %s, the test signer says %s", in, a, b)
		}
	}
}

func TestVerify(t *testing.T) {
	ts, nonce := "1689834748", "7257784982359218206"
	good := Sign(zegotest.Secret, ts, nonce)
	cb := func(sig, ts, nonce string) *callback { return &callback{texts: [namedCount]string{sig, ts, nonce}} }
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == '1' {
			b[i] = '2'
		} else {
			b[i] = '1'
		}
		return string(b)
	}
	secrets := []string{zegotest.OtherSecret, zegotest.Secret}
	if key := verifiedKey(secrets, cb(good, ts, nonce)); len(key) != 20 {
		t.Fatalf("verifySignature(good) = %x", key)
	}
	if key := verifiedKey(secrets, cb(strings.ToUpper(good), ts, nonce)); key == "" {
		t.Errorf("upper-case hex: refused")
	}
	bad := []struct{ desc, sig, ts, nonce string }{
		{"no secret matches", Sign("other", ts, nonce), ts, nonce},
		{"39 hex digits", good[:39], ts, nonce},
		{"41 hex digits", good + "0", ts, nonce},
		{"not hex", "g" + good[1:], ts, nonce},
		{"empty", "", ts, nonce},
	}
	for i := 0; i < len(good); i++ {
		bad = append(bad, struct{ desc, sig, ts, nonce string }{"signature digit changed", flip(good, i), ts, nonce})
	}
	for i := 0; i < len(ts); i++ {
		bad = append(bad, struct{ desc, sig, ts, nonce string }{"timestamp digit changed", good, flip(ts, i), nonce})
	}
	for i := 0; i < len(nonce); i++ {
		bad = append(bad, struct{ desc, sig, ts, nonce string }{"nonce digit changed", good, ts, flip(nonce, i)})
	}
	for _, b := range bad {
		c := cb(b.sig, b.ts, b.nonce)
		if key := verifiedKey(secrets, c); key != "" {
			t.Errorf("%s (%s %s %s): accepted", b.desc, b.sig, b.ts, b.nonce)
		}
		// A missing signature is a malformed body, as the general reading says of it.
		want := errInvalidSignature
		if b.sig == "" {
			want = errMalformedBody
		}
		if err := signatureError(c); !errors.Is(err, want) {
			t.Errorf("%s: signatureError %v, want %v", b.desc, err, want)
		}
	}
}

// The window of step 7, through ServeHTTP, with each body read both ways (the plain
// reading, and the general one, which a Content-Type with parameters gets).
func TestFreshness(t *testing.T) {
	now := time.Unix(1700000000, 600e6) // .6 s into the second
	tests := []struct {
		desc, ts string
		fresh    bool
	}{
		{"now", "1700000000", true},
		{"exactly tolerance in the past", "1699999700", true},
		{"tolerance+1 s in the past", "1699999699", false},
		{"exactly tolerance in the future", "1700000300", true},
		{"tolerance+1 s in the future", "1700000301", false},
		{"milliseconds on a seconds route: stale, however fresh", "1700000000600", false},
		{"zero", "0", false},
		{"leading zeros, seconds", "0001700000000", true},
		{"beyond 64 bits", "99999999999999999999", false},
		{"19 digits", "9223372036854775807", false},
		{"2^63 and now", "9223372038554775808", false},
		{"2^64 less now", "18446744072009551616", false},
		{"2^42 + now", "4398046511104", false},
		{"ms: now", "ms1700000000600", true},
		{"ms: exactly tolerance in the past", "ms1699999700600", true},
		{"ms: 1 ms beyond tolerance in the past", "ms1699999700599", false},
		{"ms: exactly tolerance in the future", "ms1700000300600", true},
		{"ms: 1 ms beyond tolerance in the future", "ms1700000300601", false},
		{"ms: seconds on a milliseconds route", "ms1700000000", false},
		{"ms: 19 digits", "ms9223372036854775807", false},
		{"ms: beyond 64 bits", "ms99999999999999999999", false},
	}
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	cfg := func(unit string) *Config {
		c := CreateConfig()
		c.Secrets = []string{zegotest.Secret}
		c.TimestampTolerance = "5m"
		c.TimestampUnit = unit
		return c
	}
	seconds, millis := clocked(t, cfg("seconds"), ok, &now), clocked(t, cfg("milliseconds"), ok, &now)
	for i, tt := range tests {
		m := seconds
		ts, inMillis := strings.CutPrefix(tt.ts, "ms")
		if inMillis {
			m = millis
		}
		for _, contentType := range []string{"application/json", "application/json; charset=utf-8"} {
			nonce := strconv.Itoa(i) + contentType[len(contentType)-1:]
			body := `{"signature":"` + Sign(zegotest.Secret, ts, nonce) + `","nonce":"` + nonce + `","timestamp":"` + ts + `"}`
			req := httptest.NewRequest(http.MethodPost, "/callback", strings.NewReader(body))
			req.Header.Set("Content-Type", contentType)
			rec := httptest.NewRecorder()
			m.ServeHTTP(rec, req)
			want, wantCode := http.StatusOK, ""
			if !tt.fresh {
				want, wantCode = http.StatusUnauthorized, "stale_timestamp"
			}
			if rec.Code != want || rec.Header().Get("X-Zego-Rejection") != wantCode {
				t.Errorf("%s (%s, %s): %d %q, want %d %q", tt.desc, tt.ts, contentType, rec.Code, rec.Header().Get("X-Zego-Rejection"), want, wantCode)
			}
		}
	}
}

// verifiedKey is verifySignature's key for cb under secrets, "" when none yields it.
func verifiedKey(secrets []string, cb *callback) string {
	verifySignature(secrets, nil, cb)
	return cb.key
}
