package conformance

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// requestBudget is how long any one hostile request may take, client to answer: far
// above what the largest takes (a 1 MB body of 100 000 keys, interpreted, with -race),
// far below what work growing with the square of the input would take.
const requestBudget = 8 * time.Second

// The hostile inputs that need no signature are built once per process.
var (
	hugeOnce   sync.Once
	hugeNumber []byte // a 10 MB JSON number in an object: over the default maxBodyBytes
	bigDigits  string // 900 KB of digits: a number within the default maxBodyBytes
	manyKeys   string // 100 000 distinct keys "00000".."99999", each with its last digit, no braces
	someKeys   string // the first 9 000 of them: within the 10 000 keys a body may have
	fewKeys    string // the first 990: within the 1 000 keys walked one by one
	deepArrays string // 100 000 nested arrays
	// Keys spaced or escaped so that `":` does not find them, 10 001 of them: each must
	// still count against the limit, at a cost that follows the body's bytes.
	spacedKeys, tabbedKeys, newlineKeys, escapedKeys, nestedSpacedKeys, backslashKeys string
	// 9 990 keys, each value a string full of `\":`, which counts as a key end: the
	// exact count must tell them from keys and let the body through.
	quotedColons string
)

// keysWith writes n keys "k0".."k<n-1>" with value 1, each key followed by sep before its
// colon, and each name written through name.
func keysWith(n int, sep string, name func(i int) string) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + name(i) + `"` + sep + `:1`)
	}
	return b.String()
}

func huge() {
	hugeOnce.Do(func() {
		hugeNumber = []byte(`{"n":` + strings.Repeat("9", 10<<20) + `}`)
		bigDigits = "1" + strings.Repeat("0", 900<<10)
		var b strings.Builder
		b.Grow(100000 * 10)
		for i := 0; i < 100000; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`"` + fmt.Sprintf("%05d", i) + `":` + strconv.Itoa(i%10))
		}
		manyKeys = b.String()
		someKeys = manyKeys[:strings.Index(manyKeys, `"09000"`)-1]
		fewKeys = manyKeys[:strings.Index(manyKeys, `"00990"`)-1]
		deepArrays = strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
		plainName := func(i int) string { return "k" + strconv.Itoa(i) }
		spacedKeys = keysWith(10001, " ", plainName)
		tabbedKeys = keysWith(10001, "\t", plainName)
		newlineKeys = keysWith(10001, "\r\n ", plainName)
		escapedKeys = keysWith(10001, "", func(i int) string { return `\u006b` + strconv.Itoa(i) })
		nestedSpacedKeys = `"nested" : {` + keysWith(10001, " ", plainName) + `}`
		backslashKeys = keysWith(10001, "", func(i int) string { return "k" + strconv.Itoa(i) + `\\` })
		var q strings.Builder
		for i := 0; i < 9990; i++ {
			q.WriteString(`"q` + strconv.Itoa(i) + `":"a\":b\":c",`)
		}
		quotedColons = strings.TrimSuffix(q.String(), ",")
	})
}

