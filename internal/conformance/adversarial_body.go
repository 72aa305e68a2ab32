package conformance

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// The hostile rows of step 5: bodies built to cost, to be read otherwise, or to slip a
// field past the reading. The large ones are huge's, which AdversarialCases runs first.

// hostileDepthCases: nesting, which encoding/json refuses past 10 000 levels,
// iteratively; and long numbers.
func hostileDepthCases(now time.Time) []Case {
	sec := zegotest.Seconds(now)
	return []Case{
		malformed("5 100 000 nested arrays in a field: 400", signed(`{"event":"x","deep":`+deepArrays+`,`+signedTail+`}`, sec)),
		malformed("5 10 001 nested objects in a field: 400",
			signed(`{"event":"x","deep":`+strings.Repeat(`{"a":`, 10001)+`1`+strings.Repeat(`}`, 10001)+`,`+signedTail+`}`, sec)),
		malformed("5 100 000 arrays opened, never closed: 400", signed(`{"event":"x",`+signedTail+`,"deep":`+strings.Repeat("[", 100000)+`}`, sec)),
		{Desc: "5 9 998 nested arrays, within the limit: forwarded, no header",
			Steps: one(signed(`{"event":"x","deep":`+strings.Repeat("[", 9998)+strings.Repeat("]", 9998)+`,`+signedTail+`}`, sec),
				ok(map[string][]string{"X-Zego-Event": {"x"}}, "X-Zego-Deep"))},
		row("5 900 KB number within maxBodyBytes: forwarded, no header",
			signed(`{"event":"x","big":`+bigDigits+`,`+signedTail+`}`, sec), ok(map[string][]string{"X-Zego-Event": {"x"}}, "X-Zego-Big")),
	}
}

// hostileKeyCountCases: many keys. A body may hold 10 000 (checking it for a repeated
// key costs in proportion, before its signature can be checked); the named fields and
// the first maxHeaderFields others by name become headers, no more. The limit holds
// however the keys are spaced or escaped, and refuses before the signature is looked at:
// 400 with no secret, at a cost that follows the bytes.
func hostileKeyCountCases(now time.Time) []Case {
	sec := zegotest.Seconds(now)
	// The first 64 of 100 000 keys by name, each with its last digit.
	firstKeys := map[string][]string{"X-Zego-Verified": {"true"}, "X-Zego-Event": {"x"}, "X-Zego-Timestamp": {sec}}
	for i := 0; i < 64; i++ {
		firstKeys[fmt.Sprintf("X-Zego-%05d", i)] = []string{strconv.Itoa(i % 10)}
	}
	withKeys := func(keys string) []byte { return signed(`{`+keys+`,"event":"x",`+signedTail+`}`, sec) }
	return []Case{
		// Forwarded with the named fields and the first 64 others by name as headers.
		row("5 9 000 top-level keys: forwarded, the first 64 as headers", withKeys(someKeys), ok(firstKeys, "X-Zego-00064", "X-Zego-08999")),
		malformed("5 9 000 top-level keys, one twice: 400", signed(`{`+someKeys+`,"event":"x",`+signedTail+`,"05432":"again"}`, sec)),
		// Too many keys to walk one by one.
		malformed("5 9 000 top-level keys, one escaped: 400", signed(`{`+someKeys+`,"\u0065vent":"x",`+signedTail+`}`, sec)),
		// Few enough for the exact walk.
		row("5 990 top-level keys, one escaped: forwarded",
			signed(`{`+fewKeys+`,"\u0065vent":"x",`+signedTail+`}`, sec), ok(map[string][]string{"X-Zego-00000": {"0"}, "X-Zego-Event": {"x"}})),
		malformed("5 990 top-level keys, one escaped, one twice: 400", signed(`{`+fewKeys+`,"\u0065vent":"x","00012":1,`+signedTail+`}`, sec)),
		// More keys than a body may have.
		malformed("5 100 000 top-level keys: 400", withKeys(manyKeys)),
		malformed("5 100 000 top-level keys, one escaped: 400 before any key walk", signed(`{`+manyKeys+`,"\u0065vent":"x",`+signedTail+`}`, sec)),

		malformed(`5 10 001 keys written "k" :1, forged: 400 before the signature`,
			[]byte(`{`+spacedKeys+`,"event":"x","timestamp":"1","nonce":"1","signature":"`+strings.Repeat("0", 40)+`"}`)),
		malformed("5 10 001 keys, a tab before each colon: 400", withKeys(tabbedKeys)),
		malformed("5 10 001 keys, CRLF and a space before each colon: 400", withKeys(newlineKeys)),
		malformed("5 10 001 keys, each written with an escape: 400", withKeys(escapedKeys)),
		malformed("5 10 001 spaced keys nested in one field: 400", withKeys(nestedSpacedKeys)),
		// Each key ends in an escaped backslash, \\": like an escaped quote: counted
		// exactly.
		malformed(`5 10 001 keys ending in \\: counted exactly, 400`, withKeys(backslashKeys)),
		// Their strings hold 19 980 escaped quotes before colons: counted exactly.
		row(`5 9 990 keys, strings full of \": counted exactly, forwarded`, withKeys(quotedColons), ok(map[string][]string{"X-Zego-Event": {"x"}})),
	}
}

