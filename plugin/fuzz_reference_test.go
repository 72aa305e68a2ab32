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

// refNames are the named fields ParseCallback reads, restated with every spelling: the
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

// referenceParse is the README's step 4 with encoding/json and net/url only: nil and the
// reason when the body is to be refused.
func referenceParse(body []byte) (*refCallback, string) {
	ref := &refCallback{}
	present := map[string]bool{}
	value := map[string]any{} // string, json.Number, or something else
	rest := bytes.TrimLeft(body, " \t\r\n")
	switch {
	case len(body) == 0:
		return nil, "empty"
	case bytes.HasPrefix(body, []byte("\xef\xbb\xbf")):
		return nil, "a byte order mark"
	case len(rest) > 0 && rest[0] == '{' || bytes.HasPrefix(rest, []byte("%7B")) || bytes.HasPrefix(rest, []byte("%7b")):
		doc := body
		if rest[0] == '%' {
			s, err := url.QueryUnescape(string(body))
			if err != nil {
				return nil, "bad URL encoding"
			}
			doc = []byte(s)
		}
		if !utf8.Valid(doc) {
			return nil, "not UTF-8"
		}
		if err := json.Unmarshal(doc, &ref.json); err != nil || ref.json == nil {
			return nil, "not a JSON object"
		}
		if duplicateKey(doc) {
			return nil, "a key twice"
		}
		if countAllKeys(doc) > 10000 {
			return nil, "more than 10 000 keys"
		}
		if topKeys, escaped := topLevelKeys(doc); topKeys > 1000 && escaped {
			return nil, "more than 1 000 top-level keys, one written with an escape"
		}
		for k, raw := range ref.json {
			present[k] = true
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			var v any
			if err := dec.Decode(&v); err != nil {
				return nil, "undecodable value"
			}
			value[k] = v
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
			if referencePHPAlias(k) {
				return nil, "a form name PHP reads as a named field"
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
		ref.form = values
	}
	for i, spellings := range refNames {
		for _, name := range spellings {
			if !present[name] {
				continue
			}
			if ref.names[i] != "" {
				return nil, spellings[0] + " under two spellings"
			}
			ref.names[i] = name
		}
		name := ref.names[i]
		if name == "" {
			if i < 3 {
				return nil, spellings[0] + " missing"
			}
			continue
		}
		switch v := value[name].(type) {
		case string:
			ref.texts[i] = v
		case json.Number:
			ref.texts[i] = v.String()
		default:
			if i < 4 {
				return nil, spellings[0] + " not a string or a number"
			}
		}
		if i < 3 && ref.texts[i] == "" {
			return nil, spellings[0] + " empty"
		}
	}
	if !allDigits(ref.texts[1]) {
		return nil, "timestamp not a whole number"
	}
	return ref, ""
}

// topLevelKeys counts an object's top-level keys as written, and reports whether one is
// written with an escape.
func topLevelKeys(doc []byte) (int, bool) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	if _, err := dec.Token(); err != nil {
		return 0, false
	}
	n, escaped := 0, false
	for dec.More() {
		start := dec.InputOffset()
		if _, err := dec.Token(); err != nil {
			return n, escaped
		}
		if bytes.IndexByte(doc[start:dec.InputOffset()], '\\') >= 0 {
			escaped = true
		}
		n++
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return n, escaped
		}
	}
	return n, escaped
}