// AdversarialCases returns hostile requests and what each must come to, signed for a
// clock reading now (build them just before they run, as CaseAt does). Where a body is
// signed, it is signed properly, so that the hostile part alone decides. Each status is
// the one README.md's "Each request, in order" and "Status codes" give.
func AdversarialCases(now time.Time) []Case {
	huge()
	sec := zegotest.Seconds(now)
	tail := `"timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"`
	// signedNow signs a template with sec; signed signs it with the timestamp text given,
	// whatever it is.
	signedNow := func(template string) []byte { return signed(template, sec) }
	stringTS := `{"event":"x","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`
	numberTS := `{"event":"x","timestamp":{{timestamp}},"nonce":"{{nonce}}","signature":"{{signature}}"}`

	// The first 64 of 100 000 keys by name, each with its last digit.
	firstKeys := map[string][]string{"X-Zego-Verified": {"true"}, "X-Zego-Event": {"x"}, "X-Zego-Timestamp": {sec}}
	for i := 0; i < 64; i++ {
		firstKeys[fmt.Sprintf("X-Zego-%05d", i)] = []string{strconv.Itoa(i % 10)}
	}
	bigNonce := strings.Repeat("n", 100<<10)
	bigNonceBody := zegotest.Fill(`{"event":"x",`+tail+`}`, zegotest.Secret, sec, bigNonce)
	ts, nonce := sec, zegotest.Nonce()
	sig := zegotest.Sign(zegotest.Secret, ts, nonce)
	escapedSig := strings.Replace(sig, sig[:1], `\u00`+strconv.FormatInt(int64(sig[0]), 16), 1)
	stale := zegotest.Seconds(now.Add(-time.Hour))

	// Headers the middleware sets itself (checked by value) and others (checked absent).
	spoofed := map[string][]string{
		"x-zego-verified": {"true", "true"}, "X-ZEGO-EVENT": {"room_close"}, "x-zego-timestamp": {"1", "2", "3"},
	}
	spoofNames := []string{"X_Zego_Event", "x_zego_verified", "X-zEgO-dUpLiCaTe", "X-Zego-Rejection", "X-Zego-Task-Id", "x-zego-"}
	for _, name := range spoofNames {
		spoofed[name] = []string{"spoofed", "again"}
	}
	for i := 0; i < 100; i++ {
		name := fmt.Sprintf("X-Zego-Spoof-%d", i)
		spoofed[name] = []string{"1", "2"}
		spoofNames = append(spoofNames, name)
	}

	// Prefix headers written so that CGI and PHP, which read '-', '_' and '.' alike, and a
	// lenient proxy, would take them for the middleware's.
	dottedSpoofed := map[string][]string{}
	var dottedSpoofs []string
	for _, name := range []string{"X-Zego.Verified", "X.Zego.Event", "X_Zego.Verified", "x.zego.duplicate", "X~Zego~Event",
		"X+Zego+Appid", "X-Zego-.Event", "X-ZEGO_task.id"} {
		dottedSpoofed[name] = []string{"spoofed"}
		dottedSpoofs = append(dottedSpoofs, name)
	}

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(signedNow(`{"event":"x",` + tail + `}`))
	_ = zw.Close()

	return []Case{
		// Nesting: encoding/json refuses more than 10 000 levels, iteratively.
		malformed("100 000 nested arrays in a field: 400", signedNow(`{"event":"x","deep":`+deepArrays+`,`+tail+`}`)),
		malformed("10 001 nested objects in a field: 400",
			signedNow(`{"event":"x","deep":`+strings.Repeat(`{"a":`, 10001)+`1`+strings.Repeat(`}`, 10001)+`,`+tail+`}`)),
		malformed("100 000 arrays opened, never closed: 400", signedNow(`{"event":"x",`+tail+`,"deep":`+strings.Repeat("[", 100000)+`}`)),
		{Desc: "9 998 nested arrays, within the limit: forwarded, no header for them",
			Steps: one(signedNow(`{"event":"x","deep":`+strings.Repeat("[", 9998)+strings.Repeat("]", 9998)+`,`+tail+`}`),
				ok(map[string][]string{"X-Zego-Event": {"x"}}, "X-Zego-Deep"))},

		// Many keys: a body may hold 10 000 (checking it for a repeated key costs in
		// proportion, before its signature can be checked); the named fields and the
		// first maxHeaderFields others by name become headers, no more.
		row("9 000 top-level keys, signed: forwarded with the named fields and the first 64 others by name as headers",
			signedNow(`{`+someKeys+`,"event":"x",`+tail+`}`), ok(firstKeys, "X-Zego-00064", "X-Zego-08999")),
		malformed("9 000 top-level keys, one of them twice: 400", signedNow(`{`+someKeys+`,"event":"x",`+tail+`,"05432":"again"}`)),
		malformed("9 000 top-level keys, one written with an escape: 400, too many keys to walk one by one",
			signedNow(`{`+someKeys+`,"\u0065vent":"x",`+tail+`}`)),
		row("990 top-level keys, one written with an escape (the exact walk): forwarded",
			signedNow(`{`+fewKeys+`,"\u0065vent":"x",`+tail+`}`), ok(map[string][]string{"X-Zego-00000": {"0"}, "X-Zego-Event": {"x"}})),
		malformed("990 top-level keys, one written with an escape, one twice: 400", signedNow(`{`+fewKeys+`,"\u0065vent":"x","00012":1,`+tail+`}`)),
		malformed("100 000 top-level keys, signed: 400, more keys than a body may have", signedNow(`{`+manyKeys+`,"event":"x",`+tail+`}`)),
		malformed("100 000 top-level keys, one written with an escape: 400 before any key walk", signedNow(`{`+manyKeys+`,"\u0065vent":"x",`+tail+`}`)),

		// The key limit holds however the keys are spaced or escaped, and refuses before
		// the signature is looked at: 400 with no secret, at a cost that follows the bytes.
		malformed("10 001 keys written \"k\" :1, forged: 400 before the signature",
			[]byte(`{`+spacedKeys+`,"event":"x","timestamp":"1","nonce":"1","signature":"`+strings.Repeat("0", 40)+`"}`)),
		malformed("10 001 keys with a tab before the colon: 400", signedNow(`{`+tabbedKeys+`,"event":"x",`+tail+`}`)),
		malformed("10 001 keys with CRLF and a space before the colon: 400", signedNow(`{`+newlineKeys+`,"event":"x",`+tail+`}`)),
		malformed("10 001 keys, each written with an escape: 400", signedNow(`{`+escapedKeys+`,"event":"x",`+tail+`}`)),
		malformed("10 001 spaced keys nested in one field: 400", signedNow(`{`+nestedSpacedKeys+`,"event":"x",`+tail+`}`)),
		malformed("10 001 keys each ending in an escaped backslash (\\\":, like an escaped quote): counted exactly, 400",
			signedNow(`{`+backslashKeys+`,"event":"x",`+tail+`}`)),
		row("9 990 keys whose strings hold 19 980 escaped quotes before colons: counted exactly, forwarded",
			signedNow(`{`+quotedColons+`,"event":"x",`+tail+`}`), ok(map[string][]string{"X-Zego-Event": {"x"}})),

		// Numbers.
		row("10 MB number with a Content-Length: 413", hugeNumber, rejected(413, "body_too_large")),
		{Desc: "10 MB number, chunked: 413",
			Steps: []Step{{Req: Request{Body: hugeNumber, Chunked: true}, Status: 413, Code: "body_too_large"}}},
		row("900 KB number within maxBodyBytes, signed: forwarded, no header for it",
			signedNow(`{"event":"x","big":`+bigDigits+`,`+tail+`}`), ok(map[string][]string{"X-Zego-Event": {"x"}}, "X-Zego-Big")),

		// Bytes.
		malformed("invalid UTF-8 in a value: 400", signedNow("{\"event\":\"x\xff\","+tail+"}")),
		malformed("invalid UTF-8 in a key: 400", signedNow("{\"event\":\"x\",\"\xfe\xff\":1,"+tail+"}")),
		malformed("overlong UTF-8 ('/' as C0 AF): 400", signedNow("{\"event\":\"a\xc0\xafb\","+tail+"}")),
		malformed("invalid UTF-8 in a form value: 400", signed("event=%FF&timestamp={{timestamp}}&nonce={{nonce}}&signature={{signature}}", sec)),
		malformed("NUL byte raw in a JSON string: 400", signedNow("{\"event\":\"a\x00b\","+tail+"}")),
		malformed("NUL byte raw between JSON tokens: 400", signedNow("{\"event\":\"x\",\x00"+tail+"}")),
		row("escaped \\u0000 in a value: forwarded, the header shows %00",
			signedNow(`{"event":"x","publish_name":"a\u0000b\u007f",`+tail+`}`), ok(map[string][]string{"X-Zego-Publish-Name": {"a%00b%7F"}})),
		malformed("UTF-8 byte order mark before the JSON object: 400", append([]byte("\xef\xbb\xbf"), signedNow(`{"event":"x",`+tail+`}`)...)),
		{Desc: "gzip-compressed body: not decompressed, 415",
			Steps: []Step{withHeader(withBody(rejected(415, "unsupported_media_type"), gz.Bytes()), "Content-Encoding", "gzip")}},
		row("a 100 KB field name: forwarded, not made a header",
			signedNow(`{"event":"x","`+strings.Repeat("k", 100<<10)+`":"v",`+tail+`}`), ok(map[string][]string{"X-Zego-Event": {"x"}}, "X-Zego-"+strings.Repeat("K", 100<<10))),
		row("JSON followed by a newline: forwarded", append(signedNow(`{"event":"x",`+tail+`}`), "\r\n"...), ok(map[string][]string{"X-Zego-Event": {"x"}})),
		malformed("JSON followed by a second object: 400", append(signedNow(`{"event":"x",`+tail+`}`), `{"event":"y"}`...)),

		// Fields twice, or under both spellings.
		malformed("signature and Signature both present, both right: 400",
			[]byte(`{"event":"x","timestamp":"`+ts+`","nonce":"`+nonce+`","signature":"`+sig+`","Signature":"`+sig+`"}`)),
		malformed("nonce and Nonce both present: 400", []byte(`{"event":"x","timestamp":"`+ts+`","nonce":"`+nonce+`","Nonce":"1","signature":"`+sig+`"}`)),
		malformed("timestamp twice, stale then fresh, signed for the fresh one: 400",
			[]byte(`{"event":"x","timestamp":"`+stale+`","timestamp":"`+ts+`","nonce":"`+nonce+`","signature":"`+sig+`"}`)),
		malformed("event twice with different values: 400", signedNow(`{"event":"mix_start","event":"room_close",`+tail+`}`)),
		row("nonce twice, once written with escapes: refused (the key walk waits for a signature that holds: 401 here)",
			[]byte(`{"event":"x","timestamp":"`+ts+`","nonce":"`+nonce+`","\u006e\u006f\u006e\u0063\u0065":"1","signature":"`+sig+`"}`), rejected(401, "invalid_signature")),
		malformed("nonce twice, once written with escapes, signed for the last: 400",
			[]byte(`{"event":"x","timestamp":"`+ts+`","nonce":"9","\u006e\u006f\u006e\u0063\u0065":"`+nonce+`","signature":"`+sig+`"}`)),
		malformed("form with event twice: 400", signed("event=a&event=b&timestamp={{timestamp}}&nonce={{nonce}}&signature={{signature}}", sec)),

		// Timestamps, each signed over exactly its text.
		malformed("timestamp 1e9 (a JSON number): 400", signed(numberTS, "1e9")),
		malformed("timestamp \" 123\": 400", signed(stringTS, " 123")),
		malformed("timestamp \"+123\": 400", signed(stringTS, "+123")),
		malformed("timestamp -5 (a JSON number): 400", signed(numberTS, "-5")),
		malformed("timestamp \"-5\": 400", signed(stringTS, "-5")),
		malformed("timestamp 1.0: 400", signed(numberTS, sec+".0")),
		malformed("timestamp with a trailing space: 400", signed(stringTS, sec+" ")),
		malformed("timestamp in full-width digits: 400", signed(stringTS, "１２３")),
		row("timestamp 0: 401 stale", signed(numberTS, "0"), rejected(401, "stale_timestamp")),
		row("timestamp 99999999999999999999: 401 stale", signed(numberTS, "99999999999999999999"), rejected(401, "stale_timestamp")),
		row("timestamp 2^64: 401 stale", signed(stringTS, "18446744073709551616"), rejected(401, "stale_timestamp")),
		row("timestamp in seconds with leading zeros to 13 digits: still seconds on a seconds route, forwarded",
			signed(stringTS, strings.Repeat("0", 13-len(sec))+sec), ok(map[string][]string{"X-Zego-Event": {"x"}})),

		// Nonces and signatures.
		row("nonce of 100 KB, signed: forwarded, no nonce header",
			bigNonceBody, ok(map[string][]string{"X-Zego-Event": {"x"}, "X-Zego-Timestamp": {sec}}, "X-Zego-Nonce")),
		row("signature of 39 hex digits: 401", withSignature(ts, nonce, sig[:39]), rejected(401, "invalid_signature")),
		row("signature of 41 hex digits: 401", withSignature(ts, nonce, sig+"0"), rejected(401, "invalid_signature")),
		row("signature written twice over: 401", withSignature(ts, nonce, sig+sig), rejected(401, "invalid_signature")),
		row("signature with a non-hex letter: 401", withSignature(ts, nonce, "g"+sig[1:]), rejected(401, "invalid_signature")),
		row("signature with 0x in front: 401", withSignature(ts, nonce, "0x"+sig[2:]), rejected(401, "invalid_signature")),
		row("signature with a space inside: 401", withSignature(ts, nonce, sig[:20]+" "+sig[21:]), rejected(401, "invalid_signature")),
		row("signature as a JSON number: 401",
			[]byte(`{"event":"x","timestamp":"`+ts+`","nonce":"`+nonce+`","signature":1234567890123456789012345678901234567890}`), rejected(401, "invalid_signature")),
		malformed("empty signature: 400", withSignature(ts, nonce, "")),
		row("the right signature written with a JSON escape: decoded, forwarded",
			withSignature(ts, nonce, escapedSig), ok(map[string][]string{"X-Zego-Event": {"x"}}, "X-Zego-Signature")),

		// Headers.
		{Desc: "prefix headers in odd case, with underscores and many times: stripped",
			Steps: []Step{withHeaders(withBody(ok(map[string][]string{"X-Zego-Verified": {"true"}, "X-Zego-Event": {"x"}, "X-Zego-Timestamp": {sec}}, spoofNames...),
				signedNow(`{"event":"x",`+tail+`}`)), spoofed)}},
		{Desc: "prefix headers written with '.', '_', '~' or '+' for '-': stripped (CGI and PHP read them as the prefix)",
			Steps: []Step{withHeaders(withBody(ok(map[string][]string{"X-Zego-Verified": {"true"}, "X-Zego-Event": {"x"}}, dottedSpoofs...),
				signedNow(`{"event":"x",`+tail+`}`)), dottedSpoofed)}},
		{Desc: "reportOnly: the same dotted headers are stripped from a forged callback that is forwarded",
			Config: map[string]any{"reportOnly": true},
			Steps: []Step{withHeaders(withBody(ok(map[string][]string{"X-Zego-Verified": {"false"}, "X-Zego-Rejection": {"invalid_signature"}}, dottedSpoofs...),
				forged(now)), dottedSpoofed)}},
		{Desc: "a field EVENT sorting before event, with more fields than maxHeaderFields: X-Zego-Event is the event checked",
			Config: map[string]any{"events": []string{"mix_start"}, "maxHeaderFields": 2},
			Steps: one(signedNow(`{"A":"1","B":"2","EVENT":"room_close","event":"mix_start",`+tail+`}`),
				ok(map[string][]string{"X-Zego-Event": {"mix_start"}, "X-Zego-A": {"1"}, "X-Zego-B": {"2"}}))},
		{Desc: "fields spelled like the named ones in other cases or with other separators never write their headers",
			Steps: one(signedNow(`{"EVENT":"room_close","Event_Type":"9","TIME.STAMP":"1","time_Stamp":"1","NONCE":"1","App.Id":"9","APPID":"9","event":"mix_start","appid":"1",`+tail+`}`),
				ok(map[string][]string{"X-Zego-Event": {"mix_start"}, "X-Zego-Appid": {"1"}, "X-Zego-Timestamp": {sec}},
					"X-Zego-Event-Type", "X-Zego-App-Id", "X-Zego-Time-Stamp"))},
		{Desc: "task.id next to task_id: both left out (CGI reads both as HTTP_X_ZEGO_TASK_ID)",
			Steps: one(signedNow(`{"event":"x","task_id":"1111:1","task.id":"9999:9","Room.ID":"r","RoomID":"s",`+tail+`}`),
				ok(map[string][]string{"X-Zego-Event": {"x"}}, "X-Zego-Task-Id", "X-Zego-Task.id", "X-Zego-Room-Id", "X-Zego-Room.id"))},
		{Desc: "spoofed prefix headers on a forged callback: 401, not forwarded",
			Steps: []Step{withHeaders(withBody(rejected(401, "invalid_signature"), forged(now)), spoofed)}},
		{Desc: "a second Content-Type header: the body's first byte decides",
			Steps: []Step{withHeaders(withBody(ok(map[string][]string{"X-Zego-Event": {"x"}}), signedNow(`{"event":"x",`+tail+`}`)),
				map[string][]string{"Content-Type": {"application/x-www-form-urlencoded", "text/plain"}})}},
		{Desc: "a form body sent as application/json: read as a form",
			Steps: []Step{withHeader(withBody(ok(map[string][]string{"X-Zego-Event": {"stream_create"}}), zegotest.New("stream_create.form", zegotest.Secret, sec).Body),
				"Content-Type", "application/json")}},

		// Methods and framing the http.Client can send.
		{Desc: "HEAD: 405 with Allow: POST and no body",
			Steps: []Step{{Req: Request{Method: http.MethodHead}, Status: 405, RespHeader: map[string]string{"Allow": "POST", "Content-Type": "application/json"}}}},
		{Desc: "OPTIONS: 405 with Allow: POST",
			Steps: []Step{{Req: Request{Method: http.MethodOptions}, Status: 405, Code: "method_not_allowed", RespHeader: map[string]string{"Allow": "POST"}}}},
		{Desc: "OPTIONS with a valid callback: 405",
			Steps: []Step{{Req: Request{Method: http.MethodOptions, Body: signedNow(`{"event":"x",` + tail + `}`)}, Status: 405, Code: "method_not_allowed"}}},
		{Desc: "TRACE: 405",
			Steps: []Step{{Req: Request{Method: http.MethodTrace}, Status: 405, Code: "method_not_allowed", RespHeader: map[string]string{"Allow": "POST"}}}},
		{Desc: "lower-case post (methods are case-sensitive): 405",
			Steps: []Step{{Req: Request{Method: "post", Body: signedNow(`{"event":"x",` + tail + `}`)}, Status: 405, Code: "method_not_allowed"}}},
		{Desc: "Expect: 100-continue with a valid callback: forwarded",
			Steps: []Step{withHeader(withBody(ok(map[string][]string{"X-Zego-Event": {"x"}}), signedNow(`{"event":"x",`+tail+`}`)), "Expect", "100-continue")}},
		{Desc: "chunked body: forwarded with a Content-Length",
			Steps: []Step{{Req: Request{Body: signedNow(`{"event":"x",` + tail + `}`), Chunked: true}, Status: 200, Forwarded: true}}},
	}
}

