package zegocallback

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestParseCallback(t *testing.T) {
	tests := []struct {
		desc       string
		body       string
		ts, nonce  string
		event, app string
	}{
		{"JSON strings", `{"appid":"1","event":"mix_start","timestamp":"1689834748","nonce":"7257784982359218206","signature":"ab"}`,
			"1689834748", "7257784982359218206", "mix_start", "1"},
		{"JSON numbers keep their digits", `{"appid":111,"event":"room_create","timestamp":1689834748,"nonce":7257784982359218206,"signature":"ab"}`,
			"1689834748", "7257784982359218206", "room_create", "111"},
		{"PascalCase", `{"AppId":5,"Event":"AgentSpeakAction","Timestamp":1700000000000,"Nonce":"n","Signature":"ab"}`,
			"1700000000000", "n", "AgentSpeakAction", "5"},
		{"pretty-printed", "{\n  \"timestamp\" : \"1\" ,\n  \"nonce\" :\t\"2\",\r\n \"signature\": \"ab\" }\n",
			"1", "2", "", ""},
		{"escaped string values", `{"timestamp":"\u0031","nonce":"a\"b","signature":"ab","event":"x\/y"}`,
			"1", `a"b`, "x/y", ""},
		{"escaped key, unique", `{"\u0074imestamp":"1","nonce":"2","signature":"ab"}`, "1", "2", "", ""},
		{"URL-encoded JSON", "%7B%22timestamp%22%3A%221%22%2C%22nonce%22%3A%222%22%2C%22signature%22%3A%22ab%22%7D", "1", "2", "", ""},
		{"URL-encoded JSON, lower case", "%7b%22timestamp%22%3a%221%22%2c%22nonce%22%3a%222%22%2c%22signature%22%3a%22ab%22%7d", "1", "2", "", ""},
		{"form", "timestamp=1&nonce=2&signature=ab&event=mix+start&appid=%31", "1", "2", "mix start", "1"},
		{"leading JSON white space", " \r\n\t{\"timestamp\":\"1\",\"nonce\":\"2\",\"signature\":\"ab\"}", "1", "2", "", ""},
		{"EventType, a number, and AppID", `{"AppID":"7","EventType":3,"Timestamp":"1","Nonce":"2","Signature":"ab"}`, "1", "2", "3", "7"},
		{"event_type and app_id", `{"app_id":"7","event_type":4,"timestamp":"1","nonce":"2","signature":"ab"}`, "1", "2", "4", "7"},
		{"Appid", `{"Appid":"7","Event":"transcode_start","Timestamp":"1","Nonce":"2","Signature":"ab"}`, "1", "2", "transcode_start", "7"},
	}
	for _, tt := range tests {
		cb, err := readCallback([]byte(tt.body))
		if err != nil {
			t.Errorf("%s: %v", tt.desc, err)
			continue
		}
		if cb.texts[fieldTimestamp] != tt.ts || cb.texts[fieldNonce] != tt.nonce || cb.texts[fieldSignature] != "ab" || cb.texts[fieldEvent] != tt.event || cb.texts[fieldAppID] != tt.app {
			t.Errorf("%s: got %+v", tt.desc, cb)
		}
	}
}

