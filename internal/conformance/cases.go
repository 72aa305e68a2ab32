package conformance

import (
	"crypto/sha256"
	"encoding/binary"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// Case is one row of the table: a configuration and the requests sent to one middleware,
// in order, each with what must come of it.
type Case struct {
	Desc   string
	Config map[string]any // over the base: secrets [zegotest.Secret]
	Steps  []Step
	Store  bool // the case exercises the replay store: it runs with each store
}

// Step is one request and what must come of it.
type Step struct {
	Req     Request
	Backend int // the backend's answer for this request (200 when zero)

	Status     int
	Code       string              // the rejection code in the JSON body, "" for none
	Forwarded  bool                // whether the backend got the request
	Got        map[string][]string // headers the backend must get, exactly
	NotGot     []string            // headers the backend must not get
	RespHeader map[string]string   // headers the client must get
}

// Cases returns the table for a clock reading now: build it just before a case runs (see
// CaseAt). secretsFile names a file that holds zegotest.OtherSecret.
func Cases(now time.Time, secretsFile string) []Case {
	sec := zegotest.Seconds(now)
	ms := zegotest.Millis(now)
	mix := func() []byte { return zegotest.New("mix_start.json", zegotest.Secret, sec).Body }

	mixAgain := mix()
	expecting := mix()
	retried := mix()
	form := zegotest.New("stream_create.form", zegotest.Secret, sec).Body
	encoded := []byte(url.QueryEscape(string(mix())))
	bigNonce := zegotest.Fill(`{"event":"room_login","appid":"1","timestamp":{{timestamp}},"nonce":{{nonce}},"signature":"{{signature}}"}`,
		zegotest.Secret, sec, "7257784982359218206")
	aiAgent := zegotest.New("ai_agent.json", zegotest.Secret, ms)
	shifted := digitShift(now)
	toNow := map[int]shiftPair{1: shiftToNow(now, 1), 2: shiftToNow(now, 2), 3: shiftToNow(now, 3), 4: shiftToNow(now, 4)}
	msShift := shiftMillisToNonce(now)
	collide := signed(`{"event":"x","task_id":"a","TaskId":"b","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec)
	injected := signed(`{"event":"x","publish_name":"a\r\nX-Evil: 1\u0000","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec)
	kinds := signed(`{"event":"x","RoomID":"r1","live":true,"gone":null,"data":{"k":"v"},"list":[1,"two",null,false],"mixed":[{"a":1}],"verified":"false","Rejection":"none","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec)

	msUnit := map[string]any{"timestampUnit": "milliseconds"}
	reuse, reuse2, reuse3, reuse4 := reusePair(sec), reusePair(sec), reusePairApart(sec), reusePair(sec)
	spaced := append([]byte("\r\n\n \t"), mix()...)
	spacedEncoded := append([]byte("\n "), url.QueryEscape(string(mix()))...)
	// A JSON body after a newline, whose string holds what a form reading would take for
	// the signed fields and another event: JSON decides, as every JSON parser reads it.
	formInString := func() []byte {
		ts, nonce := sec, zegotest.Nonce()
		sig := zegotest.Sign(zegotest.Secret, ts, nonce)
		return []byte("\n" + `{"event":"room_create","note":"&signature=` + sig + `&timestamp=` + ts + `&nonce=` + nonce + `&event=mix_start&x=","timestamp":"` + ts + `","nonce":"` + nonce + `","signature":"` + sig + `"}`)
	}()
	eventTypeNumber := signed(`{"AppId":1,"EventType":3,"Data":{"TaskId":"t"},"Nonce":"{{nonce}}","Timestamp":{{timestamp}},"Signature":"{{signature}}"}`, sec)
	eventTypeOther := signed(`{"AppId":1,"EventType":4,"Nonce":"{{nonce}}","Timestamp":{{timestamp}},"Signature":"{{signature}}"}`, sec)
	eventTypeSnake := signed(`{"app_id":"1","event_type":2,"detail":{},"nonce":"{{nonce}}","timestamp":"{{timestamp}}","signature":"{{signature}}"}`, sec)
	appIDCaps := signed(`{"AppID":"123","EventType":10001,"Nonce":"{{nonce}}","Timestamp":"{{timestamp}}","Signature":"{{signature}}"}`, sec)
	appidTitle := signed(`{"Appid":"123","Event":"transcode_start","Nonce":"{{nonce}}","Timestamp":"{{timestamp}}","Signature":"{{signature}}"}`, sec)

	return append([]Case{
		{Desc: "valid mix_start: forwarded byte for byte with its fields as headers",
			Steps: one(mix(), ok(map[string][]string{
				"X-Zego-Verified":         {"true"},
				"X-Zego-Event":            {"mix_start"},
				"X-Zego-Appid":            {"111111"},
				"X-Zego-Task-Id":          {"111111:1111"},
				"X-Zego-Channel-Id":       {"2222"},
				"X-Zego-Seq":              {"123"},
				"X-Zego-Timestamp":        {sec},
				"X-Zego-Mix-Stream-Alias": {"aaa"},
				"X-Zego-Rtmp-Urls":        {"rtmp://rtmp.wsdemo.zego.im/zegodemo/aaa", "rtmp://testplay.aliyun.zego.im/livestream/aaa"},
				"X-Zego-Hls-Urls":         {"http://hls.wsdemo.zego.im/zegodemo/aaa/playlist.m3u8", "http://testplay.aliyun.zego.im/livestream/aaa.m3u8"},
			}, "X-Zego-Signature", "X-Zego-Duplicate", "X-Zego-Rejection"))},
		{Desc: "valid form-mode callback, values URL-decoded",
			Steps: one(form, ok(map[string][]string{
				"X-Zego-Verified": {"true"}, "X-Zego-Event": {"stream_create"}, "X-Zego-Publish-Name": {"Alice & Bob"},
			}, "X-Zego-Signature"))},
		row("valid URL-encoded JSON document (%7B...)", encoded, ok(map[string][]string{"X-Zego-Verified": {"true"}, "X-Zego-Event": {"mix_start"}})),
		{Desc: "valid JSON body whatever the Content-Type says",
			Steps: []Step{withHeader(withBody(ok(map[string][]string{"X-Zego-Event": {"mix_start"}}), mix()),
				"Content-Type", "application/x-www-form-urlencoded")}},
		row("JSON white space before '{': read as JSON, forwarded as received",
			spaced, ok(map[string][]string{"X-Zego-Event": {"mix_start"}, "X-Zego-Appid": {"111111"}})),
		{Desc: "JSON white space before a URL-encoded JSON document",
			Steps: []Step{withHeader(withBody(ok(map[string][]string{"X-Zego-Event": {"mix_start"}}), spacedEncoded), "Content-Type", "application/x-www-form-urlencoded")}},
		{Desc: "a JSON body after a newline whose string holds form fields: the JSON's event is the one checked and announced",
			Config: map[string]any{"events": []string{"mix_start"}},
			Steps:  one(formInString, rejected(403, "event_not_allowed"))},
		row("the same, without an allow-list: forwarded with the JSON's event",
			append([]byte(nil), formInString...), ok(map[string][]string{"X-Zego-Event": {"room_create"}})),
		{Desc: "EventType as a number: X-Zego-Event and X-Zego-Event-Type carry its digits, events matches its text",
			Config: map[string]any{"events": []string{"3"}},
			Steps: one(eventTypeNumber, ok(map[string][]string{"X-Zego-Event": {"3"}, "X-Zego-Event-Type": {"3"}, "X-Zego-App-Id": {"1"},
				"X-Zego-Timestamp": {sec}}, "X-Zego-Data"))},
		configured("EventType not in events: 403", map[string]any{"events": []string{"3"}}, eventTypeOther, rejected(403, "event_not_allowed")),
		configured("cloud recording's event_type and app_id", map[string]any{"events": []string{"2"}},
			eventTypeSnake, ok(map[string][]string{"X-Zego-Event": {"2"}, "X-Zego-Event-Type": {"2"}, "X-Zego-App-Id": {"1"}})),
		row("cloud player's AppID", appIDCaps, ok(map[string][]string{"X-Zego-App-Id": {"123"}, "X-Zego-Event": {"10001"}})),
		row("transcoding's Appid", appidTitle, ok(map[string][]string{"X-Zego-Appid": {"123"}, "X-Zego-Event": {"transcode_start"}})),
		malformed("event and EventType in one body: 400",
			signed(`{"event":"a","EventType":3,"timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec)),
		malformed("Event and event_type in one body: 400",
			signed(`{"Event":"a","event_type":3,"Timestamp":"{{timestamp}}","Nonce":"{{nonce}}","Signature":"{{signature}}"}`, sec)),
		malformed("appid and AppId in one body: 400",
			signed(`{"appid":"1","AppId":2,"timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec)),
		malformed("EventType that is neither a string nor a number: 400",
			signed(`{"EventType":true,"Timestamp":"{{timestamp}}","Nonce":"{{nonce}}","Signature":"{{signature}}"}`, sec)),
		{Desc: "valid PascalCase AI Agent callback, millisecond numeric timestamp",
			Config: map[string]any{"timestampUnit": "milliseconds"},
			Steps: one(aiAgent.Body, ok(map[string][]string{
				"X-Zego-Verified":          {"true"},
				"X-Zego-App-Id":            {"1234567890"},
				"X-Zego-Event":             {"AgentSpeakAction"},
				"X-Zego-Room-Id":           {"r" + "oom-7"},
				"X-Zego-Sequence":          {"1912124734317838339"},
				"X-Zego-Agent-Instance-Id": {"1912124734317838336"},
				"X-Zego-Timestamp":         {ms},
			}, "X-Zego-Signature", "X-Zego-Data"))},
		row("valid callback with a 19-digit numeric nonce, hashed as its digits", bigNonce, ok(map[string][]string{"X-Zego-Nonce": {"7257784982359218206"}})),
		{Desc: "valid room_create with numeric appid and timestamp",
			Steps: one(zegotest.New("room_create.json", zegotest.Secret, sec).Body,
				ok(map[string][]string{"X-Zego-Appid": {"111111"}, "X-Zego-Room-Id": {"room-42"}}))},
		row("signature in upper-case hex", upperSignature(now), ok(nil)),
		configured("second of two secrets (rotation)", map[string]any{"secrets": []string{zegotest.Secret, zegotest.OtherSecret}},
			zegotest.New("mix_stop.json", zegotest.OtherSecret, sec).Body, ok(nil)),
		configured("secret from secretsFile", map[string]any{"secrets": []string{}, "secretsFile": secretsFile},
			zegotest.New("mix_stop.json", zegotest.OtherSecret, sec).Body, ok(nil)),
		{Desc: "spoofed prefix headers are stripped, in any case and with underscores",
			Steps: []Step{withHeaders(withBody(ok(map[string][]string{"X-Zego-Event": {"mix_start"}, "X-Zego-Verified": {"true"}},
				"X-Zego-Injected", "X_zego_injected", "X-Zego-Duplicate"), mix()), map[string][]string{
				"x-zego-event":     {"room_close"},
				"X-ZEGO-INJECTED":  {"1"},
				"X_Zego_Injected":  {"1"},
				"X-Zego-Duplicate": {"false"},
				"X-Zego-Verified":  {"true"},
			})}},
		{Desc: "spoofed headers are stripped from rejected requests' logs too: forged and marked verified",
			Steps: []Step{withHeader(withBody(rejected(401, "invalid_signature"), forged(now)), "X-Zego-Verified", "true")}},
		row("control bytes in a value are written as %XX", injected, ok(map[string][]string{"X-Zego-Publish-Name": {"a%0D%0AX-Evil: 1%00"}}, "X-Evil")),
		{Desc: "field kinds: Header-Case names, bools, arrays of scalars; null, objects, own names left out",
			Steps: one(kinds, ok(map[string][]string{
				"X-Zego-Room-Id":  {"r1"},
				"X-Zego-Live":     {"true"},
				"X-Zego-List":     {"1", "two", "false"},
				"X-Zego-Verified": {"true"},
			}, "X-Zego-Gone", "X-Zego-Data", "X-Zego-Mixed", "X-Zego-Rejection"))},
		row("two fields mapping to one header name: neither is copied", collide, ok(map[string][]string{"X-Zego-Event": {"x"}}, "X-Zego-Task-Id")),
		{Desc: "fields option limits the headers",
			Config: map[string]any{"fields": []string{"event", "appid", "task_id"}},
			Steps: one(mix(), ok(map[string][]string{
				"X-Zego-Event": {"mix_start"}, "X-Zego-Appid": {"111111"}, "X-Zego-Task-Id": {"111111:1111"}, "X-Zego-Verified": {"true"},
			}, "X-Zego-Seq", "X-Zego-Rtmp-Urls", "X-Zego-Nonce"))},
		{Desc: "headerPrefix option",
			Config: map[string]any{"headerPrefix": "X-Callback-"},
			Steps: []Step{withHeader(withBody(ok(map[string][]string{"X-Callback-Verified": {"true"}, "X-Callback-Event": {"mix_start"}},
				"X-Zego-Verified", "X-Callback-Spoof"), mix()), "X-Callback-Spoof", "1")}},
		configured("maxHeaderValueBytes leaves long values in the body only", map[string]any{"maxHeaderValueBytes": len("111111:1111")},
			mix(), ok(map[string][]string{"X-Zego-Task-Id": {"111111:1111"}, "X-Zego-Event": {"mix_start"}}, "X-Zego-Mix-Url", "X-Zego-Rtmp-Urls")),
		{Desc: "maxHeaderFields takes the other fields in name order, after the named ones",
			Config: map[string]any{"maxHeaderFields": 2},
			Steps: one(mix(), ok(map[string][]string{"X-Zego-Event": {"mix_start"}, "X-Zego-Appid": {"111111"}, "X-Zego-Timestamp": {sec},
				"X-Zego-Channel-Id": {"2222"}, "X-Zego-Hdl-Url": {"http://hdl.wsdemo.zego.im/zegodemo/aaa.flv"}}, "X-Zego-Hdl-Urls", "X-Zego-Task-Id"))},

		{Desc: "GET gets 405 with Allow: POST",
			Steps: []Step{{Req: Request{Method: http.MethodGet}, Status: 405, Code: "method_not_allowed", RespHeader: map[string]string{"Allow": "POST"}}}},
		{Desc: "PUT with a valid body gets 405",
			Steps: []Step{{Req: Request{Method: http.MethodPut, Body: mix()}, Status: 405, Code: "method_not_allowed"}}},
		configured("body over maxBodyBytes with Content-Length gets 413", map[string]any{"maxBodyBytes": 100}, mix(), rejected(413, "body_too_large")),
		{Desc: "chunked body over maxBodyBytes gets 413",
			Config: map[string]any{"maxBodyBytes": 100},
			Steps:  []Step{{Req: Request{Body: mix(), Chunked: true}, Status: 413, Code: "body_too_large"}}},
		{Desc: "chunked body within the limit is forwarded with a Content-Length",
			Steps: []Step{{Req: Request{Body: mix(), Chunked: true}, Status: 200, Forwarded: true}}},
		configured("body exactly maxBodyBytes is accepted", map[string]any{"maxBodyBytes": len(mixAgain)}, mixAgain, ok(nil)),

		malformed("empty body", []byte{}),
		malformed("broken JSON", []byte(`{"signature":`)),
		malformed("JSON array", []byte(`[1,2]`)),
		malformed("JSON with a key twice",
			signed(`{"event":"mix_start","event":"room_close","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec)),
		malformed("JSON with a key twice, once escaped",
			signed(`{"event":"a","\u0065vent":"b","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec)),
		row("escaped key, no duplicate: accepted",
			signed(`{"\u0065vent":"mix_start","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec), ok(map[string][]string{"X-Zego-Event": {"mix_start"}})),
		malformed("signature and Signature both present", bothSpellings(now)),
		malformed("missing nonce", signed(`{"event":"x","timestamp":"{{timestamp}}","signature":"{{signature}}"}`, sec)),
		malformed("empty timestamp", []byte(`{"timestamp":"","nonce":"1","signature":"`+zegotest.Sign(zegotest.Secret, "", "1")+`"}`)),
		malformed("timestamp 1e9", signed(`{"timestamp":{{timestamp}},"nonce":"{{nonce}}","signature":"{{signature}}"}`, "1e9")),
		malformed("timestamp with a sign", signed(`{"timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, "+"+sec)),
		malformed("timestamp with a space", signed(`{"timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, " "+sec)),
		malformed("signature that is an object", []byte(`{"timestamp":"1","nonce":"1","signature":{}}`)),
		malformed("invalid UTF-8 in JSON", []byte("{\"event\":\"\xff\",\"timestamp\":\"1\",\"nonce\":\"1\",\"signature\":\"a\"}")),
		malformed("form with a signed field twice", []byte("timestamp="+sec+"&nonce=1&nonce=2&signature="+zegotest.Sign(zegotest.Secret, sec, "1"))),
		malformed("form with a bad escape", []byte("event=%zz&timestamp=1")),

		row("signed with another secret", forged(now), rejected(401, "invalid_signature")),
		row("signature of the wrong length", zegotest.FillSigned(zegotest.Template("mix_stop.json"), sec, "1", "abc"), rejected(401, "invalid_signature")),
		row("signature with non-hex characters",
			zegotest.FillSigned(zegotest.Template("mix_stop.json"), sec, "1", strings.Repeat("z", 40)), rejected(401, "invalid_signature")),
		row("nonce changed after signing",
			zegotest.FillSigned(zegotest.Template("mix_stop.json"), sec, "12", zegotest.Sign(zegotest.Secret, sec, "13")), rejected(401, "invalid_signature")),

		// The clock moves on between signing and checking (a second boundary, a loaded CI
		// machine, Traefik in between): these rows keep 3 s (seconds) and 2 s
		// (milliseconds) from the boundary. The exact boundaries, and tolerance +/- 1 s,
		// are tested with a fixed clock in the plugin's own tests.
		row("seconds timestamp 3 s beyond the tolerance in the past", zegotest.New("mix_stop.json", zegotest.Secret, zegotest.Seconds(now.Add(-303*time.Second))).Body, rejected(401, "stale_timestamp")),
		row("seconds timestamp 3 s within the tolerance in the past", zegotest.New("mix_stop.json", zegotest.Secret, zegotest.Seconds(now.Add(-297*time.Second))).Body, ok(nil)),
		row("seconds timestamp 3 s beyond the tolerance in the future", zegotest.New("mix_stop.json", zegotest.Secret, zegotest.Seconds(now.Add(303*time.Second))).Body, rejected(401, "stale_timestamp")),
		row("seconds timestamp 3 s within the tolerance in the future", zegotest.New("mix_stop.json", zegotest.Secret, zegotest.Seconds(now.Add(297*time.Second))).Body, ok(nil)),
		{Desc: "millisecond timestamp 2 s beyond the tolerance in the past", Config: msUnit, Steps: one(zegotest.New("ai_agent.json", zegotest.Secret, zegotest.Millis(now.Add(-302*time.Second))).Body, rejected(401, "stale_timestamp"))},
		{Desc: "millisecond timestamp 2 s within the tolerance in the past", Config: msUnit, Steps: one(zegotest.New("ai_agent.json", zegotest.Secret, zegotest.Millis(now.Add(-298*time.Second))).Body, ok(nil))},
		{Desc: "millisecond timestamp 2 s beyond the tolerance in the future", Config: msUnit, Steps: one(zegotest.New("ai_agent.json", zegotest.Secret, zegotest.Millis(now.Add(302*time.Second))).Body, rejected(401, "stale_timestamp"))},
		{Desc: "millisecond timestamp 2 s within the tolerance in the future", Config: msUnit, Steps: one(zegotest.New("ai_agent.json", zegotest.Secret, zegotest.Millis(now.Add(298*time.Second))).Body, ok(nil))},
		configured("timestamp option 10s, 11 s old", map[string]any{"timestampTolerance": "10s"},
			zegotest.New("mix_stop.json", zegotest.Secret, zegotest.Seconds(now.Add(-11*time.Second))).Body, rejected(401, "stale_timestamp")),
		row("timestamp 0", zegotest.New("mix_stop.json", zegotest.Secret, "0").Body, rejected(401, "stale_timestamp")),
		row("timestamp beyond 64 bits", zegotest.New("mix_stop.json", zegotest.Secret, "99999999999999999999").Body, rejected(401, "stale_timestamp")),

		configured("event in the allow-list", map[string]any{"events": []string{"mix_start", "mix_stop"}}, mix(), ok(nil)),
		configured("event not in the allow-list", map[string]any{"events": []string{"room_create"}}, mix(), rejected(403, "event_not_allowed")),
		configured("no event, allow-list set", map[string]any{"events": []string{"room_create"}},
			signed(`{"timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec), rejected(403, "event_not_allowed")),
		configured("PascalCase Event checked against the allow-list", map[string]any{"events": []string{"AgentSpeakAction"}, "timestampUnit": "milliseconds"},
			zegotest.New("ai_agent.json", zegotest.Secret, ms).Body, ok(nil)),

		{Desc: "replay of a delivered callback: acknowledged with 200, not forwarded",
			Store: true,
			Steps: []Step{Delivered(mixAgain), Acked(mixAgain), Acked(mixAgain)}},
		{Desc: "a client's Expect: 100-continue is answered at the edge, not sent on (the backend's 100 would hide its answer): delivered once",
			Store: true,
			Steps: []Step{withHeader(withBody(ok(nil, "Expect"), expecting), "Expect", "100-continue"), withHeader(Acked(expecting), "Expect", "100-continue")}},
		{Desc: "replay of a delivered callback with duplicates: reject gets 409",
			Store:  true,
			Config: map[string]any{"duplicates": "reject"},
			Steps:  []Step{Delivered(mixAgain), {Req: Request{Body: mixAgain}, Status: 409, Code: "duplicate"}}},
		{Desc: "a replay with an upper-case copy of the signature is another body: 409 signature_reused",
			Store:  true,
			Steps:  []Step{Delivered(shifted.original), {Req: Request{Body: upperCopy(shifted.original)}, Status: 409, Code: "signature_reused"}},
			Config: map[string]any{"secrets": []string{zegotest.OtherSecret}}},
		{Desc: "digits moved from nonce to timestamp (same signature): a 13-digit timestamp on a seconds route is stale",
			Store:  true,
			Config: map[string]any{"secrets": []string{zegotest.OtherSecret}},
			Steps:  []Step{Delivered(shifted.original), {Req: Request{Body: shifted.moved}, Status: 401, Code: "stale_timestamp"}}},
		{Desc: "the hostile review's digit shift: a seconds callback whose nonce's last 3 digits, moved before its timestamp, read as now in milliseconds: stale on a seconds route",
			Config: map[string]any{"secrets": []string{zegotest.OtherSecret}},
			Steps:  []Step{withBody(rejected(401, "stale_timestamp"), toNow[3].original), withBody(rejected(401, "stale_timestamp"), toNow[3].moved)}},
		{Desc: "the same with 1, 2 and 4 digits moved: stale",
			Config: map[string]any{"secrets": []string{zegotest.OtherSecret}},
			Steps: []Step{withBody(rejected(401, "stale_timestamp"), toNow[1].moved), withBody(rejected(401, "stale_timestamp"), toNow[2].moved),
				withBody(rejected(401, "stale_timestamp"), toNow[4].moved)}},
		{Desc: "a milliseconds callback with its timestamp's last digits moved to the nonce: stale on a milliseconds route",
			Config: map[string]any{"secrets": []string{zegotest.OtherSecret}, "timestampUnit": "milliseconds"},
			Steps:  []Step{Delivered(msShift.original), withBody(rejected(401, "stale_timestamp"), msShift.moved)}},
		{Desc: "the same signed triple with another body, once delivered: 409 signature_reused, not forwarded",
			Store: true,
			Steps: []Step{
				withBody(ok(map[string][]string{"X-Zego-Channel-Id": {"2222"}}), reuse.first),
				{Req: Request{Body: reuse.other}, Status: 409, Code: "signature_reused"},
				Acked(reuse.first),
			}},
		{Desc: "with duplicates: reject, another body is still signature_reused",
			Store:  true,
			Config: map[string]any{"duplicates": "reject"},
			Steps: []Step{
				Delivered(reuse2.first),
				{Req: Request{Body: reuse2.other}, Status: 409, Code: "signature_reused"},
				{Req: Request{Body: reuse2.first}, Status: 409, Code: "duplicate"},
			}},
		{Desc: "replayKey signatureAndBody: two bodies under one triple are each forwarded once",
			Store:  true,
			Config: map[string]any{"replayKey": "signatureAndBody"},
			Steps: []Step{
				withBody(ok(map[string][]string{"X-Zego-Channel-Id": {"2222"}}), reuse3.first),
				Delivered(reuse3.other),
				Acked(reuse3.first),
				Acked(reuse3.other),
			}},
		{Desc: "replayKey signatureAndBody: a captured triple carries 16 bodies at most, one per place (the body's SHA-256, its first 8 bytes, modulo 16)",
			Store:  true,
			Config: map[string]any{"replayKey": "signatureAndBody"},
			Steps:  manyBodies(sec, 40)},
		{Desc: "reportOnly: another body under a delivered triple is forwarded, marked signature_reused",
			Store:  true,
			Config: map[string]any{"reportOnly": true},
			Steps: []Step{
				withBody(ok(map[string][]string{"X-Zego-Verified": {"true"}}, "X-Zego-Rejection"), reuse4.first),
				withBody(ok(map[string][]string{"X-Zego-Verified": {"false"}, "X-Zego-Rejection": {"signature_reused"}}, "X-Zego-Duplicate"), reuse4.other),
			}},
		{Desc: "a failed delivery is forgotten: ZEGO's retry gets through, then it is a duplicate",
			Store: true,
			Steps: []Step{
				{Req: Request{Body: retried}, Backend: 500, Status: 500, Forwarded: true},
				{Req: Request{Body: retried}, Backend: 503, Status: 503, Forwarded: true},
				Delivered(retried),
				Acked(retried),
			}},
		{Desc: "a 4xx from the backend is a failed delivery too",
			Store: true,
			Steps: []Step{
				{Req: Request{Body: mixAgain}, Backend: 404, Status: 404, Forwarded: true},
				Delivered(mixAgain),
			}},
		{Desc: "a full store answers 503 and keeps what it has",
			Config: map[string]any{"nonceCapacity": 1},
			Steps: []Step{
				Delivered(mixAgain),
				withBody(rejected(503, "nonce_store_unavailable"), mix()),
				Acked(mixAgain),
			}},

		{Desc: "reportOnly: forged is forwarded, marked",
			Config: map[string]any{"reportOnly": true},
			Steps: one(forged(now), ok(map[string][]string{
				"X-Zego-Verified": {"false"}, "X-Zego-Rejection": {"invalid_signature"}, "X-Zego-Event": {"mix_stop"},
			}))},
		{Desc: "reportOnly: GET is forwarded, marked",
			Config: map[string]any{"reportOnly": true},
			Steps:  []Step{{Req: Request{Method: http.MethodGet}, Status: 200, Forwarded: true, Got: map[string][]string{"X-Zego-Verified": {"false"}, "X-Zego-Rejection": {"method_not_allowed"}}}}},
		configured("reportOnly: malformed is forwarded, marked, not annotated", map[string]any{"reportOnly": true},
			[]byte(`{"event":"x"`), ok(map[string][]string{"X-Zego-Verified": {"false"}, "X-Zego-Rejection": {"malformed_body"}}, "X-Zego-Event")),
		configured("reportOnly: stale is forwarded, marked", map[string]any{"reportOnly": true},
			zegotest.New("mix_stop.json", zegotest.Secret, "1").Body, ok(map[string][]string{"X-Zego-Verified": {"false"}, "X-Zego-Rejection": {"stale_timestamp"}})),
		configured("reportOnly: a body over maxBodyBytes still gets 413", map[string]any{"reportOnly": true, "maxBodyBytes": 100},
			mix(), rejected(413, "body_too_large")),
		{Desc: "reportOnly: valid is verified; its replay is forwarded, marked duplicate",
			Store:  true,
			Config: map[string]any{"reportOnly": true},
			Steps: []Step{
				withBody(ok(map[string][]string{"X-Zego-Verified": {"true"}}, "X-Zego-Rejection"), mixAgain),
				withBody(ok(map[string][]string{"X-Zego-Verified": {"false"}, "X-Zego-Rejection": {"duplicate"}, "X-Zego-Duplicate": {"true"}}), mixAgain),
			}},
	}, ReadingCases(now)...)
}

// CaseAt returns case i of the table, signed now: the time-sensitive rows hold only
// for a second or two after signing.
func CaseAt(i int, secretsFile string) Case {
	return Cases(time.Now(), secretsFile)[i]
}

// signed fills template with ts, a fresh nonce and their signature with zegotest.Secret.
func signed(template, ts string) []byte {
	return zegotest.Fill(template, zegotest.Secret, ts, zegotest.Nonce())
}

// row is a case of the base configuration that sends body once, with what must come of it.
func row(desc string, body []byte, want Step) Case { return Case{Desc: desc, Steps: one(body, want)} }

// configured is a row of config over the base configuration.
func configured(desc string, config map[string]any, body []byte, want Step) Case {
	return Case{Desc: desc, Config: config, Steps: one(body, want)}
}

// malformed is a row whose body is refused with 400 malformed_body.
func malformed(desc string, body []byte) Case {
	return row(desc, body, rejected(400, "malformed_body"))
}

// ok is a step forwarded with 200, the backend getting the headers got and none of notGot.
func ok(got map[string][]string, notGot ...string) Step {
	return Step{Status: 200, Forwarded: true, Got: got, NotGot: notGot}
}

// Delivered is a step whose body is forwarded, and answered 200.
func Delivered(body []byte) Step { return Step{Req: Request{Body: body}, Status: 200, Forwarded: true} }

// Acked is a step whose body was delivered before: acknowledged with 200 and
// X-Zego-Duplicate, not forwarded.
func Acked(body []byte) Step {
	return Step{Req: Request{Body: body}, Status: 200, RespHeader: map[string]string{"X-Zego-Duplicate": "true"}}
}

// rejected is a step refused with status and the rejection code.
func rejected(status int, code string) Step { return Step{Status: status, Code: code} }

// one is the steps of a case that sends body once.
func one(body []byte, want Step) []Step { return []Step{withBody(want, body)} }

func withBody(s Step, body []byte) Step {
	s.Req.Body = body
	return s
}

func withHeader(s Step, name, value string) Step {
	return withHeaders(s, map[string][]string{name: {value}})
}

func withHeaders(s Step, h map[string][]string) Step {
	if s.Req.Header == nil {
		s.Req.Header = map[string][]string{}
	}
	for k, v := range h {
		s.Req.Header[k] = v
	}
	return s
}

// forged is a mix_stop signed with a secret the middleware does not hold.
func forged(now time.Time) []byte {
	return zegotest.New("mix_stop.json", "not-the-secret", zegotest.Seconds(now)).Body
}

func upperSignature(now time.Time) []byte {
	ts, nonce := zegotest.Seconds(now), zegotest.Nonce()
	return zegotest.FillSigned(zegotest.Template("mix_stop.json"), ts, nonce, strings.ToUpper(zegotest.Sign(zegotest.Secret, ts, nonce)))
}

func upperCopy(body []byte) []byte {
	s := string(body)
	i := strings.Index(s, `"signature":"`) + len(`"signature":"`)
	return []byte(s[:i] + strings.ToUpper(s[i:i+40]) + s[i+40:])
}

func bothSpellings(now time.Time) []byte {
	ts, nonce := zegotest.Seconds(now), zegotest.Nonce()
	sig := zegotest.Sign(zegotest.Secret, ts, nonce)
	return []byte(`{"timestamp":"` + ts + `","nonce":"` + nonce + `","signature":"` + sig + `","Signature":"` + sig + `"}`)
}

// reuse is a callback and another body signed with the same triple.
type reuse struct{ first, other []byte }

// reusePairApart is a reusePair whose two bodies fall in different places of
// replayKey signatureAndBody.
func reusePairApart(sec string) reuse {
	first := zegotest.New("mix_start.json", zegotest.Secret, sec).Body
	for i := 0; ; i++ {
		other := bodyWithField(first, "channel_id", "forged-room-"+strconv.Itoa(i))
		if bodyPlace(other) != bodyPlace(first) {
			return reuse{first: first, other: other}
		}
	}
}

// bodyPlace is where replayKey signatureAndBody puts a body among a triple's 16 places,
// as the README states it.
func bodyPlace(body []byte) uint64 {
	sum := sha256.Sum256(body)
	return binary.BigEndian.Uint64(sum[:8]) % 16
}

// manyBodies sends n bodies under one triple: each forwarded if its place is free, else
// 409 signature_reused; then each forwarded one again, acknowledged.
func manyBodies(sec string, n int) []Step {
	first := zegotest.New("mix_start.json", zegotest.Secret, sec).Body
	var steps, replays []Step
	taken := map[uint64]bool{}
	for i := 0; i < n; i++ {
		body := bodyWithField(first, "channel_id", "room-"+strconv.Itoa(i))
		if p := bodyPlace(body); taken[p] {
			steps = append(steps, Step{Req: Request{Body: body}, Status: 409, Code: "signature_reused"})
		} else {
			taken[p] = true
			steps = append(steps, Delivered(body))
			replays = append(replays, Acked(body))
		}
	}
	return append(steps, replays...)
}

func reusePair(sec string) reuse {
	first := zegotest.New("mix_start.json", zegotest.Secret, sec).Body
	return reuse{first: first, other: bodyWithField(first, "channel_id", "forged-room")}
}

type shiftPair struct{ original, moved []byte }

// shiftToNow returns the hostile review's digit shift for the clock reading now: a
// callback in seconds whose nonce ends with the first k digits of now in milliseconds
// and whose timestamp is the rest of them, signed with zegotest.OtherSecret (which
// sorts first), and the same signature over the nonce without those k digits and a
// 13-digit timestamp they start: now, read as milliseconds.
func shiftToNow(now time.Time, k int) shiftPair {
	ms := zegotest.Millis(now)
	head, ts := ms[:k], ms[k:]
	// The nonce must sort after the secret and before both timestamps, so that the
	// signed string stays secret+nonce+timestamp: the first prefix that does.
	for _, prefix := range []string{"002", "0012", "0011300", "10", "0"} {
		nonce := prefix + strings.Repeat("3", 16-len(prefix)) + head
		sig := zegotest.Sign(zegotest.OtherSecret, ts, nonce)
		if zegotest.Sign(zegotest.OtherSecret, head+ts, nonce[:len(nonce)-k]) != sig {
			continue
		}
		tpl := zegotest.Template("mix_stop.json")
		return shiftPair{original: zegotest.FillSigned(tpl, ts, nonce, sig), moved: zegotest.FillSigned(tpl, head+ts, nonce[:len(nonce)-k], sig)}
	}
	panic("conformance: no digit-shifted pair shares a signature at " + ms)
}

// shiftMillisToNonce returns a callback in milliseconds, signed with zegotest.OtherSecret,
// and the same signature with three of the timestamp's digits moved into the nonce: a
// 10-digit timestamp. The last three go to the front of a nonce that sorts after the
// timestamp or, where that would change the order, the first three to the end of one
// that sorts before it.
func shiftMillisToNonce(now time.Time) shiftPair {
	ms := zegotest.Millis(now)
	tpl := zegotest.Template("mix_stop.json")
	shapes := []struct{ nonce, moved, movedNonce string }{
		{"999" + strings.Repeat("1", 16), ms[:len(ms)-3], ms[len(ms)-3:] + "999" + strings.Repeat("1", 16)},
		{"002" + strings.Repeat("1", 16), ms[3:], "002" + strings.Repeat("1", 16) + ms[:3]},
	}
	for _, sh := range shapes {
		sig := zegotest.Sign(zegotest.OtherSecret, ms, sh.nonce)
		if zegotest.Sign(zegotest.OtherSecret, sh.moved, sh.movedNonce) == sig {
			return shiftPair{original: zegotest.FillSigned(tpl, ms, sh.nonce, sig), moved: zegotest.FillSigned(tpl, sh.moved, sh.movedNonce, sig)}
		}
	}
	panic("conformance: no millisecond digit shift shares a signature at " + ms)
}

// digitShift returns a callback in seconds and the same signature over a millisecond
// timestamp that took the nonce's first three digits. With a secret that sorts first
// (zegotest.OtherSecret starts with 0) both sign the same string.
func digitShift(now time.Time) shiftPair {
	ts := zegotest.Seconds(now)
	nonce := "7257784982359218206"
	sig := zegotest.Sign(zegotest.OtherSecret, ts, nonce)
	tpl := zegotest.Template("mix_stop.json")
	moved := zegotest.FillSigned(tpl, ts+nonce[:3], nonce[3:], sig)
	if zegotest.Sign(zegotest.OtherSecret, ts+nonce[:3], nonce[3:]) != sig {
		panic("conformance: the digit-shifted pair does not share a signature")
	}
	return shiftPair{original: zegotest.FillSigned(tpl, ts, nonce, sig), moved: moved}
}
