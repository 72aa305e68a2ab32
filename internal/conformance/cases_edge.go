package conformance

import (
	"net/http"
	"time"
)

// The rows of steps 1 to 4: what is decided before the body is read.

// stepStripCases: step 1, the client's headers with the prefix never reach the backend.
func stepStripCases(now time.Time) []Case {
	return []Case{
		{Desc: "1 spoofed prefix headers, any case, underscores: stripped",
			Steps: []Step{withHeaders(withBody(ok(map[string][]string{"X-Zego-Event": {"mix_start"}, "X-Zego-Verified": {"true"}},
				"X-Zego-Injected", "X_zego_injected", "X-Zego-Duplicate"), mixNow(now)), map[string][]string{
				"x-zego-event":     {"room_close"},
				"X-ZEGO-INJECTED":  {"1"},
				"X_Zego_Injected":  {"1"},
				"X-Zego-Duplicate": {"false"},
				"X-Zego-Verified":  {"true"},
			})}},
		// Stripped from the requests that are refused too, so that their logs do not
		// show them: a forged callback marked verified.
		{Desc: "1 forged, sent with X-Zego-Verified true: 401",
			Steps: []Step{withHeader(withBody(rejected(401, "invalid_signature"), forged(now)), "X-Zego-Verified", "true")}},
	}
}

// stepMethodCases: step 2, only POST.
func stepMethodCases(now time.Time) []Case {
	return []Case{
		{Desc: "2 GET: 405 with Allow: POST",
			Steps: []Step{{Req: Request{Method: http.MethodGet}, Status: 405, Code: "method_not_allowed", RespHeader: map[string]string{"Allow": "POST"}}}},
		{Desc: "2 PUT with a valid body: 405",
			Steps: []Step{{Req: Request{Method: http.MethodPut, Body: mixNow(now)}, Status: 405, Code: "method_not_allowed"}}},
	}
}

// stepSizeCases: step 4, the body, at most maxBodyBytes, with or without a
// Content-Length.
func stepSizeCases(now time.Time) []Case {
	exact := mixNow(now)
	return []Case{
		configured("4 over maxBodyBytes, with a Content-Length: 413", map[string]any{"maxBodyBytes": 100}, mixNow(now), rejected(413, "body_too_large")),
		{Desc: "4 over maxBodyBytes, chunked: 413",
			Config: map[string]any{"maxBodyBytes": 100},
			Steps:  []Step{{Req: Request{Body: mixNow(now), Chunked: true}, Status: 413, Code: "body_too_large"}}},
		{Desc: "4 chunked mix_start: forwarded with a Content-Length",
			Steps: []Step{{Req: Request{Body: mixNow(now), Chunked: true}, Status: 200, Forwarded: true}}},
		configured("4 exactly maxBodyBytes: forwarded", map[string]any{"maxBodyBytes": len(exact)}, exact, ok(nil)),
	}
}
