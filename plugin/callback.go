package zegocallback

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

// callback is a parsed ZEGO callback body.
type callback struct {
	// Fields holds every top-level field of the body as raw JSON. A form body's values
	// are turned into JSON strings (arrays of strings for a repeated key) once it
	// verified (see annotate).
	Fields map[string]json.RawMessage
	// form is a form body's values; doc a JSON body's document (URL-decoded for a
	// URL-encoded one); walkKeys says its keys still need the exact check; formTyped
	// that its Content-Type is a form's; recheck that checkReading has work to do.
	form      url.Values
	doc       []byte
	walkKeys  bool
	formTyped bool
	recheck   bool
	// texts and spelling are the named fields' texts and the names the body gives them,
	// "" where absent, by field (fieldSignature...): the signed ones as received (a JSON
	// number keeps its exact digits, a JSON string is its decoded value), the event's
	// and the app id's under whichever spelling the body uses (see namedSpellings), not
	// signed.
	texts, spelling [namedCount]string
	// pieces is a body the plain reading took, split at its quotes (plain_json.go),
	// which has written its headers; keyAt the pieces of its top-level keys, keys how
	// many; seen the keys met, by their number in the cache of names.
	pieces []string
	header http.Header // the request's
	keyAt  [maxPlainKeys]int
	keys   int
	seen   [maxCachedNames]bool
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
	digest     [sha256.Size]byte
	receivedMs int64
	entry      *memoryEntry // the memory store's entry claimed
	claim      string
	storeErr   error // why the store could not answer (unavailable)
	// remembered is the answer a delivered callback's entry keeps (rememberedAnswer),
	// when the claim found it delivered.
	remembered string
	// body is the request's body as received (nil until it was read whole), parsed says
	// the fields above hold what it says. Its signature held when key is set.
	body   []byte
	parsed bool
	// answer is the backend's answer to the forwarded callback: a 2xx is a delivery (see
	// ServeHTTP's step 10).
	answer *httptest.ResponseRecorder
	// answered says the backend's answer came to its end: the chain returned.
	answered bool
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
// recording ones; mini-game ones name the nonce SignatureNonce. A body holds each named
// field under one spelling at most.
var namedSpellings = [...]struct {
	name  string
	field int
}{
	{"signature", fieldSignature}, {"Signature", fieldSignature},
	{"timestamp", fieldTimestamp}, {"Timestamp", fieldTimestamp},
	{"nonce", fieldNonce}, {"Nonce", fieldNonce}, {"SignatureNonce", fieldNonce},
	{"event", fieldEvent}, {"Event", fieldEvent}, {"EventType", fieldEvent}, {"event_type", fieldEvent},
	{"appid", fieldAppID}, {"AppId", fieldAppID}, {"Appid", fieldAppID}, {"AppID", fieldAppID}, {"app_id", fieldAppID},
}

// The errors of readCallback, made once: building one on a hot path would cost the
// path of every callback (see ServeHTTP).
var (
	errEmptyBody         = fmt.Errorf("%w: empty body", errMalformedBody)
	errBOM               = fmt.Errorf("%w: a byte order mark before the body", errMalformedBody)
	errNUL               = fmt.Errorf("%w: a NUL byte (UTF-16 or UTF-32?)", errMalformedBody)
	errComment           = fmt.Errorf("%w: starts with '/', a comment to some JSON readers", errMalformedBody)
	errNotUTF8           = fmt.Errorf("%w: not valid UTF-8", errMalformedBody)
	errNotObject         = fmt.Errorf("%w: not a JSON object", errMalformedBody)
	errKeyTwice          = fmt.Errorf("%w: a key appears twice", errMalformedBody)
	errBadEncoding       = fmt.Errorf("%w: bad URL encoding", errMalformedBody)
	errNotForm           = fmt.Errorf("%w: not a JSON object nor a URL-encoded form", errMalformedBody)
	errTimestampNotWhole = fmt.Errorf("%w: timestamp is not a whole number", errMalformedBody)
)

// fieldError is the error of named field i, built when a body is refused, not kept in an
// array (a Yaegi trap).
func fieldError(i int, what string) error {
	return fmt.Errorf("%w: %s %s", errMalformedBody, [namedCount]string{"signature", "timestamp", "nonce", "event", "app id"}[i], what)
}

// readCallback parses a callback body and checks that every common backend reads it
// as the middleware does. Its first byte after JSON white space tells its kind: '{' is a
// JSON object, "%7B" (either case) a URL-encoded JSON document, anything else an
// application/x-www-form-urlencoded form (ZEGO's form mode). The error wraps
// errMalformedBody when the body is none of these, holds a key twice, has a named field
// under two spellings, misses a signed field or has it empty, or has a timestamp that
// is not a whole number, or when a backend could read it otherwise (see checkReading).
func readCallback(body []byte) (*callback, error) {
	cb, err := parseCallback(body, false)
	if err == nil {
		err = checkReading(cb, body)
	}
	if err != nil {
		return nil, err
	}
	if cb.Fields == nil {
		cb.Fields = formFields(cb.form)
	}
	return cb, nil
}

// parseCallback reads a body as far as checking its signature needs, with compiled
// passes only: whatever its bytes, an unsigned body costs in proportion to them. The
// checks that take a loop of interpreted code (a key walk, a form's fields) wait for
// checkReading, once the signature holds. formTyped says the Content-Type is a form's.
func parseCallback(body []byte, formTyped bool) (*callback, error) {
	cb := &callback{formTyped: formTyped}
	if err := parseInto(cb, body); err != nil {
		return nil, err
	}
	return cb, nil
}

// parseInto is parseCallback into a callback that inspect made.
func parseInto(cb *callback, body []byte) error {
	if len(body) == 0 || body[0] != '{' {
		if err := parseOtherBody(cb, body); err != nil {
			return err
		}
	} else if err := decodeJSON(cb, body); err != nil {
		return err
	}
	return readNamed(cb)
}

// parseOtherBody is parseCallback for a body that does not start with '{'.
func parseOtherBody(cb *callback, body []byte) error {
	start := len(body) - len(bytes.TrimLeft(body, " \t\r\n"))
	rest := body[start:]
	switch {
	case len(body) == 0:
		return errEmptyBody
	case bytes.HasPrefix(body, utf8BOM):
		// Some parsers skip it and read JSON, others read a form: refused, so that no
		// two readings of one body can differ.
		return errBOM
	case bytes.IndexByte(body, 0) >= 0:
		// UTF-16 or UTF-32 (a NUL in every ASCII character), which Python's json.loads and
		// Jackson detect and read as JSON, and no form holds as it is.
		return errNUL
	case len(rest) > 0 && rest[0] == '{':
		return decodeJSON(cb, body)
	case len(rest) > 0 && rest[0] == '/':
		// A comment, which Ruby's JSON.parse skips before the JSON that follows it.
		return errComment
	case len(rest) >= 3 && rest[0] == '%' && rest[1] == '7' && (rest[2] == 'B' || rest[2] == 'b'):
		doc, err := url.QueryUnescape(string(body))
		if err != nil {
			return errBadEncoding
		}
		return decodeJSON(cb, []byte(doc))
	}
	values, err := parseForm(body)
	if err != nil {
		return err
	}
	cb.form = values
	cb.recheck = true
	return nil
}

// quoteSpace and spaceQuoteEnd find a string that may start or end with a space, which a
// header value cannot carry as it is (a body with one is not plain); spaceEdge finds
// those ends and a space before a colon (spaceColon), in one call, for the plain reading.
// spaceQuoteEnd's literal prefix, a space and a quote, lets it skip a run of spaces at
// once; spaceEdge's, a space, makes it stop at each (readPlain takes bodies of at most
// readChunk).
var (
	quoteSpace    = []byte(`" `)
	spaceColon    = []byte(" :")
	spaceQuoteEnd = regexp.MustCompile(` "[\s,:\]}]`)
	spaceEdge     = regexp.MustCompile(` (?:"[\s,:\]}]|:)`)
)

// decodeJSON decodes a JSON object's top level into cb, with compiled passes only. It
// tells whether the body's strings are plain: without escapes or DEL, their texts lie
// between their quotes, and none starts or ends with a space. walkKeys says a repeated
// key is not ruled out yet, and keysUnique must look.
func decodeJSON(cb *callback, body []byte) error {
	// RFC 8259 requires UTF-8; a backend's parser may treat invalid bytes differently
	// from encoding/json, which replaces them, and two such keys could then differ there
	// but collide here.
	if !utf8.Valid(body) {
		return errNotUTF8
	}
	// Every key is followed by a colon: one count bounds the keys of any usual body.
	if len(body) > maxKeys && bytes.Count(body, colon) > maxKeys {
		if err := countKeys(body); err != nil {
			return err
		}
	}
	// Unmarshal checks the whole text is one valid JSON value. The map is sized for a
	// usual callback, so that it does not grow while Unmarshal fills it.
	fields := make(map[string]json.RawMessage, 32)
	if json.Unmarshal(body, &fields) != nil || fields == nil { // null makes it nil
		return errNotObject
	}
	cb.Fields = fields
	cb.doc = body
	if bytes.ContainsAny(body, "\\\x7f\t\r\n%+") {
		decodedUnusual(cb, body)
		return nil
	}
	// No escape, DEL, tab, line break or URL escape: plain unless a string may start or
	// end with a space (spaceEdge also finds a space before a colon, which keyEnd would
	// miss). As many key ends as decoded keys means none was dropped as a duplicate (nor
	// nested), when every key end was counted.
	cb.plain = !bytes.Contains(body, quoteSpace) && !spaceQuoteEnd.Match(body) && !bytes.Contains(body, spaceColon)
	cb.walkKeys = !cb.plain || bytes.Count(body, keyEnd) != len(fields)
	cb.recheck = true // foldsApart, once the signature holds
	return nil
}

// decodedUnusual is decodeJSON's end for a body with an escape, DEL, a tab, a line
// break, '%' or '+': the same checks, each byte class apart.
func decodedUnusual(cb *callback, body []byte) {
	cb.plain = !bytes.ContainsAny(body, "\\\x7f") && !bytes.Contains(body, quoteSpace) && !spaceQuoteEnd.Match(body)
	cb.walkKeys = !cb.plain || bytes.Count(body, keyEnd) != len(cb.Fields) || spaceBeforeColon(body)
	cb.recheck = true
}

// rechecked runs what a reading left for once the signature holds: plainKeys for a body
// the plain reading took, checkReading for another. It refuses a body they refuse, and
// reports whether the callback goes on.
func rechecked(m *middleware, rw http.ResponseWriter, req *http.Request, cb *callback) bool {
	var err error
	if cb.pieces != nil {
		err = plainKeys(m.headers, cb)
	} else {
		err = checkReading(cb, cb.body)
	}
	if err != nil {
		refuse(m, rw, req, cb, err)
		return false
	}
	return true
}

// checkReading finishes what parseCallback left for a callback whose signature holds
// (and for reportOnly): the checks that loop, and those that compare the body with
// other readings of it, so that a backend reads the event and the signed fields the
// middleware checked:
//   - a JSON object's keys, walked when counting could not vouch for them, and none
//     that Go's encoding/json would read as a named field's (foldsApart);
//   - a JSON body sent with a form's Content-Type, read as backends read a form;
//   - a body URL-decoded whole, as ZEGO's callback pages tell backends to do, which must
//     read as the same JSON (or as no JSON at all).
func checkReading(cb *callback, body []byte) error {
	if cb.walkKeys {
		if err := keysUnique(cb.doc, cb.Fields); err != nil {
			return err
		}
		cb.walkKeys = false
	}
	if cb.form == nil && foldAlias(cb.doc) {
		if err := foldsApart(cb, cb.doc); err != nil {
			return err
		}
	}
	if cb.formTyped && cb.form == nil {
		if err := formNamesInJSON(body); err != nil {
			return err
		}
	}
	urlEncodedJSON := cb.form == nil && !bytes.Equal(cb.doc, body)
	if !urlEncodedJSON && bytes.ContainsAny(body, "%+") {
		return checkURLDecoded(cb, body)
	}
	return nil
}

// checkURLDecoded refuses a body that, URL-decoded whole, is a JSON object whose named
// fields differ from the middleware's reading. (A URL-encoded JSON document is read that
// way already.)
func checkURLDecoded(cb *callback, body []byte) error {
	text, err := url.QueryUnescape(string(body))
	if err != nil {
		// A '%' that starts no escape: PHP and Node keep it as it is.
		text = urlDecoder.Replace(string(body))
	}
	if err := checkDecoded(cb, []byte(text)); err != nil {
		return err
	}
	// decodeURIComponent, Python's unquote, PHP's rawurldecode and Go's PathUnescape keep
	// '+': a number's exponent (1e+0) keeps the document JSON for them where '+' read as a
	// space would not. Decoded leniently, as unquote and rawurldecode do: a '%' that
	// starts no escape stays as it is.
	if bytes.IndexByte(body, '+') >= 0 {
		return checkDecoded(cb, []byte(plusDecoder.Replace(string(body))))
	}
	return nil
}

// checkDecoded is checkURLDecoded for one decoding of the body: a JSON object there must
// give the named fields cb read, and hold no key a Go struct reads as one (foldsApart).
func checkDecoded(cb *callback, decoded []byte) error {
	if rest := bytes.TrimLeft(decoded, " \t\r\n"); len(rest) == 0 || rest[0] != '{' {
		return nil
	}
	// Read as encoding/json, JavaScript and Python do: invalid UTF-8 read as U+FFFD.
	other := &callback{}
	if err := json.Unmarshal(decoded, &other.Fields); err != nil || other.Fields == nil {
		if err != nil && strings.Contains(err.Error(), "max depth") {
			// Nested deeper than encoding/json goes: JavaScript's JSON.parse has no
			// such limit, and would read what is there.
			return errURLDecodedDiffers
		}
		return nil // no JSON to read there: a backend reads nothing, not something else
	}
	if readNamed(other) != nil || other.spelling[fieldEvent] != cb.spelling[fieldEvent] || other.spelling[fieldAppID] != cb.spelling[fieldAppID] || other.texts[fieldSignature] != cb.texts[fieldSignature] || other.texts[fieldTimestamp] != cb.texts[fieldTimestamp] ||
		other.texts[fieldNonce] != cb.texts[fieldNonce] || other.texts[fieldEvent] != cb.texts[fieldEvent] || other.texts[fieldAppID] != cb.texts[fieldAppID] {
		return errURLDecodedDiffers
	}
	if foldAlias(decoded) && foldsApart(cb, decoded) != nil {
		return errURLDecodedDiffers
	}
	return nil
}

var errURLDecodedDiffers = fmt.Errorf("%w: URL-decoded, the body reads as other named fields", errMalformedBody)

var utf8BOM = []byte("\xef\xbb\xbf")

// readNamed reads the named fields of a parsed body, its JSON fields or its form's
// values, with a lookup per spelling. A named field's text must be one that every reader
// and a header carry alike: printable ASCII, no space at either end, and a number
// written as plain digits (an event or app id number at most 15 of them, which
// JavaScript and PHP read exactly); the timestamp's digits only.
func readNamed(cb *callback) error {
	fields := cb.Fields
	n := spellingCount
	field := 0 // declared outside the loop, which would allocate it on each pass (DESIGN.md)
	if cb.form != nil {
		if err := namedFormTexts(cb.form, cb.texts[:], cb.spelling[:]); err != nil {
			return err
		}
		n = 0
	}
	for i := 0; i < n; i++ {
		raw, found := fields[spellingNames[i]]
		if !found {
			continue
		}
		field = spellingFields[i]
		if cb.spelling[field] != "" {
			return fieldError(field, "is present under two spellings")
		}
		cb.spelling[field] = spellingNames[i]
		if raw[0] == '"' && cb.plain {
			cb.texts[field] = string(raw[1 : len(raw)-1])
		} else if text, err := namedJSONText(raw, field); err != nil {
			return err
		} else {
			cb.texts[field] = text
		}
	}
	return readNamedTexts(cb)
}

// namedTextsSeparator joins the named fields' texts for readNamedTexts' checks; no text
// it accepts holds it.
const namedTextsSeparator = "\x01"

// namedTextBytes is what the joined texts may hold: printable ASCII and the separator.
const namedTextBytes = printableASCII + namedTextsSeparator

// digits are what a timestamp's text holds.
const digits = "0123456789"

// namedTextError says which named field's text readNamed refuses: built only then.
func namedTextError(texts []string) error {
	for i := 0; i < namedCount; i++ {
		t := texts[i]
		if i < fieldEvent && t == "" {
			return fieldError(i, "is missing or empty")
		}
		if t != "" && (strings.Trim(t, printableASCII) != "" || t[0] == ' ' || t[len(t)-1] == ' ') {
			return fieldError(i, "holds a character a header cannot carry as it is")
		}
	}
	return errTimestampNotWhole
}

// namedFormTexts is readNamed's lookup for a form: one value per named field.
func namedFormTexts(form url.Values, texts, names []string) error {
	field := 0
	for i := 0; i < spellingCount; i++ {
		vs, found := form[spellingNames[i]]
		if !found {
			continue
		}
		field = spellingFields[i]
		if names[field] != "" {
			return fieldError(field, "is present under two spellings")
		}
		if len(vs) > 1 {
			return fieldError(field, "is present twice")
		}
		names[field] = spellingNames[i]
		texts[field] = vs[0]
	}
	return nil
}

// namedJSONText is the text of a named field that is not a plain string: a string with
// escapes, or a number written as plain digits (an event's or app id's at most 15).
func namedJSONText(raw json.RawMessage, field int) (string, error) {
	text, kind := scalarText(raw)
	switch {
	case kind == kindString:
		return text, nil
	case kind != kindNumber:
		return "", fieldError(field, "is not a string or a number")
	case strings.Trim(text, digits) != "" || field >= fieldEvent && len(text) > 15:
		return "", fieldError(field, "is a number that is not a plain integer")
	}
	return text, nil
}

// spellingCount is how many spellings namedSpellings holds.
const spellingCount = len(namedSpellings)

// spellingNames and spellingFields are namedSpellings in two plain slices, for the
// request path.
var (
	spellingNames = func() []string {
		out := make([]string, 0, len(namedSpellings))
		for _, sp := range namedSpellings {
			out = append(out, sp.name)
		}
		return out
	}()
	spellingFields = func() []int {
		out := make([]int, 0, len(namedSpellings))
		for _, sp := range namedSpellings {
			out = append(out, sp.field)
		}
		return out
	}()
)

// spellingField maps each spelling to its named field.
var spellingField = func() map[string]int {
	m := make(map[string]int, len(namedSpellings))
	for _, sp := range namedSpellings {
		m[sp.name] = sp.field
	}
	return m
}()

// printableASCII is what a named field's text may hold.
const printableASCII = " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"

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
