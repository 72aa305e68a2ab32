package conformance

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// The hostile rows of steps 1 to 4, 6, 7 and 10; those of step 5 are in
// adversarial_body.go.

// signedTail is the signed fields at the end of a hostile JSON body, for signed.
const signedTail = `"timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"`

// hostileX is the smallest signed callback, event x; hostileNumberTS the same with its
// timestamp a JSON number.
const (
	hostileX        = `{"event":"x",` + signedTail + `}`
	hostileNumberTS = `{"event":"x","timestamp":{{timestamp}},"nonce":"{{nonce}}","signature":"{{signature}}"}`
)

// hostileStripCases: step 1, prefix headers however they are written.
func hostileStripCases(now time.Time) []Case {
	sec := zegotest.Seconds(now)
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
	return []Case{
		{Desc: "1 prefix headers in odd case, with _, many times: stripped",
			Steps: []Step{withHeaders(withBody(ok(map[string][]string{"X-Zego-Verified": {"true"}, "X-Zego-Event": {"x"}, "X-Zego-Timestamp": {sec}}, spoofNames...),
				signed(hostileX, sec)), spoofed)}},
		// CGI and PHP read these as the prefix.
		{Desc: "1 prefix headers with '.', '_', '~' or '+' for '-': stripped",
			Steps: []Step{withHeaders(withBody(ok(map[string][]string{"X-Zego-Verified": {"true"}, "X-Zego-Event": {"x"}}, dottedSpoofs...),
				signed(hostileX, sec)), dottedSpoofed)}},
		// The same dotted headers, on a forged callback that reportOnly forwards.
		{Desc: "1 reportOnly, forged, dotted prefix headers: stripped",
			Config: map[string]any{"reportOnly": true},
			Steps: []Step{withHeaders(withBody(ok(map[string][]string{"X-Zego-Verified": {"false"}, "X-Zego-Rejection": {"invalid_signature"}}, dottedSpoofs...),
				forged(now)), dottedSpoofed)}},
		{Desc: "1 prefix headers on a forged callback: 401, not forwarded",
			Steps: []Step{withHeaders(withBody(rejected(401, "invalid_signature"), forged(now)), spoofed)}},
	}
}

// hostileMethodCases: step 2, methods the http.Client can send.
func hostileMethodCases(now time.Time) []Case {
	sec := zegotest.Seconds(now)
	return []Case{
		{Desc: "2 HEAD: 405 with Allow: POST, no body",
			Steps: []Step{{Req: Request{Method: http.MethodHead}, Status: 405, RespHeader: map[string]string{"Allow": "POST", "Content-Type": "application/json"}}}},
		{Desc: "2 OPTIONS: 405 with Allow: POST",
			Steps: []Step{{Req: Request{Method: http.MethodOptions}, Status: 405, Code: "method_not_allowed", RespHeader: map[string]string{"Allow": "POST"}}}},
		{Desc: "2 OPTIONS with a valid callback: 405",
			Steps: []Step{{Req: Request{Method: http.MethodOptions, Body: signed(hostileX, sec)}, Status: 405, Code: "method_not_allowed"}}},
		{Desc: "2 TRACE: 405",
			Steps: []Step{{Req: Request{Method: http.MethodTrace}, Status: 405, Code: "method_not_allowed", RespHeader: map[string]string{"Allow": "POST"}}}},
		// Methods are case-sensitive.
		{Desc: "2 lower-case post: 405",
			Steps: []Step{{Req: Request{Method: "post", Body: signed(hostileX, sec)}, Status: 405, Code: "method_not_allowed"}}},
	}
}

// hostileMediaCases: step 3, a body the middleware would have to decode first.
func hostileMediaCases(now time.Time) []Case {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(signed(hostileX, zegotest.Seconds(now)))
	_ = zw.Close()
	return []Case{
		{Desc: "3 gzip-compressed body: 415, not decompressed",
			Steps: []Step{withHeader(withBody(rejected(415, "unsupported_media_type"), gz.Bytes()), "Content-Encoding", "gzip")}},
	}
}

// hostileSizeCases: step 4, a body past maxBodyBytes (huge's), and chunked framing.
func hostileSizeCases(now time.Time) []Case {
	return []Case{
		row("4 10 MB number with a Content-Length: 413", hugeNumber, rejected(413, "body_too_large")),
		{Desc: "4 10 MB number, chunked: 413",
			Steps: []Step{{Req: Request{Body: hugeNumber, Chunked: true}, Status: 413, Code: "body_too_large"}}},
		{Desc: "4 chunked callback: forwarded with a Content-Length",
			Steps: []Step{{Req: Request{Body: signed(hostileX, zegotest.Seconds(now)), Chunked: true}, Status: 200, Forwarded: true}}},
	}
}

