package conformance

import (
	"net/url"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// The rows of step 5: the body's kind, the named fields under each product's spelling,
// and the bodies refused as malformed.

// stepBodyKindCases: the kind of body is told by its first byte after JSON white space,
// whatever the Content-Type says, and it is forwarded as received.
func stepBodyKindCases(now time.Time) []Case {
	sec := zegotest.Seconds(now)
	form := zegotest.New("stream_create.form", zegotest.Secret, sec).Body
	encoded := []byte(url.QueryEscape(string(mixNow(now))))
	spaced := append([]byte("\r\n\n \t"), mixNow(now)...)
	spacedEncoded := append([]byte("\n "), url.QueryEscape(string(mixNow(now)))...)
	// A JSON body after a newline, whose string holds what a form reading would take for
	// the signed fields and another event: JSON decides, as every JSON parser reads it.
	formInString := func() []byte {
		ts, nonce := sec, zegotest.Nonce()
		sig := zegotest.Sign(zegotest.Secret, ts, nonce)
		return []byte("\n" + `{"event":"room_create","note":"&signature=` + sig + `&timestamp=` + ts + `&nonce=` + nonce + `&event=mix_start&x=","timestamp":"` + ts + `","nonce":"` + nonce + `","signature":"` + sig + `"}`)
	}()
	return []Case{
		{Desc: "5 form: forwarded, values URL-decoded",
			Steps: one(form, ok(map[string][]string{
				"X-Zego-Verified": {"true"}, "X-Zego-Event": {"stream_create"}, "X-Zego-Publish-Name": {"Alice & Bob"},
			}, "X-Zego-Signature"))},
		row("5 URL-encoded JSON (%7B...): forwarded", encoded, ok(map[string][]string{"X-Zego-Verified": {"true"}, "X-Zego-Event": {"mix_start"}})),
		{Desc: "5 JSON sent as a form: read as JSON, forwarded",
			Steps: []Step{withHeader(withBody(ok(map[string][]string{"X-Zego-Event": {"mix_start"}}), mixNow(now)),
				"Content-Type", "application/x-www-form-urlencoded")}},
		row("5 JSON white space before '{': JSON, forwarded as received",
			spaced, ok(map[string][]string{"X-Zego-Event": {"mix_start"}, "X-Zego-Appid": {"111111"}})),
		{Desc: "5 JSON white space before %7B: URL-encoded JSON, forwarded",
			Steps: []Step{withHeader(withBody(ok(map[string][]string{"X-Zego-Event": {"mix_start"}}), spacedEncoded), "Content-Type", "application/x-www-form-urlencoded")}},
		// The JSON's event is the one checked (and announced, in the next row), not the
		// one a form reading of its string would find.
		{Desc: "5 JSON after a newline, form fields in a string: its event, 403",
			Config: map[string]any{"events": []string{"mix_start"}},
			Steps:  one(formInString, rejected(403, "event_not_allowed"))},
		row("5 the same without events: forwarded with the JSON's event",
			append([]byte(nil), formInString...), ok(map[string][]string{"X-Zego-Event": {"room_create"}})),
	}
}

// stepNamedFieldCases: the named fields (event, app id, the signed ones) under the
// spellings of ZEGO's products, as strings or numbers, and under two spellings at once.
func stepNamedFieldCases(now time.Time) []Case {
	sec, ms := zegotest.Seconds(now), zegotest.Millis(now)
	eventTypeNumber := signed(`{"AppId":1,"EventType":3,"Data":{"TaskId":"t"},"Nonce":"{{nonce}}","Timestamp":{{timestamp}},"Signature":"{{signature}}"}`, sec)
	eventTypeSnake := signed(`{"app_id":"1","event_type":2,"detail":{},"nonce":"{{nonce}}","timestamp":"{{timestamp}}","signature":"{{signature}}"}`, sec)
	appIDCaps := signed(`{"AppID":"123","EventType":10001,"Nonce":"{{nonce}}","Timestamp":"{{timestamp}}","Signature":"{{signature}}"}`, sec)
	appidTitle := signed(`{"Appid":"123","Event":"transcode_start","Nonce":"{{nonce}}","Timestamp":"{{timestamp}}","Signature":"{{signature}}"}`, sec)
	return []Case{
		// X-Zego-Event and X-Zego-Event-Type carry the number's digits, and events
		// matches its text.
		{Desc: "5 EventType as a number: its digits, matched by events",
			Config: map[string]any{"events": []string{"3"}},
			Steps: one(eventTypeNumber, ok(map[string][]string{"X-Zego-Event": {"3"}, "X-Zego-Event-Type": {"3"}, "X-Zego-App-Id": {"1"},
				"X-Zego-Timestamp": {sec}}, "X-Zego-Data"))},
		configured("5 cloud recording's event_type and app_id: forwarded", map[string]any{"events": []string{"2"}},
			eventTypeSnake, ok(map[string][]string{"X-Zego-Event": {"2"}, "X-Zego-Event-Type": {"2"}, "X-Zego-App-Id": {"1"}})),
		row("5 cloud player's AppID: forwarded", appIDCaps, ok(map[string][]string{"X-Zego-App-Id": {"123"}, "X-Zego-Event": {"10001"}})),
		row("5 transcoding's Appid: forwarded", appidTitle, ok(map[string][]string{"X-Zego-Appid": {"123"}, "X-Zego-Event": {"transcode_start"}})),
		{Desc: "5 PascalCase AI Agent callback, timestamp in ms: forwarded",
			Config: map[string]any{"timestampUnit": "milliseconds"},
			Steps: one(zegotest.New("ai_agent.json", zegotest.Secret, ms).Body, ok(map[string][]string{
				"X-Zego-Verified":          {"true"},
				"X-Zego-App-Id":            {"1234567890"},
				"X-Zego-Event":             {"AgentSpeakAction"},
				"X-Zego-Room-Id":           {"r" + "oom-7"},
				"X-Zego-Sequence":          {"1912124734317838339"},
				"X-Zego-Agent-Instance-Id": {"1912124734317838336"},
				"X-Zego-Timestamp":         {ms},
			}, "X-Zego-Signature", "X-Zego-Data"))},
		{Desc: "5 room_create, appid and timestamp numbers: forwarded",
			Steps: one(zegotest.New("room_create.json", zegotest.Secret, sec).Body,
				ok(map[string][]string{"X-Zego-Appid": {"111111"}, "X-Zego-Room-Id": {"room-42"}}))},
		malformed("5 event and EventType in one body: 400",
			signed(`{"event":"a","EventType":3,"timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec)),
		malformed("5 Event and event_type in one body: 400",
			signed(`{"Event":"a","event_type":3,"Timestamp":"{{timestamp}}","Nonce":"{{nonce}}","Signature":"{{signature}}"}`, sec)),
		malformed("5 appid and AppId in one body: 400",
			signed(`{"appid":"1","AppId":2,"timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec)),
		malformed("5 EventType neither a string nor a number: 400",
			signed(`{"EventType":true,"Timestamp":"{{timestamp}}","Nonce":"{{nonce}}","Signature":"{{signature}}"}`, sec)),
	}
}

// stepMalformedCases: bodies refused with 400 malformed_body, and a neighbour that is not.
func stepMalformedCases(now time.Time) []Case {
	sec := zegotest.Seconds(now)
	return []Case{
		malformed("5 empty body: 400", []byte{}),
		malformed("5 broken JSON: 400", []byte(`{"signature":`)),
		malformed("5 JSON array: 400", []byte(`[1,2]`)),
		malformed("5 key twice: 400",
			signed(`{"event":"mix_start","event":"room_close","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec)),
		malformed("5 key twice, once escaped: 400",
			signed(`{"event":"a","\u0065vent":"b","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec)),
		row("5 escaped key, no duplicate: forwarded",
			signed(`{"\u0065vent":"mix_start","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec), ok(map[string][]string{"X-Zego-Event": {"mix_start"}})),
		malformed("5 signature and Signature, no event: 400", bothSpellings(now)),
		malformed("5 no nonce: 400", signed(`{"event":"x","timestamp":"{{timestamp}}","signature":"{{signature}}"}`, sec)),
		malformed("5 empty timestamp: 400", []byte(`{"timestamp":"","nonce":"1","signature":"`+zegotest.Sign(zegotest.Secret, "", "1")+`"}`)),
		malformed("5 timestamp 1e9: 400", signed(`{"timestamp":{{timestamp}},"nonce":"{{nonce}}","signature":"{{signature}}"}`, "1e9")),
		malformed("5 timestamp with a sign: 400", signed(`{"timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, "+"+sec)),
		malformed("5 timestamp with a leading space: 400", signed(`{"timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, " "+sec)),
		malformed("5 signature an object: 400", []byte(`{"timestamp":"1","nonce":"1","signature":{}}`)),
		malformed("5 invalid UTF-8 in JSON: 400", []byte("{\"event\":\"\xff\",\"timestamp\":\"1\",\"nonce\":\"1\",\"signature\":\"a\"}")),
		malformed("5 form, a signed field twice: 400", []byte("timestamp="+sec+"&nonce=1&nonce=2&signature="+zegotest.Sign(zegotest.Secret, sec, "1"))),
		malformed("5 form, a bad escape: 400", []byte("event=%zz&timestamp=1")),
	}
}

// bothSpellings is a callback that carries its signature as signature and as Signature.
func bothSpellings(now time.Time) []byte {
	ts, nonce := zegotest.Seconds(now), zegotest.Nonce()
	sig := zegotest.Sign(zegotest.Secret, ts, nonce)
	return []byte(`{"timestamp":"` + ts + `","nonce":"` + nonce + `","signature":"` + sig + `","Signature":"` + sig + `"}`)
}
