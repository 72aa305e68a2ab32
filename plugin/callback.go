package zegocallback

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Callback is a parsed ZEGO callback body.
type Callback struct {
	// Signature, Timestamp and Nonce are the signed fields' texts as received: a JSON
	// number keeps its exact digits, a JSON string is its decoded value.
	Signature string
	Timestamp string
	Nonce     string
	// Event and AppID are the event's and the app id's texts, under whichever spelling
	// the body uses (see namedSpellings), "" when absent. They are not signed.
	Event string
	AppID string
	// Fields holds every top-level field of the body as raw JSON. A form body's values
	// are turned into JSON strings (arrays of strings for a repeated key).
	Fields map[string]json.RawMessage
	// names are the spellings the body uses for the named fields, "" where absent.
	names [namedCount]string
	// plain is set when no string in a JSON body holds an escape or a DEL byte: a
	// string's text is then what lies between its quotes, free of control bytes.
	plain bool
	// timestamp is Timestamp's value, math.MaxUint64 when it does not fit in 64 bits.
	timestamp uint64
	// key is the replay store's key (the decoded signature, and with replayKey
	// signatureAndBody the body's digest); digest the body's digest; receivedMs the time
	// it was verified, also the memory store's claim token; claim the Redis store's claim
	// token. All are set by the middleware.
	key        string
	digest     uint64
	receivedMs int64
	claim      string
}

// The named fields: the three signed ones, required, then the event and the app id.
const (
	fieldSignature = iota
	fieldTimestamp
	fieldNonce
	fieldEvent
	fieldAppID
	namedCount
)

// namedSpellings are the names ZEGO's products give the named fields: lower snake case
// in RTC and ZIM callbacks, PascalCase in AI Agent, ASR and moderation ones, EventType
// (a number) in digital human and cloud player ones, event_type and app_id in cloud
// recording ones. A body holds each named field under one spelling at most.
var namedSpellings = [...]struct {
	name  string
	field int
}{
	{"signature", fieldSignature}, {"Signature", fieldSignature},
	{"timestamp", fieldTimestamp}, {"Timestamp", fieldTimestamp},
	{"nonce", fieldNonce}, {"Nonce", fieldNonce},
	{"event", fieldEvent}, {"Event", fieldEvent}, {"EventType", fieldEvent}, {"event_type", fieldEvent},
	{"appid", fieldAppID}, {"AppId", fieldAppID}, {"Appid", fieldAppID}, {"AppID", fieldAppID}, {"app_id", fieldAppID},
}

// namedByLowerName maps each spelling, lower-cased, to its field: what a name that a
// backend might read as a named field is compared with.
var namedByLowerName = func() map[string]int {
	m := make(map[string]int, len(namedSpellings))
	for _, sp := range namedSpellings {
		m[strings.ToLower(sp.name)] = sp.field
	}
	return m
}()

// The errors of ParseCallback, made once: building one on a hot path would cost the
// path of every callback (see ServeHTTP).
var (
	errEmptyBody         = fmt.Errorf("%w: empty body", ErrMalformedBody)
	errBOM               = fmt.Errorf("%w: a byte order mark before the body", ErrMalformedBody)
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
	return fmt.Errorf("%w: %s %s", ErrMalformedBody, [namedCount]string{"signature", "timestamp", "nonce", "event", "app id"}[i], what)
}

// ParseCallback parses a callback body. Its first byte after JSON white space tells its
// kind: '{' is a JSON object, "%7B" (either case) a URL-encoded JSON document, anything
// else an application/x-www-form-urlencoded form (ZEGO's form mode). The error wraps
// ErrMalformedBody when the body is none of these, holds a key twice, has a named field
// under two spellings, misses a signed field or has it empty, or has a timestamp that
// is not a whole number.
func ParseCallback(body []byte) (*Callback, error) {
	return parseCallback(body, false)
}

// parseCallback is ParseCallback for a body whose Content-Type may be a form type: a
// JSON body sent so is also read as PHP and Node read a form, and refused if that
// reading finds a named field (see formReadingNames).
func parseCallback(body []byte, formTyped bool) (*Callback, error) {
	if len(body) == 0 || body[0] != '{' || formTyped {
		return parseOtherBody(body, formTyped)
	}
	fields, plain, err := parseJSONObject(body)
	if err != nil {
		return nil, err
	}
	return newCallback(fields, plain)
}

// parseOtherBody is parseCallback for a body that does not start with '{', or whose
// Content-Type is a form type.
func parseOtherBody(body []byte, formTyped bool) (*Callback, error) {
	start := len(body) - len(bytes.TrimLeft(body, " \t\r\n"))
	rest := body[start:]
	var fields map[string]json.RawMessage
	plain := false
	var err error
	switch {
	case len(body) == 0:
		return nil, errEmptyBody
	case bytes.HasPrefix(body, utf8BOM):
		// Some parsers skip it and read JSON, others read a form: refused, so that no
		// two readings of one body can differ.
		return nil, errBOM
	case len(rest) > 0 && rest[0] == '{':
		fields, plain, err = parseJSONObject(body)
	case len(rest) >= 3 && rest[0] == '%' && rest[1] == '7' && (rest[2] == 'B' || rest[2] == 'b'):
		fields, plain, err = parseEncodedJSON(body)
	default:
		formTyped = false // a form is read as one already
		fields, err = parseForm(body)
	}
	if err == nil && formTyped {
		err = formReadingNames(body)
	}
	if err != nil {
		return nil, err
	}
	return newCallback(fields, plain)
}

var utf8BOM = []byte("\xef\xbb\xbf")

// newCallback reads the named fields of a parsed body, in one loop rather than a helper
// per field: under Yaegi each call costs more than the work it would do.
func newCallback(fields map[string]json.RawMessage, plain bool) (*Callback, error) {
	cb := &Callback{Fields: fields, plain: plain}
	var texts [namedCount]string
	for i := 0; i < len(namedSpellings); i++ {
		name := namedSpellings[i].name
		field := namedSpellings[i].field
		raw, found := fields[name]
		if !found {
			continue
		}
		if cb.names[field] != "" {
			return nil, fieldError(field, "is present under two spellings")
		}
		cb.names[field] = name
		if raw[0] == '"' && plain {
			texts[field] = string(raw[1 : len(raw)-1])
		} else if texts[field], found = fieldText(raw); !found && field != fieldAppID {
			return nil, fieldError(field, "is not a string or a number")
		}
	}
	for i := 0; i < fieldEvent; i++ {
		if cb.names[i] == "" {
			return nil, fieldError(i, "is missing")
		}
		if texts[i] == "" {
			return nil, fieldError(i, "is empty")
		}
	}
	// A whole number: digits only, no sign, no exponent, no space. One too large for
	// 64 bits is still whole; the freshness check rejects it as stale.
	ts, err := strconv.ParseUint(texts[fieldTimestamp], 10, 64)
	if err != nil && !wholeButLarge(texts[fieldTimestamp], err) {
		return nil, errTimestampNotWhole
	}
	cb.Signature = texts[fieldSignature]
	cb.Timestamp = texts[fieldTimestamp]
	cb.Nonce = texts[fieldNonce]
	cb.Event = texts[fieldEvent]
	cb.AppID = texts[fieldAppID]
	cb.timestamp = ts
	return cb, nil
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

// parseEncodedJSON decodes a URL-encoded JSON document ("%7B%22appid%22...").
func parseEncodedJSON(body []byte) (map[string]json.RawMessage, bool, error) {
	doc, err := url.QueryUnescape(string(body))
	if err != nil {
		return nil, false, errBadEncoding
	}
	return parseJSONObject([]byte(doc))
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
