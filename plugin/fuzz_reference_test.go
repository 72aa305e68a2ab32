package zegocallback

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

// The references the fuzz targets (fuzz_test.go) check the code against, written from
// the README with encoding/json and net/url, apart from the code they check.

// refNames are the named fields readCallback reads, restated with every spelling: the
// first three are signed and required.
var refNames = [...][]string{
	{"signature", "Signature"}, {"timestamp", "Timestamp"}, {"nonce", "Nonce"},
	{"event", "Event", "EventType", "event_type"}, {"appid", "AppId", "Appid", "AppID", "app_id"},
}

// refCallback is what the reference makes of an acceptable body.
type refCallback struct {
	texts [len(refNames)]string
	names [len(refNames)]string      // the spelling each named field has in the body
	json  map[string]json.RawMessage // a JSON body's fields, as encoding/json gives them
	form  url.Values                 // a form body's values
}

// referenceParse is the README's step 5 with encoding/json and net/url only: nil and the
// reason when the body is to be refused. formTyped says the Content-Type is a form's.
func referenceParse(body []byte) (*refCallback, string) {
	return referenceParseAs(body, false)
}

func referenceParseAs(body []byte, formTyped bool) (*refCallback, string) {
	ref := &refCallback{}
	present := map[string]bool{}
	value := map[string]any{} // string, json.Number, []string, or something else
	rest := bytes.TrimLeft(body, " \t\r\n")
	urlJSON := false
	switch {
	case len(body) == 0:
		return nil, "empty"
	case bytes.HasPrefix(body, []byte("\xef\xbb\xbf")):
		return nil, "a byte order mark"
	case len(rest) > 0 && rest[0] == '{' || bytes.HasPrefix(rest, []byte("%7B")) || bytes.HasPrefix(rest, []byte("%7b")):
		doc := body
		if rest[0] == '%' {
			urlJSON = true
			s, err := url.QueryUnescape(string(body))
			if err != nil {
				return nil, "bad URL encoding"
			}
			doc = []byte(s)
		}
		if !utf8.Valid(doc) {
			return nil, "not UTF-8"
		}
		if countAllKeys(doc) > 10000 {
			return nil, "more than 10 000 keys"
		}
		if err := json.Unmarshal(doc, &ref.json); err != nil || ref.json == nil {
			return nil, "not a JSON object"
		}
		present, value = jsonNamed(ref.json)
		if formTyped && (bytes.Count(body, []byte("&")) >= 1000 || referenceFormNamed(body, false)) {
			return nil, "a JSON body sent as a form names a field when read as one"
		}
	default:
		if bytes.Count(body, []byte("&")) >= 1000 {
			return nil, "more than 1 000 form fields"
		}
		values, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, "not a form"
		}
		for k, vs := range values {
			if !utf8.ValidString(k) {
				return nil, "not UTF-8"
			}
			for _, v := range vs {
				if !utf8.ValidString(v) {
					return nil, "not UTF-8"
				}
			}
			present[k] = true
			if len(vs) == 1 {
				value[k] = vs[0]
			} else {
				value[k] = vs // a repeated key is not a scalar
			}
		}
		if referenceFormNamed(body, true) {
			return nil, "a form name a backend reads as a named field"
		}
		ref.form = values
	}
	names, texts, why := referenceNamed(present, value)
	if why != "" {
		return nil, why
	}
	ref.names, ref.texts = names, texts
	if !allDigits(ref.texts[1]) {
		return nil, "timestamp not a whole number"
	}
	// What needs a walk of the keys comes after the named fields (the middleware looks
	// once the signature holds; the reference accepts or refuses alike).
	if ref.json != nil {
		doc := body
		if urlJSON {
			s, _ := url.QueryUnescape(string(body))
			doc = []byte(s)
		}
		topKeys, escaped, twice := topLevelKeys(doc)
		if twice {
			return nil, "a key twice"
		}
		if topKeys > 1000 && escaped {
			return nil, "more than 1 000 top-level keys, one written with an escape"
		}
	}
	// URL-decoded whole, as ZEGO's pages tell backends, the body reads as the same
	// named fields, or as no JSON object at all.
	if !urlJSON && bytes.ContainsAny(body, "%+") {
		decoded := referenceURLDecode(string(body))
		var fields map[string]json.RawMessage
		if r := strings.TrimLeft(decoded, " \t\r\n"); r != "" && r[0] == '{' && json.Unmarshal([]byte(decoded), &fields) == nil && fields != nil {
			if n, t, why := referenceNamed(jsonNamed(fields)); why != "" || n != ref.names || t != ref.texts {
				return nil, "URL-decoded, the body reads as other named fields"
			}
		}
	}
	return ref, ""
}