func TestParseCallbackMalformed(t *testing.T) {
	signed := `"timestamp":"1","nonce":"2","signature":"ab"`
	tests := []struct{ desc, body string }{
		{"empty", ""},
		{"truncated JSON", `{"timestamp":"1"`},
		{"trailing data", `{` + signed + `} {}`},
		{"JSON array", `[` + signed + `]`},
		{"a byte order mark before the object", "\xef\xbb\xbf{" + signed + `}`},
		{"appid and AppId", `{` + signed + `,"appid":"1","AppId":2}`},
		{"event and EventType", `{` + signed + `,"event":"a","EventType":2}`},
		{"form: a named field PHP reads under another name", "timestamp=1&nonce=2&signature=ab&+event=x"},
		{"form: event[]", "timestamp=1&nonce=2&signature=ab&event[]=x"},
		{"form: event cut at a NUL", "timestamp=1&nonce=2&signature=ab&event%00x=y"},
		{"form: app.id, which PHP reads as app_id", "timestamp=1&nonce=2&signature=ab&app.id=3"},
		{"key twice", `{` + signed + `,"event":"a","event":"b"}`},
		{"key twice, same value", `{` + signed + `,"event":"a","event":"a"}`},
		{"signed key twice", `{` + signed + `,"nonce":"2"}`},
		{"key twice, once escaped", `{` + signed + `,"event":"a","\u0065vent":"b"}`},
		{"key twice, both escaped differently", `{` + signed + `,"\u0065vent":"a","\u0065\u0076ent":"b"}`},
		{"signature and Signature", `{` + signed + `,"Signature":"ab"}`},
		{"timestamp and Timestamp", `{` + signed + `,"Timestamp":"1"}`},
		{"event and Event", `{` + signed + `,"event":"a","Event":"a"}`},
		{"missing signature", `{"timestamp":"1","nonce":"2"}`},
		{"empty nonce", `{"timestamp":"1","nonce":"","signature":"ab"}`},
		{"null timestamp", `{"timestamp":null,"nonce":"2","signature":"ab"}`},
		{"boolean nonce", `{"timestamp":"1","nonce":true,"signature":"ab"}`},
		{"array signature", `{"timestamp":"1","nonce":"2","signature":["ab"]}`},
		{"timestamp with exponent", `{"timestamp":1e9,"nonce":"2","signature":"ab"}`},
		{"timestamp with a fraction", `{"timestamp":1.0,"nonce":"2","signature":"ab"}`},
		{"negative timestamp", `{"timestamp":-5,"nonce":"2","signature":"ab"}`},
		{"timestamp with plus", `{"timestamp":"+123","nonce":"2","signature":"ab"}`},
		{"timestamp with space", `{"timestamp":" 123","nonce":"2","signature":"ab"}`},
		{"timestamp in hex", `{"timestamp":"0x10","nonce":"2","signature":"ab"}`},
		{"invalid UTF-8", "{" + signed + ",\"event\":\"\xff\"}"},
		{"invalid UTF-8 in a key", "{" + signed + ",\"\xff\":1,\"\xfe\":2}"},
		{"bad URL encoding", "%7B%zz"},
		{"URL-encoded non-object", "%7Bnot json"},
		{"form with a bad escape", "timestamp=1&nonce=%zz&signature=ab"},
		{"form with a semicolon", "timestamp=1;nonce=2&signature=ab"},
		{"form with a signed key twice", "timestamp=1&nonce=2&nonce=3&signature=ab"},
		{"form with invalid UTF-8", "timestamp=1&nonce=2&signature=ab&event=%FF"},
		{"form without signed fields", "hello"},
	}
	for _, tt := range tests {
		cb, err := readCallback([]byte(tt.body))
		if !errors.Is(err, errMalformedBody) {
			t.Errorf("%s: %+v, %v; want errMalformedBody", tt.desc, cb, err)
		}
	}
}

func TestParseCallbackFields(t *testing.T) {
	cb, err := readCallback([]byte("timestamp=1&nonce=2&signature=ab&url=a&url=b&name=Alice+%26+Bob"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(cb.Fields["url"]); got != `["a","b"]` {
		t.Errorf("repeated form key = %s, want an array", got)
	}
	if text, kind := scalarText(cb.Fields["name"]); text != "Alice & Bob" || kind != kindString {
		t.Errorf("form value = %q (%d)", text, kind)
	}
}

func TestKeysUniqueSlowPathAgrees(t *testing.T) {
	// Bodies whose length check fails for escapes alone must still be accepted.
	for _, body := range []string{
		`{"\u0061":1,"b":2}`,
		`{"a\/b":1,"a/c":2}`,
		`{"\u00e9":1,"é2":2}`,
	} {
		if _, _, err := parseJSONObject([]byte(body)); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
	for _, body := range []string{
		`{"\u0061":1,"a":2}`,
		`{"a\/b":1,"a/b":2}`,
		`{"\u00e9":1,"é":2}`,
		`{"a":1,"b":{"c":1},"a":{"c":1}}`,
	} {
		if _, _, err := parseJSONObject([]byte(body)); !errors.Is(err, errMalformedBody) {
			t.Errorf("%s: %v, want a duplicate key", body, err)
		}
	}
}

func TestScalarText(t *testing.T) {
	tests := []struct {
		raw  string
		text string
		kind int
	}{
		{`"a"`, "a", kindString}, {`""`, "", kindString}, {`"a\nb"`, "a\nb", kindString},
		{`12.50`, "12.50", kindNumber}, {`-0`, "-0", kindNumber}, {`1E+400`, "1E+400", kindNumber},
		{`true`, "true", kindBool}, {`false`, "false", kindBool}, {`null`, "", kindNull},
		{`[1]`, "", kindArray}, {`{}`, "", kindObject}, {``, "", kindNull},
	}
	for _, tt := range tests {
		text, kind := scalarText([]byte(tt.raw))
		if text != tt.text || kind != tt.kind {
			t.Errorf("scalarText(%s) = %q, %d; want %q, %d", tt.raw, text, kind, tt.text, tt.kind)
		}
	}
}

// parseJSONObject decodes a JSON object's top level and checks its keys, as parseCallback
// and checkReading do between them: the fields, and whether the body's strings are plain.
func parseJSONObject(body []byte) (map[string]json.RawMessage, bool, error) {
	cb := &callback{}
	err := decodeJSON(cb, body)
	if err == nil && cb.walkKeys {
		err = keysUnique(body, cb.Fields)
	}
	if err != nil {
		return nil, false, err
	}
	return cb.Fields, cb.plain, nil
}
