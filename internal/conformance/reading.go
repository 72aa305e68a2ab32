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
	utf16pkg "unicode/utf16"

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
	// query is read with a query string.
	query := func(desc string, body []byte, q string, status int, code string) Case {
		c := read(desc, body, nil, status, code)
		c.Steps[0].Req.Query = q
		if bytes.HasPrefix(body, []byte("appid=")) {
			c.Steps[0].Req.Header = ct(form)
		}
		return c
	}
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

		// Keys as Go's encoding/json reads them into a struct: without regard to letter
		// case, by Unicode's simple folding, the last one winning.
		read("JSON: EVENT after event (Go reads room_login): 400",
			signed(`{"appid":"111111","event":"mix_start","EVENT":"room_login","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec), nil, 400, "malformed_body"),
		read("JSON: \\u0065VeNt after event: 400",
			signed(`{"appid":"111111","event":"mix_start","\u0065VeNt":"room_login","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec), nil, 400, "malformed_body"),
		read("JSON: ſignature, TIMEſTAMP and NONCE holding a second triple (Go reads them): 400",
			signed(`{"appid":"111111","event":"mix_start","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}","ſignature":"`+otherSig+`","TIMEſTAMP":"`+otherTS+`","NONCE":"`+otherNonce+`"}`, sec), nil, 400, "malformed_body"),
		read("JSON: APPID beside appid: 400",
			signed(`{"appid":"111111","event":"mix_start","APPID":"999999","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec), nil, 400, "malformed_body"),
		// Other fields are not refused: task_id and TASK_ID write one header, which
		// is left out; a Go struct reads the last (README).
		{Desc: "JSON: task_id then TAS\u212A_ID (a Kelvin sign): forwarded, Go reads the last", Config: allow,
			Steps: []Step{{Req: Request{Body: signed(`{"appid":"111111","event":"mix_start","task_id":"1","TASK_ID":"2","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec)},
				Status: 200, Forwarded: true, Got: map[string][]string{"X-Zego-Event": {"mix_start"}, "X-Zego-Task-Id": {"1"}}}}},
		read("JSON: eventType alone (Go's EventType field reads it; not a spelling read here): 400",
			signed(`{"appid":"111111","event":"mix_start","eventType":"room_login","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec), nil, 400, "malformed_body"),
		{Desc: "JSON: task_id and TASK_ID: forwarded, the header they would share left out", Config: allow,
			Steps: []Step{{Req: Request{Body: signed(`{"appid":"111111","event":"mix_start","task_id":"1","TASK_ID":"2","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec)},
				Status: 200, Forwarded: true, Got: announced, NotGot: []string{"X-Zego-Task-Id"}}}},
		read("JSON: Event, a spelling read here, alone: forwarded",
			signed(`{"appid":"111111","Event":"mix_start","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec), nil, 200, ""),

		// Charsets: the bytes are read as UTF-8 here, and by every backend.
		read("JSON in UTF-16LE (Python's json.loads and Jackson read it): 400", utf16(mix(), false, false), ct("application/json"), 400, "malformed_body"),
		read("JSON in UTF-16BE with a byte order mark: 400", utf16(mix(), true, true), ct("application/json"), 400, "malformed_body"),
		read("a form in UTF-16LE: 400", utf16(signedForm(""), false, false), ct(form), 400, "malformed_body"),
		read("charset=utf-16le (Express's json() decodes by it): 415", mix(), ct("application/json; charset=utf-16le"), 415, "unsupported_media_type"),
		read("charset=utf-7 with +ACI-event+ACI- in a string: 415",
			jsonWith("+ACIALA-+ACI-event+ACI-:+ACI-room_login"), ct("application/json; charset=utf-7"), 415, "unsupported_media_type"),
		read("a form with charset=\"utf-16\": 415", signedForm(""), ct(form+`; charset="utf-16"`), 415, "unsupported_media_type"),
		read("genuine JSON callback with charset=utf-8: forwarded", mix(), ct("application/json; charset=utf-8"), 200, ""),
		read("genuine JSON callback with charset=\"UTF-8\": forwarded", mix(), ct(`application/json;charset="UTF-8"`), 200, ""),

		// The query string, which Flask's request.values, Rails' params, a servlet's
		// getParameter and Go's FormValue read with the body, or before it.
		query("a query string ?event=room_login&appid=999: 400", mix(), "event=room_login&appid=999", 400, "field_in_query"),
		query("a query string ?%65vent=room_login: 400", mix(), "%65vent=room_login", 400, "field_in_query"),
		query("a query string ?[event]=room_login: 400", mix(), "%5Bevent%5D=room_login", 400, "field_in_query"),
		query("a query string ?[event]x=room_login: 400", mix(), "%5Bevent%5Dx=room_login", 400, "field_in_query"),
		query("a query string ?event]x=room_login: 400", mix(), "event%5Dx=room_login", 400, "field_in_query"),
		query("a query string ?x=1;event=room_login (Rack splits at ';'): 400", mix(), "x=1;event=room_login", 400, "field_in_query"),
		query("a form with a query string ?Signature=...: 400", signedForm(""), "Signature="+otherSig, 400, "field_in_query"),
		query("genuine JSON callback with a query string ?token=abc: forwarded", mix(), "token=abc", 200, ""),
		query("genuine form callback with a query string ?route=zego: forwarded", signedForm(""), "route=zego", 200, ""),

		// Form names as Rack reads them (brackets before and after the name), and ';',
		// where Rack's parse_query and older python-multipart split too.
		read("form: ]event=room_login (Rack reads event): 400", signedForm("&]event=room_login"), ct(form), 400, "malformed_body"),
		read("form: [event]]=room_login (Rack reads event): 400", signedForm("&[event]]=room_login"), ct(form), 400, "malformed_body"),
		read("form: [[appid=999 (Rack reads appid): 400", signedForm("&[[appid=999"), ct(form), 400, "malformed_body"),
		read("form: x=1;event=room_login (Rack splits at ';'): 400", signedForm("&x=1;event=room_login"), ct(form), 400, "malformed_body"),
		read("form: [event]x=room_login (qs and Rack read event): 400", signedForm("&[event]x=room_login"), ct(form), 400, "malformed_body"),
		read("form: event]x=room_login (Rack reads event): 400", signedForm("&event]x=room_login"), ct(form), 400, "malformed_body"),
		read("JSON sent as a form whose string holds &[event]x=: 400", jsonWith("&[event]x=room_login&"), ct(form), 400, "malformed_body"),
		read("JSON without a Content-Type whose string holds &event= (Rack reads a form): 400",
			jsonWith(smuggled), map[string][]string{"Content-Type": {}}, 400, "malformed_body"),
		read("JSON with a Content-Type of ';' whose string holds &event=: 400", jsonWith(smuggled), ct(";"), 400, "malformed_body"),
		read("raw JSON whose string, URL-decoded, adds EVENT (a Go struct reads it): 400",
			jsonWith("%22,%22EVENT%22:%22room_login"), ct("application/json"), 400, "malformed_body"),
		read("raw JSON with 1e+0, whose string, URL-decoded keeping '+', adds event: 400",
			signed(`{"appid":"111111","event":"mix_start","n":1e+0,"x":"%22,%22event%22:%22room_login","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec), ct("application/json"), 400, "malformed_body"),
		read("JSON sent as a form whose string holds ;event=room_login;: 400", jsonWith(";event=room_login;"), ct(form), 400, "malformed_body"),
		read("JSON sent as a form whose string holds ]event=: 400", jsonWith("&]event=room_login&"), ct(form), 400, "malformed_body"),

		// The second reader's shapes against the reading rules' final state, each forwarded
		// before and read as room_login or app 999999 by one of the readers named.
		read("a form whose first name opens a /* comment, JSON after it (Ruby's JSON.parse reads that JSON): 400",
			signed(`/*&appid=111111&event=mix_start&timestamp={{timestamp}}&nonce={{nonce}}&signature={{signature}}&x=*/{"appid":"999999","event":"room_login","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec), ct(form), 400, "malformed_body"),
		read("a // comment before JSON, sent as JSON: 400",
			signed("// &appid=111111&event=mix_start&timestamp={{timestamp}}&nonce={{nonce}}&signature={{signature}}\n"+`{"appid":"999999","event":"room_login"}`, sec), ct("application/json"), 400, "malformed_body"),
		read("YAML holding a form in a comment, as application/yaml (gin's ShouldBind reads the YAML): 415",
			signed("event: room_login\nappid: 999999\nx: 1 #&appid=111111&event=mix_start&timestamp={{timestamp}}&nonce={{nonce}}&signature={{signature}}", sec), ct("application/yaml"), 415, "unsupported_media_type"),
		read("TOML holding a form in a comment, as application/toml: 415",
			signed("event = \"room_login\"\nappid = \"999999\"\n#&appid=111111&event=mix_start&timestamp={{timestamp}}&nonce={{nonce}}&signature={{signature}}", sec), ct("application/toml"), 415, "unsupported_media_type"),
		read("XML holding a form in a comment, as text/xml (gin's and echo's XML binding): 415",
			signed("<r><!--&appid=111111&event=mix_start&timestamp={{timestamp}}&nonce={{nonce}}&signature={{signature}}&x=--><Event>room_login</Event><AppID>999999</AppID></r>", sec), ct("text/xml"), 415, "unsupported_media_type"),
		read("JSON holding &event= sent as application/x-url-encoded (Werkzeug 2 reads a form): 400",
			jsonWith("&event=room_login&appid=999999&"), ct("application/x-url-encoded"), 400, "malformed_body"),
		read("a form that URL-decodes to JSON nested past encoding/json's 10000 levels (JSON.parse reads it): 400",
			signed("+"+url.QueryEscape(`{"event":"room_login","appid":"999999","x":"`)+"=1&appid=111111&event=mix_start&timestamp={{timestamp}}&nonce={{nonce}}&signature={{signature}}&y="+
				url.QueryEscape(`","d":`+strings.Repeat("[", 10001)+strings.Repeat("]", 10001)+`,"d":1}`), sec), ct(form), 400, "malformed_body"),
		read("raw JSON with 1e+0 and a stray %zz, whose string, URL-decoded leniently keeping '+', adds event: 400",
			signed(`{"appid":"111111","event":"mix_start","n":1e+0,"bad":"%zz","x":"%22,%22event%22:%22room_login","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec), ct("application/json"), 400, "malformed_body"),

		// Arrays as header lines, which most backends join with ", ".
		{Desc: `an array ["a, b","c"]: no header (joined, it would read as three)`, Config: allow,
			Steps: []Step{{Req: Request{Body: signed(`{"appid":"111111","event":"mix_start","rtmp_urls":["rtmp://a, b","rtmp://c"],"timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec)},
				Status: 200, Forwarded: true, Got: announced, NotGot: []string{"X-Zego-Rtmp-Urls"}}}},
		{Desc: `an array ["a,b","c"]: no header either (Werkzeug joins the lines with ",")`, Config: allow,
			Steps: []Step{{Req: Request{Body: signed(`{"appid":"111111","event":"mix_start","rtmp_urls":["rtmp://a,b","rtmp://c"],"timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec)},
				Status: 200, Forwarded: true, Got: announced, NotGot: []string{"X-Zego-Rtmp-Urls"}}}},
		{Desc: `a string "a,b" outside an array: its header`, Config: allow,
			Steps: []Step{{Req: Request{Body: signed(`{"appid":"111111","event":"mix_start","note":"a,b","rtmp_urls":["rtmp://c"],"timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec)},
				Status: 200, Forwarded: true, Got: map[string][]string{"X-Zego-Event": {"mix_start"}, "X-Zego-Note": {"a,b"}, "X-Zego-Rtmp-Urls": {"rtmp://c"}}}}},
		{Desc: `an array in a body written with ", " between its fields: its header lines`, Config: allow,
			Steps: []Step{{Req: Request{Body: signed(`{"appid": "111111", "event": "mix_start", "rtmp_urls": ["rtmp://a", "rtmp://c"], "timestamp": "{{timestamp}}", "nonce": "{{nonce}}", "signature": "{{signature}}"}`, sec)},
				Status: 200, Forwarded: true, Got: map[string][]string{"X-Zego-Event": {"mix_start"}, "X-Zego-Rtmp-Urls": {"rtmp://a", "rtmp://c"}}}}},

		// Header names as CGI and PHP read them.
		{Desc: "task.id, App.Id and Room.ID beside task_id, appid and RoomID: no header for either of each pair", Config: allow,
			Steps: []Step{{Req: Request{Body: signed(`{"appid":"111111","App.Id":"999","event":"mix_start","task_id":"111111:1111","task.id":"999:9","RoomID":"r","Room.ID":"x","timestamp":"{{timestamp}}","nonce":"{{nonce}}","signature":"{{signature}}"}`, sec)},
				Status: 200, Forwarded: true, Got: announced, NotGot: []string{"X-Zego-Task-Id", "X-Zego-Room-Id", "X-Zego-App-Id", "X-Zego-Task.id"}}}},
	}
}

// utf16 is text in UTF-16, big-endian or little, with a byte order mark or without.
func utf16(text []byte, bigEndian, bom bool) []byte {
	units := utf16pkg.Encode([]rune(string(text)))
	if bom {
		units = append([]uint16{0xfeff}, units...)
	}
	out := make([]byte, 0, 2*len(units))
	for _, u := range units {
		if bigEndian {
			out = append(out, byte(u>>8), byte(u))
		} else {
			out = append(out, byte(u), byte(u>>8))
		}
	}
	return out
}
