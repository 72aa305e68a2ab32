package zegocallback

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
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
}

// ParseCallback parses a callback body. Its first byte tells its kind, whatever the
// Content-Type says: '{' is a JSON object, "%7B" (either case) a URL-encoded JSON
// document, anything else an application/x-www-form-urlencoded form (ZEGO's form mode).
// The error wraps ErrMalformedBody when the body is none of these, holds a key twice, has
// a signed field under both spellings (signature and Signature), misses one or has it
// empty, or has a timestamp that is not a whole number.
func ParseCallback(body []byte) (*Callback, error) {
	var fields map[string]json.RawMessage
	var err error
	switch {
	case len(body) == 0:
		return nil, fmt.Errorf("%w: empty body", ErrMalformedBody)
	case body[0] == '{':
		fields, err = parseJSONObject(body)
	case len(body) >= 3 && body[0] == '%' && body[1] == '7' && (body[2] == 'B' || body[2] == 'b'):
		fields, err = parseEncodedJSON(body)
	default:
		fields, err = parseForm(body)
	}
	if err != nil {
		return nil, err
	}

	cb := &Callback{Fields: fields}
	if cb.Signature, err = signedField(fields, "signature", "Signature"); err != nil {
		return nil, err
	}
	if cb.Timestamp, err = signedField(fields, "timestamp", "Timestamp"); err != nil {
		return nil, err
	}
	if cb.Nonce, err = signedField(fields, "nonce", "Nonce"); err != nil {
		return nil, err
	}
	// A whole number: digits only, no sign, no exponent, no space. One too large for
	// 64 bits is still whole; the freshness check rejects it as stale.
	if _, perr := strconv.ParseUint(cb.Timestamp, 10, 64); perr != nil && !errors.Is(perr, strconv.ErrRange) {
		return nil, fmt.Errorf("%w: timestamp is not a whole number", ErrMalformedBody)
	}
	if cb.Event, err = optionalField(fields, "event", "Event"); err != nil {
		return nil, err
	}
	// appid only goes to the log: a body that spells it both ways is not refused for it.
	cb.AppID, _ = optionalField(fields, "appid", "AppId")
	return cb, nil
}

// parseJSONObject decodes a JSON object's top level with one compiled call and checks
// that no key appears twice.
func parseJSONObject(body []byte) (map[string]json.RawMessage, error) {
	// RFC 8259 requires UTF-8; a backend's parser may treat invalid bytes differently
	// from encoding/json, which replaces them, and two such keys could then differ there
	// but collide here.
	if !utf8.Valid(body) {
		return nil, fmt.Errorf("%w: not valid UTF-8", ErrMalformedBody)
	}
	var compact bytes.Buffer
	compact.Grow(len(body))
	if err := json.Compact(&compact, body); err != nil {
		return nil, fmt.Errorf("%w: not a JSON document", ErrMalformedBody)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(compact.Bytes(), &fields); err != nil || fields == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformedBody)
	}
	if !keysUnique(compact.Bytes(), fields) {
		return nil, fmt.Errorf("%w: a key appears twice", ErrMalformedBody)
	}
	return fields, nil
}

// keysUnique reports whether no key of the compact JSON object appears twice.
//
// encoding/json keeps the last of two equal keys, so the decoded map has fewer entries
// than the object. Measuring the map against the compact text tells: braces, commas,
// quotes and colons plus every key and raw value add up to the text's length exactly
// when nothing was dropped and no key was written with an escape (which decodes
// shorter). Valid UTF-8 never decodes longer. Only the rare mismatch pays for a walk
// of the keys.
func keysUnique(compact []byte, fields map[string]json.RawMessage) bool {
	n := 1
	for k, v := range fields {
		n += len(k) + len(v) + 4
	}
	if len(fields) == 0 {
		n++
	}
	if n == len(compact) {
		return true
	}
	return keysUniqueSlow(compact, len(fields))
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
func parseEncodedJSON(body []byte) (map[string]json.RawMessage, error) {
	doc, err := url.QueryUnescape(string(body))
	if err != nil {
		return nil, fmt.Errorf("%w: bad URL encoding", ErrMalformedBody)
	}
	return parseJSONObject([]byte(doc))
}

// parseForm decodes a form body into the same shape as a JSON one: each value becomes a
// JSON string, a repeated key an array of strings (so a signed field sent twice is not a
// scalar and is refused).
func parseForm(body []byte) (map[string]json.RawMessage, error) {
	values, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("%w: not a JSON object nor a URL-encoded form", ErrMalformedBody)
	}
	fields := make(map[string]json.RawMessage, len(values))
	for k, vs := range values {
		if !utf8.ValidString(k) {
			return nil, fmt.Errorf("%w: not valid UTF-8", ErrMalformedBody)
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return nil, fmt.Errorf("%w: not valid UTF-8", ErrMalformedBody)
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

// signedField returns a signed field's text, found under its lower or its Pascal-case
// name but not both, and neither empty nor anything but a string or a number.
func signedField(fields map[string]json.RawMessage, lower, pascal string) (string, error) {
	text, found, err := lookupField(fields, lower, pascal)
	if err != nil {
		return "", err
	}
	if !found || text == "" {
		return "", fmt.Errorf("%w: %s is missing or empty", ErrMalformedBody, lower)
	}
	return text, nil
}

// optionalField is signedField for a field that may be absent.
func optionalField(fields map[string]json.RawMessage, lower, pascal string) (string, error) {
	text, _, err := lookupField(fields, lower, pascal)
	return text, err
}

func lookupField(fields map[string]json.RawMessage, lower, pascal string) (string, bool, error) {
	raw, found := fields[lower]
	if rawPascal, foundPascal := fields[pascal]; foundPascal {
		if found {
			return "", false, fmt.Errorf("%w: both %s and %s are present", ErrMalformedBody, lower, pascal)
		}
		raw, found = rawPascal, true
	}
	if !found {
		return "", false, nil
	}
	text, kind := scalarText(raw)
	if kind != kindString && kind != kindNumber {
		return "", false, fmt.Errorf("%w: %s is not a string or a number", ErrMalformedBody, lower)
	}
	return text, true, nil
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