// referenceFormNamed reads a body as PHP's $_POST would: pairs split at '&', the name
// before the first '=', '+' as a space, %XX as its byte and a '%' that starts no escape
// as itself; then reports whether a name reads as a named field (referencePHPAlias, or
// the spelling itself).
func referenceFormNamed(body []byte) bool {
	for _, pair := range strings.Split(string(body), "&") {
		name, _, _ := strings.Cut(pair, "=")
		var b []byte
		for i := 0; i < len(name); i++ {
			switch c := name[i]; {
			case c == '+':
				b = append(b, ' ')
			case c == '%' && i+2 < len(name) && isHexDigit(name[i+1]) && isHexDigit(name[i+2]):
				v, _ := hex.DecodeString(name[i+1 : i+3])
				b = append(b, v[0])
				i += 2
			default:
				b = append(b, c)
			}
		}
		decoded := string(b)
		for _, spellings := range refNames {
			for _, s := range spellings {
				if decoded == s {
					return true
				}
			}
		}
		if referencePHPAlias(decoded) {
			return true
		}
	}
	return false
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

// referencePHPAlias restates how PHP reads a decoded form name (leading spaces dropped,
// cut at a NUL or a '[', '.' and ' ' as '_') and reports whether that reading is a named
// field's spelling, in any case, while the name itself is not one exactly.
func referencePHPAlias(k string) bool {
	for _, spellings := range refNames {
		for _, s := range spellings {
			if k == s {
				return false
			}
		}
	}
	name := strings.TrimLeft(k, " ")
	if i := strings.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	if i := strings.IndexByte(name, '['); i >= 0 {
		name = name[:i]
	}
	name = strings.Map(func(r rune) rune {
		if r == '.' || r == ' ' {
			return '_'
		}
		return r
	}, name)
	for _, spellings := range refNames {
		for _, s := range spellings {
			if strings.EqualFold(name, s) {
				return true
			}
		}
	}
	return false
}

// duplicateKey walks a JSON object's top level with json.Decoder's tokens.
func duplicateKey(doc []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(doc))
	if _, err := dec.Token(); err != nil {
		return true
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return true
		}
		key, _ := tok.(string)
		if seen[key] {
			return true
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return true
		}
	}
	return false
}

// checkFieldsAgree compares cb.Fields with the reference: the same keys, a JSON body's
// values the same once compacted, a form's the same strings; and a plain callback's
// strings are what lies between their quotes.
func checkFieldsAgree(t *testing.T, cb *Callback, want *refCallback) {
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

// referenceHeaders restates the README's header rules. The named fields (event, app
// id, timestamp, nonce) give their headers from their texts: the event as the prefix's
// Event whatever its spelling, and under its own name too; with the fields option, when
// it names any spelling of them. The other fields considered (those of the fields
// option, then the first maxFields by name, the signature aside) are each named by
// referenceHeaderName; names two fields share, and the names only the middleware and
// the named fields write, left out; a scalar's text (a string decoded, a number as
// written, true or false) when it is at most maxValue bytes, an array of scalars'
// elements (nulls skipped) when its JSON is at most maxValue bytes; control bytes as %XX.
func referenceHeaders(prefix string, ref *refCallback, fields map[string]json.RawMessage, selected []string, maxFields, maxValue int) map[string][]string {
	out := map[string][]string{}
	reserved := map[string]bool{}
	for _, own := range []string{"Verified", "Duplicate", "Rejection", "Event", "Signature"} {
		reserved[http.CanonicalHeaderKey(prefix+own)] = true
	}
	named := map[string]bool{}
	for _, spellings := range refNames {
		for _, s := range spellings {
			named[s] = true
			reserved[referenceHeaderName(prefix, s)] = true
		}
	}
	if ref != nil {
		for i := 1; i < len(refNames); i++ {
			text := ref.texts[i]
			chosen := selected == nil
			for _, s := range refNames[i] {
				chosen = chosen || containsString(selected, s)
			}
			if text == "" || !chosen || len(text) > maxValue {
				continue
			}
			out[referenceHeaderName(prefix, ref.names[i])] = []string{percentControls(text)}
			if i == 3 {
				out[http.CanonicalHeaderKey(prefix+"Event")] = []string{percentControls(text)}
			}
		}
	}
	var names []string
	for field := range fields {
		if (selected == nil || containsString(selected, field)) && !named[field] {
			names = append(names, field)
		}
	}
	sort.Strings(names)
	if len(names) > maxFields {
		names = names[:maxFields]
	}
	byHeader := map[string][]string{}
	for _, field := range names {
		if header := referenceHeaderName(prefix, field); header != "" && !reserved[header] {
			byHeader[header] = append(byHeader[header], field)
		}
	}
	for header, names := range byHeader {
		if len(names) > 1 {
			continue
		}
		raw := fields[names[0]]
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			continue
		}
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
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

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
