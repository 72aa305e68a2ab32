package zegocallback

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Callback is a parsed ZEGO callback body.
type Callback struct {
	// Signature, Timestamp and Nonce are the signed fields' texts as received: a JSON
	// number keeps its exact digits, a JSON string is its decoded value.
	Signature string
	Timestamp string
	Nonce     string
	// Event and AppID are the event and appid (or Event and AppId) fields' texts, "" when
	// absent. They are not signed.
	Event string
	AppID string
	// Fields holds every top-level field of the body as raw JSON. A form body's values
	// are turned into JSON strings (arrays of strings for a repeated key).
	Fields map[string]json.RawMessage
	// plain is set when no string in a JSON body holds an escape or a DEL byte: a
	// string's text is then what lies between its quotes, free of control bytes.
	plain bool
	// timestamp is Timestamp's value, math.MaxUint64 when it does not fit in 64 bits.
	timestamp uint64
	// key is the decoded signature, the replay store's key; receivedMs the time it was
	// verified. Both are set by the middleware.
	key        string
	receivedMs int64
}

// The fields ParseCallback reads by name, each under its lower-case or Pascal-case
// spelling; the first three are signed and required.
var namedFields = [...][2]string{
	{"signature", "Signature"},
	{"timestamp", "Timestamp"},
	{"nonce", "Nonce"},
	{"event", "Event"},
	{"appid", "AppId"},
}

// The errors of ParseCallback, made once: building one on a hot path would cost the
// path of every callback (see ServeHTTP).
var (
	errEmptyBody         = fmt.Errorf("%w: empty body", ErrMalformedBody)
	errNotUTF8           = fmt.Errorf("%w: not valid UTF-8", ErrMalformedBody)
	errNotObject         = fmt.Errorf("%w: not a JSON object", ErrMalformedBody)
	errKeyTwice          = fmt.Errorf("%w: a key appears twice", ErrMalformedBody)
	errBadEncoding       = fmt.Errorf("%w: bad URL encoding", ErrMalformedBody)
	errNotForm           = fmt.Errorf("%w: not a JSON object nor a URL-encoded form", ErrMalformedBody)
	errTimestampNotWhole = fmt.Errorf("%w: timestamp is not a whole number", ErrMalformedBody)
)

// fieldError is the error of named field i. It is built when a body is refused, not
// ahead: under Yaegi, errors kept in an array no longer match errors.Is.
func fieldError(i int, what string) error {
	return fmt.Errorf("%w: %s %s", ErrMalformedBody, namedFields[i][0], what)
}

// keyEnd ends every key of a JSON object that has no white space before its colons.
var keyEnd = []byte(`":`)

// maxKeys bounds the keys of a body (at any depth), or the fields of a form: ZEGO's
// callbacks have a few dozen, and checking a body for a repeated key costs in proportion
// to them before its signature can be checked.
const maxKeys = 10000

var errTooManyKeys = fmt.Errorf("%w: more than %d keys", ErrMalformedBody, maxKeys)

// ParseCallback parses a callback body. Its first byte tells its kind, whatever the
// Content-Type says: '{' is a JSON object, "%7B" (either case) a URL-encoded JSON
// document, anything else an application/x-www-form-urlencoded form (ZEGO's form mode).
// The error wraps ErrMalformedBody when the body is none of these, holds a key twice, has
// a signed field (or event) under both spellings, misses a signed field or has it empty,
// or has a timestamp that is not a whole number.
func ParseCallback(body []byte) (*Callback, error) {
	if len(body) == 0 || body[0] != '{' {
		return parseOtherBody(body)
	}
	fields, plain, err := parseJSONObject(body)
	if err != nil {
		return nil, err
	}
	return newCallback(fields, plain)
}

// parseOtherBody is ParseCallback for a body that does not start with '{'.
func parseOtherBody(body []byte) (*Callback, error) {
	var fields map[string]json.RawMessage
	plain := false
	var err error
	switch {
	case len(body) == 0:
		return nil, errEmptyBody
	case len(body) >= 3 && body[0] == '%' && body[1] == '7' && (body[2] == 'B' || body[2] == 'b'):
		fields, plain, err = parseEncodedJSON(body)
	default:
		fields, err = parseForm(body)
	}
	if err != nil {
		return nil, err
	}
	return newCallback(fields, plain)
}