// withSignature is a callback with the given signature text over ts and nonce.
func withSignature(ts, nonce, sig string) []byte {
	return []byte(`{"event":"x","timestamp":"` + ts + `","nonce":"` + nonce + `","signature":"` + sig + `"}`)
}

// RunAdversarial runs AdversarialCases as RunServeHTTP runs Cases (each signed just
// before it runs, checked by CheckStep), and also checks that no request takes longer
// than requestBudget, that every forwarded request's prefixed headers are within the
// bounds, and that the middleware never panics. Then it runs RawCases.
func RunAdversarial(t *testing.T, build Builder) {
	n := len(AdversarialCases(time.Now()))
	for i := 0; i < n; i++ {
		c := AdversarialCases(time.Now())[i]
		t.Run(c.Desc, func(t *testing.T) {
			config := Config(c.Config)
			srv, g := startGuarded(t, build, config, UniqueName("adversarial"))
			for j, st := range c.Steps {
				label := fmt.Sprintf("request %d", j+1)
				start := time.Now()
				CheckStep(t, label, srv, st)
				if d := time.Since(start); d > requestBudget {
					t.Errorf("%s took %v, budget %v", label, d, requestBudget)
				}
			}
			checkBounds(t, srv.Backend.Calls(), config)
			g.check(t)
		})
	}
	t.Run("raw", func(t *testing.T) { RunRaw(t, build) })
}