// jsonNamed is what referenceNamed reads of a JSON object's fields: which are present,
// and each one's value with numbers kept as their text.
func jsonNamed(fields map[string]json.RawMessage) (map[string]bool, map[string]any) {
	present, value := map[string]bool{}, map[string]any{}
	for k, raw := range fields {
		present[k] = true
		value[k] = decodeNumber(raw)
	}
	return present, value
}

// decodeNumber decodes a raw JSON value with numbers kept as their text (nil for one
// that does not decode).
func decodeNumber(raw json.RawMessage) any {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil
	}
	return v
}

// referenceNamed reads the named fields: each under one spelling at most; a string or a
// number (a number as plain digits, an event's or app id's at most 15), printable ASCII
// without a space at either end; the signed ones present and not empty.
func referenceNamed(present map[string]bool, value map[string]any) ([len(refNames)]string, [len(refNames)]string, string) {
	var names, texts [len(refNames)]string
	for i, spellings := range refNames {
		for _, name := range spellings {
			if !present[name] {
				continue
			}
			if names[i] != "" {
				return names, texts, spellings[0] + " under two spellings"
			}
			names[i] = name
		}
		name := names[i]
		if name == "" {
			if i < 3 {
				return names, texts, spellings[0] + " missing"
			}
			continue
		}
		switch v := value[name].(type) {
		case string:
			texts[i] = v
		case json.Number:
			texts[i] = v.String()
			if !allDigits(texts[i]) || i >= 3 && len(texts[i]) > 15 {
				return names, texts, spellings[0] + " a number that is not a plain integer"
			}
		default:
			return names, texts, spellings[0] + " not a string or a number"
		}
		t := texts[i]
		for j := 0; j < len(t); j++ {
			if t[j] < 0x20 || t[j] > 0x7e {
				return names, texts, spellings[0] + " not printable ASCII"
			}
		}
		if t != "" && (t[0] == ' ' || t[len(t)-1] == ' ') {
			return names, texts, spellings[0] + " with a space at an end"
		}
		if i < 3 && t == "" {
			return names, texts, spellings[0] + " empty"
		}
	}
	return names, texts, ""
}

// referenceURLDecode decodes as PHP's urldecode: '+' a space, %XX a byte, a lone '%'
// itself.
func referenceURLDecode(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && isHexDigit(s[i+1]) && isHexDigit(s[i+2]):
			v, _ := hex.DecodeString(s[i+1 : i+3])
			b = append(b, v[0])
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// topLevelKeys walks an object's top level with json.Decoder's tokens: it counts the
// keys as written, and reports whether one is written with an escape and whether one
// comes twice (or the walk fails).
func topLevelKeys(doc []byte) (n int, escaped, twice bool) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	if _, err := dec.Token(); err != nil {
		return 0, false, true
	}
	seen := map[string]bool{}
	for dec.More() {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return n, escaped, true
		}
		if bytes.IndexByte(doc[start:dec.InputOffset()], '\\') >= 0 {
			escaped = true
		}
		key, _ := tok.(string)
		if seen[key] {
			return n, escaped, true
		}
		seen[key] = true
		n++
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return n, escaped, true
		}
	}
	return n, escaped, false
}

// referenceFormNamed reads a body as PHP's $_POST, Node and Express's qs would: parts
// split at '&', a name up to the first '=', decoded as urldecode does (a decoded '='
// ends it too), then after leading spaces: a spelling of a named field in any letter
// case, with ' ', '.', '_' or '[' between its words (event type, app id), or one
// between brackets as qs reads it, ending the name or followed by '[' or a NUL (PHP
// cuts there). With exactAllowed, a name that is exactly a spelling passes; more such
// names than there are spellings are refused.
func referenceFormNamed(body []byte, exactAllowed bool) bool {
	found := 0
	for _, part := range strings.Split(string(body), "&") {
		name, _, _ := strings.Cut(part, "=")
		name, _, _ = strings.Cut(referenceURLDecode(name), "=")
		trimmed := strings.TrimLeft(name, " ")
		bracketed := strings.HasPrefix(trimmed, "[")
		core := strings.TrimPrefix(trimmed, "[")
		rest, ok := cutSpelling(core)
		if !ok {
			continue
		}
		rest = strings.TrimPrefix(rest, "]")
		if rest != "" && rest[0] != '[' && rest[0] != 0 {
			continue
		}
		found++
		exact := false
		for _, spellings := range refNames {
			for _, s := range spellings {
				exact = exact || name == s
			}
		}
		if !exactAllowed || !exact || bracketed && !exact {
			return true
		}
	}
	return found > 15
}