// hostileByteCases: bytes that are not UTF-8 or not JSON, around a signed callback;
// Content-Type headers that say otherwise than the body's first byte.
func hostileByteCases(now time.Time) []Case {
	sec := zegotest.Seconds(now)
	return []Case{
		malformed("5 invalid UTF-8 in a value: 400", signed("{\"event\":\"x\xff\","+signedTail+"}", sec)),
		malformed("5 invalid UTF-8 in a key: 400", signed("{\"event\":\"x\",\"\xfe\xff\":1,"+signedTail+"}", sec)),
		malformed("5 overlong UTF-8 ('/' as C0 AF): 400", signed("{\"event\":\"a\xc0\xafb\","+signedTail+"}", sec)),
		malformed("5 invalid UTF-8 in a form value: 400", signed("event=%FF&timestamp={{timestamp}}&nonce={{nonce}}&signature={{signature}}", sec)),
		malformed("5 NUL byte raw in a JSON string: 400", signed("{\"event\":\"a\x00b\","+signedTail+"}", sec)),
		malformed("5 NUL byte raw between JSON tokens: 400", signed("{\"event\":\"x\",\x00"+signedTail+"}", sec)),
		malformed("5 UTF-8 byte order mark before the JSON object: 400", append([]byte("\xef\xbb\xbf"), signed(hostileX, sec)...)),
		row("5 JSON followed by a newline: forwarded", append(signed(hostileX, sec), "\r\n"...), ok(map[string][]string{"X-Zego-Event": {"x"}})),
		malformed("5 JSON followed by a second object: 400", append(signed(hostileX, sec), `{"event":"y"}`...)),
		{Desc: "5 a second Content-Type header: the body's first byte decides",
			Steps: []Step{withHeaders(withBody(ok(map[string][]string{"X-Zego-Event": {"x"}}), signed(hostileX, sec)),
				map[string][]string{"Content-Type": {"application/x-www-form-urlencoded", "text/plain"}})}},
		{Desc: "5 form body sent as application/json: read as a form",
			Steps: []Step{withHeader(withBody(ok(map[string][]string{"X-Zego-Event": {"stream_create"}}), zegotest.New("stream_create.form", zegotest.Secret, sec).Body),
				"Content-Type", "application/json")}},
	}
}

// hostileTwiceCases: fields twice, or under both spellings.
func hostileTwiceCases(now time.Time) []Case {
	ts, nonce := zegotest.Seconds(now), zegotest.Nonce()
	sig := zegotest.Sign(zegotest.Secret, ts, nonce)
	stale := zegotest.Seconds(now.Add(-time.Hour))
	return []Case{
		malformed("5 signature and Signature, both right: 400",
			[]byte(`{"event":"x","timestamp":"`+ts+`","nonce":"`+nonce+`","signature":"`+sig+`","Signature":"`+sig+`"}`)),
		malformed("5 nonce and Nonce: 400", []byte(`{"event":"x","timestamp":"`+ts+`","nonce":"`+nonce+`","Nonce":"1","signature":"`+sig+`"}`)),
		// Signed for the fresh one.
		malformed("5 timestamp twice, stale then fresh: 400",
			[]byte(`{"event":"x","timestamp":"`+stale+`","timestamp":"`+ts+`","nonce":"`+nonce+`","signature":"`+sig+`"}`)),
		malformed("5 event twice, two values: 400", signed(`{"event":"mix_start","event":"room_close",`+signedTail+`}`, ts)),
		// Refused all the same: the key walk waits for a signature that holds, and this
		// one, signed for the first nonce, does not hold for the last.
		row("6 nonce twice, once escaped, signed for the first: 401",
			[]byte(`{"event":"x","timestamp":"`+ts+`","nonce":"`+nonce+`","\u006e\u006f\u006e\u0063\u0065":"1","signature":"`+sig+`"}`), rejected(401, "invalid_signature")),
		malformed("5 nonce twice, once escaped, signed for the last: 400",
			[]byte(`{"event":"x","timestamp":"`+ts+`","nonce":"9","\u006e\u006f\u006e\u0063\u0065":"`+nonce+`","signature":"`+sig+`"}`)),
		malformed("5 form, event twice: 400", signed("event=a&event=b&timestamp={{timestamp}}&nonce={{nonce}}&signature={{signature}}", ts)),
	}
}

// hostileSignedTextCases: signed fields whose text is not what they must be, each
// signed over exactly its text.
func hostileSignedTextCases(now time.Time) []Case {
	ts, nonce := zegotest.Seconds(now), zegotest.Nonce()
	return []Case{
		malformed("5 timestamp 1e9 as a JSON number: 400", signed(hostileNumberTS, "1e9")),
		malformed(`5 timestamp " 123": 400`, signed(hostileX, " 123")),
		malformed(`5 timestamp "+123": 400`, signed(hostileX, "+123")),
		malformed("5 timestamp -5 as a JSON number: 400", signed(hostileNumberTS, "-5")),
		malformed(`5 timestamp "-5": 400`, signed(hostileX, "-5")),
		malformed("5 timestamp ending in .0: 400", signed(hostileNumberTS, ts+".0")),
		malformed("5 timestamp with a trailing space: 400", signed(hostileX, ts+" ")),
		malformed("5 timestamp in full-width digits: 400", signed(hostileX, "１２３")),
		malformed("5 empty signature: 400", withSignature(ts, nonce, "")),
	}
}