// checkBounds checks what the backend got against the header bounds: at most
// maxHeaderFields field headers with the prefix (the middleware's own and the named
// fields' aside), each value
// free of control bytes and within maxHeaderValueBytes before %XX-encoding (so at most
// three times that after), and X-Zego-Verified exactly "true".
func checkBounds(t *testing.T, calls []Received, config map[string]any) {
	t.Helper()
	prefix, fields, value := "X-Zego-", 64, 1024
	if p, ok := config["headerPrefix"].(string); ok {
		prefix = p
	}
	if n, ok := config["maxHeaderFields"].(int); ok {
		fields = n
	}
	if n, ok := config["maxHeaderValueBytes"].(int); ok {
		value = n
	}
	own := map[string]bool{}
	for _, h := range []string{"Verified", "Duplicate", "Rejection", "Event", "Event-Type", "Timestamp", "Nonce", "Appid", "App-Id"} {
		own[http.CanonicalHeaderKey(prefix+h)] = true
	}
	for i, got := range calls {
		n := 0
		for name, vs := range got.Header {
			if len(name) < len(prefix) || !strings.EqualFold(strings.ReplaceAll(name[:len(prefix)], "_", "-"), prefix) {
				continue
			}
			if !own[name] {
				n++
			}
			for _, v := range vs {
				if strings.ContainsAny(v, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f") ||
					len(v) > 3*value {
					t.Errorf("call %d: header %s value %.60q... holds a control byte or is too long", i+1, name, v)
				}
			}
		}
		if n > fields {
			t.Errorf("call %d: %d field headers with the prefix, maxHeaderFields %d", i+1, n, fields)
		}
		want := "true"
		if config["reportOnly"] == true {
			want = "false" // the reportOnly rows here are forged
		}
		if vs := got.Header[http.CanonicalHeaderKey(prefix+"Verified")]; len(vs) != 1 || vs[0] != want {
			t.Errorf("call %d: %sVerified = %q, want exactly %s", i+1, prefix, vs, want)
		}
	}
}

// guard records panics in the middleware and counts the requests it has finished.
type guard struct {
	mu     sync.Mutex
	panics []string
	served chan struct{}
}

// startGuarded is Start with the middleware wrapped in a guard.
func startGuarded(t *testing.T, build Builder, config map[string]any, name string) (*Server, *guard) {
	t.Helper()
	srv := Start(t, build, config, name)
	g := &guard{served: make(chan struct{}, 64)}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	h := srv.h
	srv.h = http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		defer func() {
			r := recover()
			select {
			case g.served <- struct{}{}:
			default:
			}
			if r != nil {
				if r != http.ErrAbortHandler { //nolint:errorlint // a panic value, compared as net/http does
					g.mu.Lock()
					g.panics = append(g.panics, fmt.Sprintf("%v\n%s", r, debug.Stack()))
					g.mu.Unlock()
				}
				panic(r)
			}
		}()
		h.ServeHTTP(rw, req)
	})
	return srv, g
}

// check fails the test for every panic the guard saw.
func (g *guard) check(t *testing.T) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range g.panics {
		t.Errorf("the middleware panicked: %s", p)
	}
}

// waitServed waits until the middleware has finished n requests, at most d.
func (g *guard) waitServed(t *testing.T, n int, d time.Duration) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for i := 0; i < n; i++ {
		select {
		case <-g.served:
		case <-deadline.C:
			t.Fatalf("the middleware finished %d of %d requests within %v", i, n, d)
		}
	}
}
