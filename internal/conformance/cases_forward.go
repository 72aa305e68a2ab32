package conformance

import (
	"net/http"
	"strconv"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// The rows of step 10, forward, annotated, and settle; then the rows of the options that
// concern several steps: the header options and reportOnly.

// stepForwardCases: step 10, the body as received, its fields as headers, and the claim
// settled on the backend's answer.
func stepForwardCases(now time.Time) []Case {
	sec := zegotest.Seconds(now)
	expecting, retried, failed := mixNow(now), mixNow(now), mixNow(now)
	injected := signed(`{"event":"x","publish_name":"a\r\nX-Evil: 1\u0000","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec)
	collide := signed(`{"event":"x","task_id":"a","TaskId":"b","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec)
	kinds := signed(`{"event":"x","RoomID":"r1","live":true,"gone":null,"data":{"k":"v"},"list":[1,"two",null,false],"mixed":[{"a":1}],"verified":"false","Rejection":"none","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec)
	return []Case{
		// Forwarded byte for byte, with its fields as headers.
		{Desc: "10 mix_start: forwarded as received, its fields as headers",
			Steps: one(mixNow(now), ok(map[string][]string{
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
		row("10 control bytes in a value: written as %XX", injected, ok(map[string][]string{"X-Zego-Publish-Name": {"a%0D%0AX-Evil: 1%00"}}, "X-Evil")),
		// Header-Case names, bools, arrays of scalars; null, objects and the
		// middleware's own names left out.
		{Desc: "10 field kinds: scalars and their arrays as headers, others left out",
			Steps: one(kinds, ok(map[string][]string{
				"X-Zego-Room-Id":  {"r1"},
				"X-Zego-Live":     {"true"},
				"X-Zego-List":     {"1", "two", "false"},
				"X-Zego-Verified": {"true"},
			}, "X-Zego-Gone", "X-Zego-Data", "X-Zego-Mixed", "X-Zego-Rejection"))},
		row("10 two fields, one header name: neither copied", collide, ok(map[string][]string{"X-Zego-Event": {"x"}}, "X-Zego-Task-Id")),
		// A client's Expect: 100-continue is answered at the edge, not sent on: the
		// backend's 100 would hide its answer. Delivered once.
		{Desc: "10 Expect: 100-continue: answered at the edge, not sent on",
			Store: true,
			Steps: []Step{withHeader(withBody(ok(nil, "Expect"), expecting), "Expect", "100-continue"), withHeader(Acked(expecting), "Expect", "100-continue")}},
		// A failed delivery is forgotten: ZEGO's retry gets through, then it is a
		// duplicate.
		{Desc: "10 backend's 5xx: claim forgotten, the retry delivered",
			Store: true,
			Steps: []Step{
				{Req: Request{Body: retried}, Backend: 500, Status: 500, Forwarded: true},
				{Req: Request{Body: retried}, Backend: 503, Status: 503, Forwarded: true},
				Delivered(retried),
				Acked(retried),
			}},
		{Desc: "10 backend's 4xx: a failed delivery too",
			Store: true,
			Steps: []Step{
				{Req: Request{Body: failed}, Backend: 404, Status: 404, Forwarded: true},
				Delivered(failed),
			}},
	}
}

// headerOptionCases: the options that shape step 10's headers.
func headerOptionCases(now time.Time) []Case {
	sec := zegotest.Seconds(now)
	return []Case{
		{Desc: "10 fields: only the headers it names",
			Config: map[string]any{"fields": []string{"event", "appid", "task_id"}},
			Steps: one(mixNow(now), ok(map[string][]string{
				"X-Zego-Event": {"mix_start"}, "X-Zego-Appid": {"111111"}, "X-Zego-Task-Id": {"111111:1111"}, "X-Zego-Verified": {"true"},
			}, "X-Zego-Seq", "X-Zego-Rtmp-Urls", "X-Zego-Nonce"))},
		// Names past the cache of names (512) have no number in it: the plain reading
		// leaves them to the key check at step 6, which tells them apart by their text.
		{Desc: "10 fields of 601 names: those past the cache written and checked",
			Config: map[string]any{"fields": manyFields(600)},
			Steps: []Step{
				withBody(ok(map[string][]string{"X-Zego-Event": {"x"}, "X-Zego-F0": {"first"}, "X-Zego-F599": {"last"}, "X-Zego-F598": {"b"}},
					"X-Zego-Other", "X-Zego-Nonce"),
					signed(`{"event":"x","f0":"first","f598":"b","f599":"last","other":"o","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec)),
				withBody(rejected(400, "malformed_body"),
					signed(`{"event":"x","f599":"a","f598":"b","f599":"c","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec)),
			}},
		{Desc: "10 headerPrefix X-Callback-: its headers, its spoofs stripped",
			Config: map[string]any{"headerPrefix": "X-Callback-"},
			Steps: []Step{withHeader(withBody(ok(map[string][]string{"X-Callback-Verified": {"true"}, "X-Callback-Event": {"mix_start"}},
				"X-Zego-Verified", "X-Callback-Spoof"), mixNow(now)), "X-Callback-Spoof", "1")}},
		configured("10 maxHeaderValueBytes: longer values in the body only", map[string]any{"maxHeaderValueBytes": len("111111:1111")},
			mixNow(now), ok(map[string][]string{"X-Zego-Task-Id": {"111111:1111"}, "X-Zego-Event": {"mix_start"}}, "X-Zego-Mix-Url", "X-Zego-Rtmp-Urls")),
		// maxHeaderFields takes the other fields in name order, after the named ones.
		{Desc: "10 maxHeaderFields 2: the named fields, then 2 others by name",
			Config: map[string]any{"maxHeaderFields": 2},
			Steps: one(mixNow(now), ok(map[string][]string{"X-Zego-Event": {"mix_start"}, "X-Zego-Appid": {"111111"}, "X-Zego-Timestamp": {sec},
				"X-Zego-Channel-Id": {"2222"}, "X-Zego-Hdl-Url": {"http://hdl.wsdemo.zego.im/zegodemo/aaa.flv"}}, "X-Zego-Hdl-Urls", "X-Zego-Task-Id"))},
	}
}

// reportOnlyCases: reportOnly forwards what it would refuse, marked with the step's
// rejection; each row is numbered by that step.
func reportOnlyCases(now time.Time) []Case {
	reportOnly := map[string]any{"reportOnly": true}
	replayed := mixNow(now)
	reused := reusePair(zegotest.Seconds(now))
	return []Case{
		{Desc: "2 reportOnly, GET: forwarded, marked",
			Config: reportOnly,
			Steps:  []Step{{Req: Request{Method: http.MethodGet}, Status: 200, Forwarded: true, Got: map[string][]string{"X-Zego-Verified": {"false"}, "X-Zego-Rejection": {"method_not_allowed"}}}}},
		configured("4 reportOnly, over maxBodyBytes: still 413", map[string]any{"reportOnly": true, "maxBodyBytes": 100},
			mixNow(now), rejected(413, "body_too_large")),
		configured("5 reportOnly, malformed: forwarded, marked, not annotated", reportOnly,
			[]byte(`{"event":"x"`), ok(map[string][]string{"X-Zego-Verified": {"false"}, "X-Zego-Rejection": {"malformed_body"}}, "X-Zego-Event")),
		{Desc: "6 reportOnly, forged: forwarded, marked",
			Config: reportOnly,
			Steps: one(forged(now), ok(map[string][]string{
				"X-Zego-Verified": {"false"}, "X-Zego-Rejection": {"invalid_signature"}, "X-Zego-Event": {"mix_stop"},
			}))},
		// A key the cache of names does not hold yet, in a plain body: written all the
		// same (reportOnly reads every body the general way).
		configured("6 reportOnly, forged, a name never seen: forwarded, marked, annotated", reportOnly,
			zegotest.Fill(`{"event":"x","never_seen_before":"v","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, "not-the-secret", zegotest.Seconds(now), zegotest.Nonce()),
			ok(map[string][]string{"X-Zego-Verified": {"false"}, "X-Zego-Rejection": {"invalid_signature"}, "X-Zego-Event": {"x"}, "X-Zego-Never-Seen-Before": {"v"}})),
		configured("7 reportOnly, stale: forwarded, marked", reportOnly,
			zegotest.New("mix_stop.json", zegotest.Secret, "1").Body, ok(map[string][]string{"X-Zego-Verified": {"false"}, "X-Zego-Rejection": {"stale_timestamp"}})),
		// A valid callback is verified; its replay is forwarded, marked duplicate.
		{Desc: "9 reportOnly, replay: forwarded, marked duplicate",
			Store:  true,
			Config: reportOnly,
			Steps: []Step{
				withBody(ok(map[string][]string{"X-Zego-Verified": {"true"}}, "X-Zego-Rejection"), replayed),
				withBody(ok(map[string][]string{"X-Zego-Verified": {"false"}, "X-Zego-Rejection": {"duplicate"}, "X-Zego-Duplicate": {"true"}}), replayed),
			}},
		{Desc: "9 reportOnly, another body under a triple: forwarded, marked",
			Store:  true,
			Config: reportOnly,
			Steps: []Step{
				withBody(ok(map[string][]string{"X-Zego-Verified": {"true"}}, "X-Zego-Rejection"), reused.first),
				withBody(ok(map[string][]string{"X-Zego-Verified": {"false"}, "X-Zego-Rejection": {"signature_reused"}}, "X-Zego-Duplicate"), reused.other),
			}},
	}
}

// manyFields is a fields option: event, then f0 to f(n-1).
func manyFields(n int) []string {
	fields := []string{"event"}
	for i := 0; i < n; i++ {
		fields = append(fields, "f"+strconv.Itoa(i))
	}
	return fields
}