// newCallback reads the named fields of a parsed body, in one loop rather than a helper
// per field: under Yaegi each call costs more than the work it would do.
func newCallback(fields map[string]json.RawMessage, plain bool) (*Callback, error) {
	var texts [len(namedFields)]string
	for i := 0; i < len(namedFields); i++ {
		raw, found := fields[namedFields[i][0]]
		if rawPascal, foundPascal := fields[namedFields[i][1]]; foundPascal {
			if !found {
				raw, found = rawPascal, true
			} else if i < 4 { // appid only goes to the log: both spellings are let be
				return nil, fieldError(i, "is present under both spellings")
			}
		}
		if !found {
			if i < 3 {
				return nil, fieldError(i, "is missing")
			}
			continue
		}
		if raw[0] == '"' && plain {
			texts[i] = string(raw[1 : len(raw)-1])
		} else if texts[i], found = fieldText(raw); !found && i < 4 {
			return nil, fieldError(i, "is not a string or a number")
		}
		if i < 3 && texts[i] == "" {
			return nil, fieldError(i, "is empty")
		}
	}
	// A whole number: digits only, no sign, no exponent, no space. One too large for
	// 64 bits is still whole; the freshness check rejects it as stale.
	ts, err := strconv.ParseUint(texts[1], 10, 64)
	if err != nil && !wholeButLarge(texts[1], err) {
		return nil, errTimestampNotWhole
	}
	return &Callback{
		Signature: texts[0], Timestamp: texts[1], Nonce: texts[2], Event: texts[3], AppID: texts[4],
		Fields: fields, plain: plain, timestamp: ts,
	}, nil
}

// wholeButLarge reports whether a timestamp ParseUint refused is only too large: it
// stops at the first overflow, before any junk that follows the digits.
func wholeButLarge(timestamp string, err error) bool {
	return errors.Is(err, strconv.ErrRange) && strings.Trim(timestamp, "0123456789") == ""
}

// fieldText is the text of a named field that is a number or a string with escapes, and
// whether it is one of those.
func fieldText(raw json.RawMessage) (string, bool) {
	text, kind := scalarText(raw)
	return text, kind == kindString || kind == kindNumber
}

// parseJSONObject decodes a JSON object's top level with one compiled call and checks
// that no key appears twice. It reports whether the body's strings are plain: without
// escapes or DEL, their texts lie between their quotes.
func parseJSONObject(body []byte) (map[string]json.RawMessage, bool, error) {
	// RFC 8259 requires UTF-8; a backend's parser may treat invalid bytes differently
	// from encoding/json, which replaces them, and two such keys could then differ there
	// but collide here.
	if !utf8.Valid(body) {
		return nil, false, errNotUTF8
	}
	// In a body whose strings hold no quote (no escape), `":` ends a key and nothing
	// else; with escapes it is an upper bound of the keys.
	keys := bytes.Count(body, keyEnd)
	if keys > maxKeys {
		return nil, false, errTooManyKeys
	}
	// Unmarshal checks the whole text is one valid JSON value.
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil || fields == nil {
		return nil, false, errNotObject
	}
	plain := !bytes.ContainsAny(body, "\\\x7f")
	// As many key ends as decoded keys means none was dropped as a duplicate (nor
	// nested), when every key end was counted: no escape, no space before a colon.
	if (!plain || keys != len(fields) || spaceBeforeColon(body)) && !keysUnique(body, fields) {
		return nil, false, errKeyTwice
	}
	return fields, plain, nil
}

// spaceBeforeColon reports whether white space may sit between a key and its colon, where
// `":` would not count it. No encoder writes that; a hand-made body may. (Spaces alone,
// as in ZEGO's documented example, need one search.)
func spaceBeforeColon(body []byte) bool {
	if bytes.Contains(body, []byte(" :")) {
		return true
	}
	return bytes.ContainsAny(body, "\t\r\n") &&
		(bytes.Contains(body, []byte("\t:")) || bytes.Contains(body, []byte("\n:")) || bytes.Contains(body, []byte("\r:")))
}

