package conformance

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// ReadingCases are the shapes of request that a backend could read otherwise than the
// middleware (another event, other signed fields), found by putting PHP and Node
// backends behind it, and their neighbours; and the genuine shapes, which both must
// read alike. Each is signed with a fresh triple: a body forgery, which the unsigned
// body allows, so what a row checks is that the forgery cannot pass the events list or
// make the headers lie. A row that forwards expects mix_start to be announced, the
// event the middleware checked.
func ReadingCases(now time.Time) []Case {
	sec := zegotest.Seconds(now)
	form := "application/x-www-form-urlencoded"
	signedForm := func(extra string) []byte {
		return signed("appid=111111&event=mix_start&task_id=111111%3A1111&timestamp={{timestamp}}&nonce={{nonce}}&signature={{signature}}"+extra, sec)
	}
	// other is a second signed triple that a smuggled reading would carry.
	otherTS, otherNonce := sec, zegotest.Nonce()
	otherSig := zegotest.Sign(zegotest.Secret, otherTS, otherNonce)
	smuggled := "&event=room_login&signature=" + otherSig + "&timestamp=" + otherTS + "&nonce=" + otherNonce + "&"
	jsonWith := func(note string) []byte {
		return signed(`{"appid":"111111","event":"mix_start","note":"`+note+`","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec)
	}
	mix := func() []byte { return zegotest.New("mix_start.json", zegotest.Secret, sec).Body }
	announced := map[string][]string{"X-Zego-Event": {"mix_start"}, "X-Zego-Appid": {"111111"}, "X-Zego-Verified": {"true"}}
	allow := map[string]any{"events": []string{"mix_start"}}
	// read is a row of the allow-list, which sends body with headers once: a forwarded one
	// must announce mix_start.
	read := func(desc string, body []byte, headers map[string][]string, status int, code string) Case {
		st := Step{Req: Request{Body: body, Header: headers}, Status: status, Code: code}
		if status == http.StatusOK {
			st.Forwarded = true
			st.Got = announced
		}
		return Case{Desc: desc, Config: allow, Steps: []Step{st}}
	}
	ct := func(v string) map[string][]string { return map[string][]string{"Content-Type": {v}} }
	with := func(h map[string][]string, k, v string) map[string][]string {
		out := map[string][]string{k: {v}}
		for name, vs := range h {
			out[name] = vs
		}
		return out
	}

	var deflated, gzipped bytes.Buffer
	fw, _ := flate.NewWriter(&deflated, flate.BestCompression)
	_, _ = fw.Write(signedForm(""))
	_ = fw.Close()
	gw := gzip.NewWriter(&gzipped)
	_, _ = gw.Write(mix())
	_ = gw.Close()
	multipartBody := signedForm("\r\n--b\r\nContent-Disposition: form-data; name=\"event\"\r\n\r\nroom_login\r\n--b--\r\n")
	manyFields := func(n int) []byte {
		var b strings.Builder
		for i := 0; i < n-6; i++ {
			b.WriteString("f" + strconv.Itoa(i) + "=1&")
		}
		return signed(b.String()+"appid=111111&event=mix_start&task_id=1&timestamp={{timestamp}}&nonce={{nonce}}&signature={{signature}}", sec)
	}

	return []Case{
		// Genuine shapes, which every backend must read as the middleware did.
		read("genuine JSON callback", mix(), ct("application/json"), 200, ""),
		read("genuine form callback", signedForm(""), ct(form), 200, ""),
		read("genuine URL-encoded JSON callback, sent as a form", []byte(url.QueryEscape(string(mix()))), ct(form), 200, ""),
		read("genuine JSON callback with Content-Encoding: identity", mix(), with(ct("application/json"), "Content-Encoding", "identity"), 200, ""),
		read("genuine form callback with a charset", signedForm(""), ct(form+"; charset=UTF-8"), 200, ""),

		// The kind of body, decided by its bytes; headers that say otherwise are refused.
		read("a UTF-8 BOM before '{' (Express strips it and reads JSON): 400",
			append([]byte("\xef\xbb\xbf"), mix()...), ct("application/json"), 400, "malformed_body"),
		read("a UTF-8 BOM before a form: 400", append([]byte("\xef\xbb\xbf"), signedForm("")...), ct(form), 400, "malformed_body"),
		read("Content-Encoding: deflate over a form (Express inflates it): 415",
			deflated.Bytes(), with(ct("application/json"), "Content-Encoding", "deflate"), 415, "unsupported_media_type"),
		read("Content-Encoding: gzip: 415", gzipped.Bytes(), with(ct("application/json"), "Content-Encoding", "gzip"), 415, "unsupported_media_type"),
		read("Content-Encoding: identity, gzip: 415", mix(), with(ct("application/json"), "Content-Encoding", "identity, gzip"), 415, "unsupported_media_type"),
		read("multipart/form-data whose preamble is a form (PHP reads the parts): 415",
			multipartBody, ct("multipart/form-data; boundary=b"), 415, "unsupported_media_type"),
		read("multipart/mixed: 415", signedForm(""), ct("multipart/mixed; boundary=b"), 415, "unsupported_media_type"),
		read("JSON sent as a form whose string holds another event and signed triple ($_POST reads them): 400",
			jsonWith(smuggled), ct(form), 400, "malformed_body"),
		read("the same JSON sent as application/json: forwarded, read as JSON everywhere", jsonWith(smuggled), ct("application/json"), 200, ""),
		read("JSON sent as a form whose string holds +event=: 400", jsonWith("&+event=room_login&"), ct(form), 400, "malformed_body"),
		read("JSON sent as a form whose string holds %65vent=: 400", jsonWith("&%65vent=room_login&"), ct(form), 400, "malformed_body"),
		read("JSON sent as a form whose string holds EventType[]=: 400", jsonWith("&EventType[]=9&"), ct(form), 400, "malformed_body"),
		read("JSON sent as a form whose string holds &other=1 only: forwarded", jsonWith("&other=1&x"), ct(form), 200, ""),
		read("URL-encoded JSON sent as a form with raw '&event=' after a string opens: 400",
			[]byte("%7B%22note%22%3A%22"+smuggled+"%22%2C"+strings.TrimPrefix(url.QueryEscape(string(mix())), "%7B")), ct(form), 400, "malformed_body"),

		// Bodies that URL-decode whole (as ZEGO's pages tell backends to do) into other JSON.
		read("raw JSON whose string, URL-decoded, closes and opens fields (event, a second triple): 400",
			jsonWith("%22,%22event%22:%22room_login%22,%22signature%22:%22"+otherSig+"%22,%22timestamp%22:%22"+otherTS+"%22,%22nonce%22:%22"+otherNonce), ct("application/json"), 400, "malformed_body"),
		read("raw JSON with a key %65vent, event once URL-decoded: 400",
			signed(`{"appid":"111111","event":"mix_start","%65vent":"room_login","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec), ct("application/json"), 400, "malformed_body"),
		read("raw JSON with %20 and + in a value, the same fields once URL-decoded: forwarded",
			jsonWith("100%25+sure%20of%20it"), ct("application/json"), 200, ""),
		read("a form whose text, URL-decoded whole, is JSON naming room_login: 400",
			[]byte("+"+url.QueryEscape(`{"event":"room_login","signature":"`+otherSig+`","timestamp":"`+otherTS+`","nonce":"`+otherNonce+`","x":"`)+"="+
				string(signedForm("&y="+url.QueryEscape(`"}`)))), ct(form), 400, "malformed_body"),
		read("a Content-Type of a no-break space then the form type, JSON holding &event=: 400", jsonWith(smuggled), ct("\xa0"+form), 400, "malformed_body"),
		read("a Content-Type with the form type inside its parameters: read as a form too",
			jsonWith(smuggled), ct("application/json; x=x-www-form-urlencoded"), 400, "malformed_body"),

		// Named fields' values that no header carries as they are, or that readers read
		// otherwise.
		{Desc: "an empty event: forwarded with X-Zego-Event empty, as the backends read it",
			Steps: []Step{{Req: Request{Body: signed(`{"appid":"111111","event":"","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec)}, Status: 200, Forwarded: true, Got: map[string][]string{"X-Zego-Event": {""}, "X-Zego-Appid": {"111111"}}}}},
		read("an app id with a space before it: 400",
			signed(`{"appid":" 222222","event":"mix_start","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec), nil, 400, "malformed_body"),
		read("an event holding a tab: 400",
			signed(`{"appid":"1","event":"mix_start\t","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec), nil, 400, "malformed_body"),
		read("an event holding a NUL: 400",
			signed(`{"appid":"1","event":"mix\u0000start","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec), nil, 400, "malformed_body"),
		read("an app id of 1e400 (Infinity to JavaScript and PHP): 400",
			signed(`{"appid":1e400,"event":"mix_start","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec), nil, 400, "malformed_body"),
		read("an app id of 111111.0: 400",
			signed(`{"appid":111111.0,"event":"mix_start","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec), nil, 400, "malformed_body"),
		read("an app id as an array: 400",
			signed(`{"appid":["222222"],"event":"mix_start","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec), nil, 400, "malformed_body"),
		read("an app id as null: 400",
			signed(`{"appid":null,"event":"mix_start","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec), nil, 400, "malformed_body"),
		read("form: appid twice: 400", signedForm("&appid=222222"), ct(form), 400, "malformed_body"),

		// Form names as PHP reads them, after event=mix_start.
		read("form: +event=room_login (PHP drops the leading space): 400", signedForm("&+event=room_login"), ct(form), 400, "malformed_body"),
		read("form: %20event=room_login: 400", signedForm("&%20event=room_login"), ct(form), 400, "malformed_body"),
		read("form: event%00x=room_login (PHP cuts at the NUL): 400", signedForm("&event%00x=room_login"), ct(form), 400, "malformed_body"),
		read("form: event[]=room_login: 400", signedForm("&event[]=room_login"), ct(form), 400, "malformed_body"),
		read("form: event[a]=room_login: 400", signedForm("&event[a]=room_login"), ct(form), 400, "malformed_body"),
		read("form: event[=room_login (PHP reads event_): 400 all the same", signedForm("&event[=room_login"), ct(form), 400, "malformed_body"),
		read("form: a second signed set with leading spaces: 400",
			signedForm("&+signature="+otherSig+"&+timestamp="+otherTS+"&+nonce="+otherNonce), ct(form), 400, "malformed_body"),
		read("form: time.stamp (PHP: time_stamp, not a named field): forwarded", signedForm("&time.stamp=1"), ct(form), 200, ""),
		read("form: app.id (PHP: app_id, the app id's spelling): 400", signedForm("&app.id=999"), ct(form), 400, "malformed_body"),
		read("form: EVENT=room_login (another case): 400", signedForm("&EVENT=room_login"), ct(form), 400, "malformed_body"),
		read("form: [event]=room_login (Express's qs reads event): 400", signedForm("&[event]=room_login"), ct(form), 400, "malformed_body"),
		read("form: %5Bevent%5D=room_login: 400", signedForm("&%5Bevent%5D=room_login"), ct(form), 400, "malformed_body"),
		read("form: app[id=999999 (PHP reads app_id): 400", signedForm("&app[id=999999"), ct(form), 400, "malformed_body"),
		read("form: App[Id=999999: 400", signedForm("&App[Id=999999"), ct(form), 400, "malformed_body"),
		read("form: appid without '=' right before +event= (one '&' ends the first and starts the second): 400",
			signed("event=mix_start&timestamp={{timestamp}}&nonce={{nonce}}&signature={{signature}}&appid&+event=room_login", sec), ct(form), 400, "malformed_body"),
		read("JSON sent as a form whose string holds &[event]=: 400", jsonWith("&[event]=room_login&"), ct(form), 400, "malformed_body"),
		read("JSON sent as a form whose string holds &app[id=: 400", jsonWith("&app[id=999999&"), ct(form), 400, "malformed_body"),

		// Field counts: what PHP's max_input_vars and Node's querystring read, no more.
		read("form of 1 001 fields, the named ones last: 400", manyFields(1001), ct(form), 400, "malformed_body"),
		read("form of 1 000 fields, the named ones last: forwarded, and read whole by PHP and Node", manyFields(1000), ct(form), 200, ""),

		// Header names as CGI and PHP read them.
		{Desc: "task.id, App.Id and Room.ID beside task_id, appid and RoomID: no header for either of each pair", Config: allow,
			Steps: []Step{{Req: Request{Body: signed(`{"appid":"111111","App.Id":"999","event":"mix_start","task_id":"111111:1111","task.id":"999:9","RoomID":"r","Room.ID":"x","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec)},
				Status: 200, Forwarded: true, Got: announced, NotGot: []string{"X-Zego-Task-Id", "X-Zego-Room-Id", "X-Zego-App-Id", "X-Zego-Task.id"}}}},
	}
}