// cutSpelling cuts a named field's spelling, in any case and with any separator
// between its words, from the front of s.
func cutSpelling(s string) (string, bool) {
	lower := strings.ToLower(s)
	best := -1
	for _, w := range []string{"signature", "timestamp", "nonce", "event", "appid"} {
		if strings.HasPrefix(lower, w) && len(w) > best {
			best = len(w)
		}
	}
	for _, two := range [][2]string{{"event", "type"}, {"app", "id"}} {
		n := len(two[0])
		if strings.HasPrefix(lower, two[0]) && len(lower) > n && strings.HasPrefix(lower[n+1:], two[1]) && strings.ContainsRune(" ._[", rune(lower[n])) && n+1+len(two[1]) > best {
			best = n + 1 + len(two[1])
		}
		if strings.HasPrefix(lower, two[0]+two[1]) && n+len(two[1]) > best {
			best = n + len(two[1])
		}
	}
	if best < 0 {
		return s, false
	}
	return s[best:], true
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// countAllKeys counts an object's keys at every depth, token by token.
func countAllKeys(doc []byte) int {
	dec := json.NewDecoder(bytes.NewReader(doc))
	var inObject []bool // for each open container, whether it is an object
	expectKey := false
	n := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return n
		}
		switch tok {
		case json.Delim('{'):
			inObject = append(inObject, true)
			expectKey = true
			continue
		case json.Delim('['):
			inObject = append(inObject, false)
			expectKey = false
			continue
		case json.Delim('}'), json.Delim(']'):
			inObject = inObject[:len(inObject)-1]
		default:
			if expectKey {
				n++
				expectKey = false
				continue
			}
		}
		expectKey = len(inObject) > 0 && inObject[len(inObject)-1]
	}
}

// checkFieldsAgree compares cb.Fields with the reference: the same keys, a JSON body's
// values the same once compacted, a form's the same strings; and a plain callback's
// strings are what lies between their quotes.
func checkFieldsAgree(t *testing.T, cb *callback, want *refCallback) {
	t.Helper()
	n := len(want.json) + len(want.form)
	if len(cb.Fields) != n {
		t.Fatalf("%d fields, the reference has %d", len(cb.Fields), n)
	}
	for k, raw := range cb.Fields {
		if len(raw) == 0 {
			t.Fatalf("field %q has an empty raw value", k)
		}
		if want.form != nil {
			// One value is a JSON string, a repeated key an array of strings.
			vs := want.form[k]
			var got []string
			var err error
			if len(vs) == 1 {
				got = make([]string, 1)
				err = json.Unmarshal(raw, &got[0])
			} else {
				err = json.Unmarshal(raw, &got)
			}
			if err != nil || len(vs) == 0 || !equalStrings(got, vs) {
				t.Fatalf("form field %q = %s, net/url gives %q", k, raw, vs)
			}
			continue
		}
		ref, ok := want.json[k]
		if !ok || !bytes.Equal(compact(raw), compact(ref)) {
			t.Fatalf("field %q = %s, encoding/json gives %s", k, raw, ref)
		}
		if cb.plain && raw[0] == '"' {
			var s string
			if json.Unmarshal(raw, &s) != nil || s != string(raw[1:len(raw)-1]) || strings.ContainsAny(s, controlBytes) {
				t.Fatalf("plain callback, but field %q = %s is not its own text", k, raw)
			}
		}
	}
}