// keysUnique reports whether no key of the JSON object appears twice (the exact check,
// for bodies the count in parseJSONObject cannot vouch for).
//
// encoding/json keeps the last of two equal keys, so the decoded map has fewer entries
// than the object. Measuring the map against the compact text tells: braces, commas,
// quotes and colons plus every key and raw value add up to the text's length exactly
// when nothing was dropped and no key was written with an escape (which decodes
// shorter). Valid UTF-8 never decodes longer. Only the rare mismatch pays for a walk
// of the keys.
func keysUnique(body []byte, fields map[string]json.RawMessage) bool {
	compact := body
	if bytes.ContainsAny(body, " \t\r\n") {
		var buf bytes.Buffer
		buf.Grow(len(body))
		if json.Compact(&buf, body) != nil {
			return false
		}
		compact = buf.Bytes()
	}
	n := 1
	for k, v := range fields {
		// Raw values keep the white space inside arrays and objects: compact them too.
		n += len(k) + compactLen(v) + 4
	}
	if len(fields) == 0 {
		n++
	}
	if n == len(compact) {
		return true
	}
	return keysUniqueSlow(compact, len(fields))
}

// compactLen is the length of a raw JSON value without its insignificant white space.
func compactLen(v json.RawMessage) int {
	if !bytes.ContainsAny(v, " \t\r\n") {
		return len(v)
	}
	var buf bytes.Buffer
	if json.Compact(&buf, v) != nil {
		return len(v)
	}
	return buf.Len()
}

// keysUniqueSlow walks the object's top-level keys, decoded, one by one.
func keysUniqueSlow(compact []byte, hint int) bool {
	dec := json.NewDecoder(bytes.NewReader(compact))
	if _, err := dec.Token(); err != nil {
		return false
	}
	seen := make(map[string]bool, hint)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		key, _ := tok.(string)
		if seen[key] {
			return false
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return false
		}
	}
	return true
}

// parseEncodedJSON decodes a URL-encoded JSON document ("%7B%22appid%22...").
func parseEncodedJSON(body []byte) (map[string]json.RawMessage, bool, error) {
	doc, err := url.QueryUnescape(string(body))
	if err != nil {
		return nil, false, errBadEncoding
	}
	return parseJSONObject([]byte(doc))
}

// parseForm decodes a form body into the same shape as a JSON one: each value becomes a
// JSON string, a repeated key an array of strings (so a signed field sent twice is not a
// scalar and is refused).
func parseForm(body []byte) (map[string]json.RawMessage, error) {
	if bytes.Count(body, []byte("&")) >= maxKeys {
		return nil, errTooManyKeys
	}
	values, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errNotForm
	}
	fields := make(map[string]json.RawMessage, len(values))
	for k, vs := range values {
		if !utf8.ValidString(k) {
			return nil, errNotUTF8
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return nil, errNotUTF8
			}
		}
		var raw []byte
		if len(vs) == 1 {
			raw, err = json.Marshal(vs[0])
		} else {
			raw, err = json.Marshal(vs)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: form value", ErrMalformedBody)
		}
		fields[k] = raw
	}
	return fields, nil
}

// The kinds of a raw JSON value.
const (
	kindString = iota
	kindNumber
	kindBool
	kindNull
	kindArray
	kindObject
)

// scalarText returns the text of a raw JSON value and its kind: a string's decoded value,
// a number's exact text, true or false; "" for null, arrays and objects.
func scalarText(raw json.RawMessage) (string, int) {
	if len(raw) == 0 {
		return "", kindNull
	}
	switch raw[0] {
	case '"':
		// Most strings hold no escape: their text is what lies between the quotes.
		if bytes.IndexByte(raw, '\\') < 0 {
			return string(raw[1 : len(raw)-1]), kindString
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", kindNull
		}
		return s, kindString
	case 't', 'f':
		return string(raw), kindBool
	case 'n':
		return "", kindNull
	case '[':
		return "", kindArray
	case '{':
		return "", kindObject
	}
	return string(raw), kindNumber
}