// hostileSignatureCases: step 6, signatures that are not the 40 hex digits expected.
func hostileSignatureCases(now time.Time) []Case {
	ts, nonce := zegotest.Seconds(now), zegotest.Nonce()
	sig := zegotest.Sign(zegotest.Secret, ts, nonce)
	escapedSig := strings.Replace(sig, sig[:1], `\u00`+strconv.FormatInt(int64(sig[0]), 16), 1)
	return []Case{
		row("6 signature of 39 hex digits: 401", withSignature(ts, nonce, sig[:39]), rejected(401, "invalid_signature")),
		row("6 signature of 41 hex digits: 401", withSignature(ts, nonce, sig+"0"), rejected(401, "invalid_signature")),
		row("6 signature written twice over: 401", withSignature(ts, nonce, sig+sig), rejected(401, "invalid_signature")),
		row("6 signature with a non-hex letter: 401", withSignature(ts, nonce, "g"+sig[1:]), rejected(401, "invalid_signature")),
		row("6 signature with 0x in front: 401", withSignature(ts, nonce, "0x"+sig[2:]), rejected(401, "invalid_signature")),
		row("6 signature with a space inside: 401", withSignature(ts, nonce, sig[:20]+" "+sig[21:]), rejected(401, "invalid_signature")),
		row("6 signature as a JSON number: 401",
			[]byte(`{"event":"x","timestamp":"`+ts+`","nonce":"`+nonce+`","signature":1234567890123456789012345678901234567890}`), rejected(401, "invalid_signature")),
		row("6 right signature with a JSON escape: decoded, forwarded",
			withSignature(ts, nonce, escapedSig), ok(map[string][]string{"X-Zego-Event": {"x"}}, "X-Zego-Signature")),
	}
}

// hostileFreshnessCases: step 7, timestamps far out of range, each signed over exactly
// its text.
func hostileFreshnessCases(now time.Time) []Case {
	sec := zegotest.Seconds(now)
	return []Case{
		row("7 timestamp 0: 401", signed(hostileNumberTS, "0"), rejected(401, "stale_timestamp")),
		row("7 timestamp 99999999999999999999: 401", signed(hostileNumberTS, "99999999999999999999"), rejected(401, "stale_timestamp")),
		row(`7 timestamp "18446744073709551616" (2^64): 401`, signed(hostileX, "18446744073709551616"), rejected(401, "stale_timestamp")),
		// Still seconds on a seconds route, whatever its digit count.
		row("7 seconds, leading zeros to 13 digits: forwarded",
			signed(hostileX, strings.Repeat("0", 13-len(sec))+sec), ok(map[string][]string{"X-Zego-Event": {"x"}})),
	}
}

// hostileForwardCases: step 10, fields no header carries as they are, and Expect.
func hostileForwardCases(now time.Time) []Case {
	sec := zegotest.Seconds(now)
	bigNonce := zegotest.Fill(hostileX, zegotest.Secret, sec, strings.Repeat("n", 100<<10))
	return []Case{
		row(`10 escaped \u0000 in a value: its header shows %00`,
			signed(`{"event":"x","publish_name":"a\u0000b\u007f",`+signedTail+`}`, sec), ok(map[string][]string{"X-Zego-Publish-Name": {"a%00b%7F"}})),
		row("10 100 KB field name: forwarded, not made a header",
			signed(`{"event":"x","`+strings.Repeat("k", 100<<10)+`":"v",`+signedTail+`}`, sec), ok(map[string][]string{"X-Zego-Event": {"x"}}, "X-Zego-"+strings.Repeat("K", 100<<10))),
		row("10 100 KB nonce: forwarded, no nonce header",
			bigNonce, ok(map[string][]string{"X-Zego-Event": {"x"}, "X-Zego-Timestamp": {sec}}, "X-Zego-Nonce")),
		// A field EVENT sorting before event, with more fields than maxHeaderFields:
		// X-Zego-Event is the event checked, and the one a Go struct reads (the last).
		{Desc: "10 EVENT sorting before event: X-Zego-Event is the one checked",
			Config: map[string]any{"events": []string{"mix_start"}, "maxHeaderFields": 2},
			Steps: one(signed(`{"A":"1","B":"2","EVENT":"room_close","event":"mix_start",`+signedTail+`}`, sec),
				ok(map[string][]string{"X-Zego-Event": {"mix_start"}, "X-Zego-A": {"1"}, "X-Zego-B": {"2"}}))},
		// Fields spelled like the named ones in other cases or with other separators
		// never write their headers.
		// Other letter cases of a spelling (EVENT, NONCE) are refused at step 6 (foldsApart).
		{Desc: "10 named fields' other spellings: none of their headers",
			Steps: one(signed(`{"Event.Type":"9","TIME.STAMP":"1","time_Stamp":"1","App.Id":"9","event":"mix_start","appid":"1",`+signedTail+`}`, sec),
				ok(map[string][]string{"X-Zego-Event": {"mix_start"}, "X-Zego-Appid": {"1"}, "X-Zego-Timestamp": {sec}},
					"X-Zego-Event-Type", "X-Zego-App-Id", "X-Zego-Time-Stamp"))},
		// CGI reads both as HTTP_X_ZEGO_TASK_ID.
		{Desc: "10 task.id next to task_id: both left out",
			Steps: one(signed(`{"event":"x","task_id":"1111:1","task.id":"9999:9","Room.ID":"r","RoomID":"s",`+signedTail+`}`, sec),
				ok(map[string][]string{"X-Zego-Event": {"x"}}, "X-Zego-Task-Id", "X-Zego-Task.id", "X-Zego-Room-Id", "X-Zego-Room.id"))},
		{Desc: "10 Expect: 100-continue with a valid callback: forwarded",
			Steps: []Step{withHeader(withBody(ok(map[string][]string{"X-Zego-Event": {"x"}}), signed(hostileX, sec)), "Expect", "100-continue")}},
	}
}

// withSignature is a callback with the given signature text over ts and nonce.
func withSignature(ts, nonce, sig string) []byte {
	return []byte(`{"event":"x","timestamp":"` + ts + `","nonce":"` + nonce + `","signature":"` + sig + `"}`)
}