// referenceHeaders restates the README's header rules. The fields considered: the named
// ones (event, app id, timestamp, nonce, in any spelling) when present and selected by
// the fields option (any spelling selects), then the others of the fields option, or the
// first maxFields by name, the signature aside. Each is named by referenceHeaderName; a
// name two fields share is left out, and so are the names only the middleware and the
// named fields write, for the others. A scalar's text (a string decoded, a number as
// written, true or false) when it is at most maxValue bytes, an array of scalars'
// elements (nulls skipped) when its JSON is at most maxValue bytes; control bytes and
// edge spaces as %XX. The event under EventType or event_type is also the prefix's Event.
func referenceHeaders(prefix string, ref *refCallback, fields map[string]json.RawMessage, selected []string, maxFields, maxValue int) map[string][]string {
	out := map[string][]string{}
	reserved := map[string]bool{}
	for _, own := range []string{"Verified", "Duplicate", "Rejection", "Event", "Signature"} {
		reserved[http.CanonicalHeaderKey(prefix+own)] = true
	}
	namedField := map[string]int{}
	for i, spellings := range refNames {
		for _, s := range spellings {
			namedField[s] = i
			reserved[referenceHeaderName(prefix, s)] = true
		}
	}
	var considered, others []string
	for field := range fields {
		if i, named := namedField[field]; named {
			chosen := selected == nil
			for _, s := range refNames[i] {
				chosen = chosen || containsString(selected, s)
			}
			if i > 0 && chosen {
				considered = append(considered, field)
			}
		} else if selected == nil || containsString(selected, field) {
			others = append(others, field)
		}
	}
	sort.Strings(others)
	if len(others) > maxFields {
		others = others[:maxFields]
	}
	considered = append(considered, others...)
	byHeader := map[string][]string{}
	for _, field := range considered {
		header := referenceHeaderName(prefix, field)
		if _, named := namedField[field]; header == "" || !named && reserved[header] {
			continue
		}
		byHeader[header] = append(byHeader[header], field)
	}
	for header, names := range byHeader {
		if len(names) > 1 {
			continue
		}
		raw := fields[names[0]]
		v := decodeNumber(raw) // nil, as null, when it does not decode: no header
		if elems, ok := v.([]any); ok {
			if len(raw) > maxValue {
				continue
			}
			var texts []string
			for _, e := range elems {
				if s, kind := referenceText(e); kind == "scalar" {
					texts = append(texts, percentControls(s))
				} else if kind == "nested" {
					texts = nil
					break
				}
			}
			if len(texts) > 0 {
				out[header] = texts
			}
			continue
		}
		if s, kind := referenceText(v); kind == "scalar" && len(s) <= maxValue {
			out[header] = []string{percentControls(s)}
		}
	}
	if ref != nil && (ref.names[3] == "EventType" || ref.names[3] == "event_type") {
		if v, ok := out[referenceHeaderName(prefix, ref.names[3])]; ok {
			out[http.CanonicalHeaderKey(prefix+"Event")] = v
		}
	}
	return out
}

// referenceHeaderName is the README's rule for a field's header name: the prefix, then
// the name with a '-' where a lower-case letter meets a capital and for every character
// other than a letter or digit, canonicalised; "" for a name that is empty, over 128
// bytes, or holds a character not allowed in a header name.
func referenceHeaderName(prefix, field string) string {
	if field == "" || len(field) > 128 || !validFieldName(field) {
		return ""
	}
	var b strings.Builder
	for i := 0; i < len(field); i++ {
		c := field[i]
		isLetterOrDigit := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !isLetterOrDigit {
			c = '-'
		} else if i > 0 && 'A' <= c && c <= 'Z' && 'a' <= field[i-1] && field[i-1] <= 'z' {
			b.WriteByte('-')
		}
		b.WriteByte(c)
	}
	return http.CanonicalHeaderKey(prefix + b.String())
}

// referenceText is a decoded JSON value's header text, with "scalar", "null" or "nested".
func referenceText(v any) (string, string) {
	switch v := v.(type) {
	case string:
		return v, "scalar"
	case json.Number:
		return v.String(), "scalar"
	case bool:
		if v {
			return "true", "scalar"
		}
		return "false", "scalar"
	case nil:
		return "", "null"
	}
	return "", "nested"
}

// percentControls writes bytes below 0x20 and 0x7F, and a space at either end, as %XX
// (upper-case hex).
func percentControls(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == ' ' && (i == 0 || i == len(s)-1) {
			sb.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
		} else {
			sb.WriteByte(c)
		}
	}
	return sb.String()
}

// validFieldName reports whether s is an RFC 9110 token.
func validFieldName(s string) bool {
	return s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~") == ""
}

func allDigits(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }

func compact(raw []byte) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// equalStrings reports whether two string slices hold the same strings in order. (Not
// slices.Equal: these tests also run through Yaegi, whose generic standard library
// functions do not load.)
func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
