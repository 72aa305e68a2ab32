package conformance

import (
	"strings"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// The rows of steps 6 to 8: the signature, freshness and the event.

// stepSignatureCases: step 6, the signature, hex of either case, against every secret.
func stepSignatureCases(now time.Time, secretsFile string) []Case {
	sec := zegotest.Seconds(now)
	mixStop := zegotest.Template("mix_stop.json")
	// A nonce written as a JSON number is signed as its digits.
	bigNonce := zegotest.Fill(`{"event":"room_login","appid":"1","timestamp":{{timestamp}},"nonce":{{nonce}},"signature":"{{signature}}"}`,
		zegotest.Secret, sec, "7257784982359218206")
	return []Case{
		row("6 upper-case hex signature: forwarded", upperSignature(now), ok(nil)),
		configured("6 second of two secrets (rotation): forwarded", map[string]any{"secrets": []string{zegotest.Secret, zegotest.OtherSecret}},
			zegotest.New("mix_stop.json", zegotest.OtherSecret, sec).Body, ok(nil)),
		configured("6 secret from secretsFile: forwarded", map[string]any{"secrets": []string{}, "secretsFile": secretsFile},
			zegotest.New("mix_stop.json", zegotest.OtherSecret, sec).Body, ok(nil)),
		row("6 19-digit nonce as a JSON number: forwarded", bigNonce, ok(map[string][]string{"X-Zego-Nonce": {"7257784982359218206"}})),
		row("6 signed with another secret: 401", forged(now), rejected(401, "invalid_signature")),
		row("6 signature of 3 characters: 401", zegotest.FillSigned(mixStop, sec, "1", "abc"), rejected(401, "invalid_signature")),
		row("6 signature of 40 z's: 401", zegotest.FillSigned(mixStop, sec, "1", strings.Repeat("z", 40)), rejected(401, "invalid_signature")),
		row("6 nonce changed after signing: 401",
			zegotest.FillSigned(mixStop, sec, "12", zegotest.Sign(zegotest.Secret, sec, "13")), rejected(401, "invalid_signature")),
	}
}

// stepFreshnessCases: step 7, the timestamp within timestampTolerance of now, in
// timestampUnit, whatever its digit count.
func stepFreshnessCases(now time.Time) []Case {
	msUnit := map[string]any{"timestampUnit": "milliseconds"}
	other := map[string]any{"secrets": []string{zegotest.OtherSecret}}
	stale := func(body []byte) Step { return withBody(rejected(401, "stale_timestamp"), body) }
	secondsAgo := func(d time.Duration) []byte {
		return zegotest.New("mix_stop.json", zegotest.Secret, zegotest.Seconds(now.Add(-d))).Body
	}
	millisAgo := func(d time.Duration) []byte {
		return zegotest.New("ai_agent.json", zegotest.Secret, zegotest.Millis(now.Add(-d))).Body
	}
	shifted := digitShift(now)
	review := map[int]shiftPair{1: shiftToNow(now, 1), 2: shiftToNow(now, 2), 3: shiftToNow(now, 3), 4: shiftToNow(now, 4)}
	msShift := shiftMillisToNonce(now)
	return []Case{
		// The clock moves on between signing and checking (a second boundary, a loaded CI
		// machine, Traefik in between): these rows keep 3 s (seconds) and 2 s
		// (milliseconds) from the boundary. The exact boundaries, and tolerance +/- 1 s,
		// are tested with a fixed clock in the plugin's own tests.
		row("7 seconds, 303 s old: 401", secondsAgo(303*time.Second), rejected(401, "stale_timestamp")),
		row("7 seconds, 297 s old: forwarded", secondsAgo(297*time.Second), ok(nil)),
		row("7 seconds, 303 s ahead: 401", secondsAgo(-303*time.Second), rejected(401, "stale_timestamp")),
		row("7 seconds, 297 s ahead: forwarded", secondsAgo(-297*time.Second), ok(nil)),
		{Desc: "7 milliseconds, 302 s old: 401", Config: msUnit, Steps: one(millisAgo(302*time.Second), rejected(401, "stale_timestamp"))},
		{Desc: "7 milliseconds, 298 s old: forwarded", Config: msUnit, Steps: one(millisAgo(298*time.Second), ok(nil))},
		{Desc: "7 milliseconds, 302 s ahead: 401", Config: msUnit, Steps: one(millisAgo(-302*time.Second), rejected(401, "stale_timestamp"))},
		{Desc: "7 milliseconds, 298 s ahead: forwarded", Config: msUnit, Steps: one(millisAgo(-298*time.Second), ok(nil))},
		configured("7 timestampTolerance 10s, 11 s old: 401", map[string]any{"timestampTolerance": "10s"},
			secondsAgo(11*time.Second), rejected(401, "stale_timestamp")),
		row(`7 timestamp "0": 401`, zegotest.New("mix_stop.json", zegotest.Secret, "0").Body, rejected(401, "stale_timestamp")),
		row(`7 timestamp "99999999999999999999" (past 64 bits): 401`,
			zegotest.New("mix_stop.json", zegotest.Secret, "99999999999999999999").Body, rejected(401, "stale_timestamp")),

		// The digit shifts (digitshift.go): the same signature over digits moved between
		// the nonce and the timestamp. Each holds at any date.
		//
		// Digits moved from the nonce to a fresh seconds timestamp, after its delivery:
		// a 13-digit timestamp on a seconds route is stale.
		{Desc: "7 nonce digits moved to a delivered timestamp: 13 digits, 401",
			Store:  true,
			Config: other,
			Steps:  []Step{Delivered(shifted.original), {Req: Request{Body: shifted.moved}, Status: 401, Code: "stale_timestamp"}}},
		// The hostile review's digit shift: a seconds callback whose nonce's last 3
		// digits, moved before its timestamp, read as now in milliseconds: both stale
		// on a seconds route.
		{Desc: "7 the review's digit shift, 3 digits: 401 on a seconds route",
			Config: other,
			Steps:  []Step{stale(review[3].original), stale(review[3].moved)}},
		{Desc: "7 the review's digit shift, 1, 2 and 4 digits: 401",
			Config: other,
			Steps:  []Step{stale(review[1].moved), stale(review[2].moved), stale(review[4].moved)}},
		// A milliseconds callback, delivered, with its timestamp's last digits moved to
		// the nonce: stale on a milliseconds route.
		{Desc: "7 ms timestamp's last digits moved to the nonce: 401",
			Config: map[string]any{"secrets": []string{zegotest.OtherSecret}, "timestampUnit": "milliseconds"},
			Steps:  []Step{Delivered(msShift.original), stale(msShift.moved)}},
	}
}

// stepEventCases: step 8, the event against events, whatever its spelling.
func stepEventCases(now time.Time) []Case {
	sec, ms := zegotest.Seconds(now), zegotest.Millis(now)
	eventTypeOther := signed(`{"AppId":1,"EventType":4,"Nonce":"{{nonce}}","Timestamp":{{timestamp}},"Signature":"{{signature}}"}`, sec)
	return []Case{
		configured("8 event in events: forwarded", map[string]any{"events": []string{"mix_start", "mix_stop"}}, mixNow(now), ok(nil)),
		configured("8 event not in events: 403", map[string]any{"events": []string{"room_create"}}, mixNow(now), rejected(403, "event_not_allowed")),
		configured("8 no event, events set: 403", map[string]any{"events": []string{"room_create"}},
			signed(`{"timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec), rejected(403, "event_not_allowed")),
		configured("8 PascalCase Event in events: forwarded", map[string]any{"events": []string{"AgentSpeakAction"}, "timestampUnit": "milliseconds"},
			zegotest.New("ai_agent.json", zegotest.Secret, ms).Body, ok(nil)),
		configured("8 EventType not in events: 403", map[string]any{"events": []string{"3"}}, eventTypeOther, rejected(403, "event_not_allowed")),
	}
}

// upperSignature is a mix_stop whose signature is written in upper-case hex.
func upperSignature(now time.Time) []byte {
	ts, nonce := zegotest.Seconds(now), zegotest.Nonce()
	return zegotest.FillSigned(zegotest.Template("mix_stop.json"), ts, nonce, strings.ToUpper(zegotest.Sign(zegotest.Secret, ts, nonce)))
}
