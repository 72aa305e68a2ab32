package zegocallback

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// The middleware's own headers, after the prefix. A body field that would map to one of
// them is not copied.
const (
	headerVerified  = "Verified"
	headerDuplicate = "Duplicate"
	headerRejection = "Rejection"
)

// maxFieldNameBytes bounds the field names that become header names: no ZEGO field comes
// near it, and it bounds what deriving an attacker's name can cost.
const maxFieldNameBytes = 128

// maxCachedNames bounds the cache of header names derived from field names.
const maxCachedNames = 512

// controlBytes are the bytes written as %XX in header values.
const controlBytes = "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f" +
	"\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f"

// headerBuilder turns a verified callback's top-level fields into request headers. Its
// functions are plain functions, not methods (see DESIGN.md, the request path runs in
// Yaegi).
//
// The names it writes hold only letters, digits and '-' (every other character of a
// field name is read as '-'), so that two of its headers are one for CGI and PHP, which
// read '-', '_' and '.' alike, only when they are one name here: two fields that would
// write one header are both left out. The headers of the named fields (event, app id,
// timestamp, nonce) carry the values the checks used, and no other field can write them.
type headerBuilder struct {
	prefix     string // as configured
	normPrefix string // lower case, each character but a letter or digit read as '-'
	prefixLen  int    // its length
	plainKeys  int    // the most top-level keys the plain reading takes: maxFields, at most maxPlainKeys
	letterAt   int    // the place of the prefix's last letter (checkHeaderPrefix wants one)
	letter     byte   // that letter in lower case
	verified   string // canonical names of the middleware's own headers
	duplicate  string
	rejection  string
	event      string // the event's header, whatever the event's spelling
	eventType  string // the header of EventType and event_type
	// signatureNonce is the header of SignatureNonce.
	signatureNonce string
	timestamp      string
	nonce          string
	// withTimestamp and the like say which named fields the fields option selects.
	withTimestamp, withNonce, withEvent, withAppID bool
	maxFields                                      int
	maxValueBytes                                  int
	selected                                       map[string]bool // the fields option; nil means every field
	// selectedNames are the names the fields option makes annotate look up: its other
	// fields and every spelling of its named ones; nil when they could be more than
	// maxFields (consideredFields then sorts them).
	selectedNames []string
	reserved      map[string]bool // the headers only the named fields and the middleware write
	spellingName  map[string]string
	names         atomic.Value // map[string]*fieldName: what each field name becomes
	plainNames    atomic.Value // the same but the names marked shared: the plain reading's
	namesMu       sync.Mutex
}

func newHeaderBuilder(prefix string, fields []string, maxFields, maxValueBytes int) *headerBuilder {
	b := &headerBuilder{
		prefix:         prefix,
		verified:       http.CanonicalHeaderKey(prefix + headerVerified),
		duplicate:      http.CanonicalHeaderKey(prefix + headerDuplicate),
		rejection:      http.CanonicalHeaderKey(prefix + headerRejection),
		event:          http.CanonicalHeaderKey(prefix + "Event"),
		eventType:      http.CanonicalHeaderKey(prefix + "Event-Type"),
		signatureNonce: http.CanonicalHeaderKey(prefix + "Signature-Nonce"),
		timestamp:      http.CanonicalHeaderKey(prefix + "Timestamp"),
		nonce:          http.CanonicalHeaderKey(prefix + "Nonce"),
		maxFields:      maxFields,
		plainKeys:      maxFields,
		maxValueBytes:  maxValueBytes,
		reserved:       make(map[string]bool),
		spellingName:   make(map[string]string),
	}
	if b.plainKeys > maxPlainKeys {
		b.plainKeys = maxPlainKeys
	}
	norm := []byte(strings.ToLower(prefix))
	b.letterAt = -1
	for i, c := range norm {
		if 'a' <= c && c <= 'z' {
			b.letterAt, b.letter = i, c
		} else if c < '0' || c > '9' {
			norm[i] = '-'
		}
	}
	b.normPrefix = string(norm)
	b.prefixLen = len(norm)
	for _, own := range []string{b.verified, b.duplicate, b.rejection, b.event, http.CanonicalHeaderKey(prefix + "Signature")} {
		b.reserved[own] = true
	}
	names := make(map[string]*fieldName)
	for _, sp := range namedSpellings {
		// A named field's header is its own name's, which no other field may write: the
		// loop over the fields writes it like any other, and its text is the one the
		// checks used (a plain string's, a number's digits, or a string's decoded
		// printable ASCII, which headerValue leaves as it is).
		b.spellingName[sp.name] = fieldHeaderName(b, sp.name)
		b.reserved[b.spellingName[sp.name]] = true
		header := b.spellingName[sp.name]
		if sp.field == fieldSignature {
			header = ""
		}
		names[sp.name] = &fieldName{header: header, id: len(names), named: sp.field, alias: sp.field == fieldEvent && len(sp.name) > len("event") || sp.field == fieldNonce && len(sp.name) > len("nonce")}
	}
	all := len(fields) == 0
	b.withTimestamp, b.withNonce, b.withEvent, b.withAppID = all, all, all, all
	if !all {
		b.selected = make(map[string]bool, len(fields))
		for _, f := range fields {
			// Any spelling selects the named field, whatever the body's spelling.
			switch field, isNamed := spellingField[f]; {
			case !isNamed:
				b.selected[f] = true
				if names[f] == nil {
					// A number of its own while the cache has room: past it, the plain
					// reading leaves the field to plainKeys (storeNames).
					id := len(names)
					if id >= maxCachedNames {
						id = -1
					}
					cacheName(names, f, &fieldName{header: headerName(b, f), id: id, named: -1})
				}
			case field == fieldTimestamp:
				b.withTimestamp = true
			case field == fieldNonce:
				b.withNonce = true
			case field == fieldEvent:
				b.withEvent = true
			case field == fieldAppID:
				b.withAppID = true
			}
		}
	}
	delete(b.reserved, "")
	for field, n := range names {
		n.considered = considered(b, field, n)
	}
	storeNames(b, names)
	if b.selected != nil && len(b.selected) <= maxFields {
		b.selectedNames = make([]string, 0, len(b.selected)+len(namedSpellings))
		for f := range b.selected {
			b.selectedNames = append(b.selectedNames, f)
		}
		for _, sp := range namedSpellings {
			if sp.field == fieldTimestamp && b.withTimestamp || sp.field == fieldNonce && b.withNonce ||
				sp.field == fieldEvent && b.withEvent || sp.field == fieldAppID && b.withAppID {
				b.selectedNames = append(b.selectedNames, sp.name)
			}
		}
	}
	return b
}

// stripPrefixed removes every header whose name starts with the prefix, read without
// regard to case and with each character other than a letter or digit read as '-':
// CGI, PHP and nginx with underscores_in_headers read X_Zego.Verified as
// X-Zego-Verified, so a client must be able to send neither.
func stripPrefixed(b *headerBuilder, h http.Header) {
	for name := range h {
		// One letter of the prefix, compared without a call, rules out most names.
		if len(name) >= b.prefixLen && name[b.letterAt]|0x20 == b.letter && hasNormPrefix(name, b.normPrefix) {
			delete(h, name)
		}
	}
}

// stripWritten takes the headers the plain reading wrote for cb's fields out of the
// request, when it is not forwarded: each is a cached name's. It looks them up in the
// cache itself, not the plain reading's copy, which a name leaves when another comes to
// share its header while the request waits (the cache keeps every name, and each its
// header). A loop over the keys costs less under Yaegi than one over the headers.
func stripWritten(b *headerBuilder, cb *callback) {
	names, _ := b.names.Load().(map[string]*fieldName)
	for k := 0; k < cb.keys; k++ {
		if n := names[cb.pieces[cb.keyAt[k]]]; n != nil {
			delete(cb.header, n.header)
		}
	}
}

// hasNormPrefix reports whether name starts with norm, a normalised prefix, when read
// the same way.
func hasNormPrefix(name, norm string) bool {
	for i := 0; i < len(norm); i++ {
		c, p := name[i], norm[i]
		if p == '-' {
			if 'a' <= c|0x20 && c|0x20 <= 'z' || '0' <= c && c <= '9' {
				return false
			}
		} else if c != p && c|0x20 != p {
			return false
		}
	}
	return true
}

// annotate adds the callback's fields to h: each top-level scalar but the signature as
// one header, each array of scalars as one header line per element. Nested objects,
// nulls and values over maxValueBytes stay in the body only. A body with more fields
// than maxFields has only the first maxFields by name considered, so that one body
// always yields the same headers. Two fields that map to one header name (task_id and
// TaskId) leave it out: the backend could not tell which one it got. It runs for every
// field of every callback, so its loop does the usual case only (see ServeHTTP on why).
// The named fields' headers carry the texts the checks used (see newHeaderBuilder), and
// the event is also under the prefix's Event whatever its spelling.
func annotate(b *headerBuilder, h http.Header, cb *callback) {
	fields := cb.Fields
	if fields == nil || b.selected != nil || len(fields) > b.maxFields {
		fields = annotatedFields(b, cb)
	}
	names, _ := b.names.Load().(map[string]*fieldName)
	before := len(h)
	// written counts the fields that claim a header, placeholders those whose value adds
	// none (null, an object, too long): each claims its name all the same, with a nil
	// value, so that h grows by exactly written unless two fields share a name.
	written, placeholders := 0, 0
	var texts []string
	// A two-valued lookup of a pointer allocates nothing (DESIGN.md); the value of a miss
	// is not read (a Yaegi trap).
	for field, raw := range fields {
		name, known := names[field]
		if !known {
			name = learnHeaderName(b, field)
		}
		if name.header == "" {
			continue
		}
		written++
		if raw[0] == '"' && cb.plain && len(raw)-2 <= b.maxValueBytes {
			// A plain string, as most of ZEGO's fields are: its text lies between its
			// quotes, and has no space at either end.
			h[name.header] = []string{string(raw[1 : len(raw)-1])}
		} else if texts = nil; raw[0] == '[' && cb.plain && len(raw) <= b.maxValueBytes && !bytes.Contains(raw, jsonNull) &&
			json.Unmarshal(raw, &texts) == nil && len(texts) > 0 && bytes.Count(raw, comma) == len(texts)-1 {
			// An array of plain strings, as ZEGO's URL lists are, decodes in one call.
			h[name.header] = texts
		} else if !addOtherValue(h, name.header, raw, b.maxValueBytes, cb.plain) {
			placeholders++
		}
	}
	if len(h)-before != written || placeholders != 0 || len(cb.spelling[fieldEvent]) > len("event") || len(cb.spelling[fieldNonce]) > len("nonce") {
		annotateEnd(b, h, cb, fields, len(h)-before != written)
	}
}

// annotatedFields is the fields annotate looks at when they are not the body's top level
// as it is: a form's values as JSON strings, or the fields consideredFields selects.
func annotatedFields(b *headerBuilder, cb *callback) map[string]json.RawMessage {
	if cb.Fields == nil {
		cb.Fields = formFields(cb.form)
	}
	if b.selected != nil || len(cb.Fields) > b.maxFields {
		return consideredFields(b, cb.Fields)
	}
	return cb.Fields
}

// annotateEnd finishes annotate when its loop could not do all: two fields wrote one
// header (collided), fields whose values add nothing left placeholders, or the event's
// spelling (EventType, event_type) also gives the prefix's Event, SignatureNonce its Nonce.
func annotateEnd(b *headerBuilder, h http.Header, cb *callback, fields map[string]json.RawMessage, collided bool) {
	if collided {
		// The names learned in this call are in the cache now.
		names, _ := b.names.Load().(map[string]*fieldName)
		annotateCollided(b, h, fields, names, cb.plain)
	} else {
		dropPlaceholders(h)
	}
	writeAliases(b, h, cb)
}

// writeAliases writes the prefix's Event for a body whose event is EventType or
// event_type, and its Nonce for one whose nonce is SignatureNonce (mini-game's), from the
// header the loop over the fields wrote under that spelling's name.
func writeAliases(b *headerBuilder, h http.Header, cb *callback) {
	if len(cb.spelling[fieldEvent]) > len("event") {
		if event, ok := h[b.eventType]; ok {
			h[b.event] = event
		}
	}
	if len(cb.spelling[fieldNonce]) > len("nonce") {
		if nonce, ok := h[b.signatureNonce]; ok {
			h[b.nonce] = nonce
		}
	}
}

// annotateCollided is annotate for a body in which two fields map to one header name
// (task_id and TaskId): it takes every field's header out again and writes the others,
// leaving out each name that two fields claim, whatever their values.
func annotateCollided(b *headerBuilder, h http.Header, fields map[string]json.RawMessage, names map[string]*fieldName, plain bool) {
	// A name the cache could not take (it is full) is derived again.
	headerOf := func(field string) string {
		if name, known := names[field]; known {
			return name.header
		}
		return headerName(b, field)
	}
	claims := make(map[string]int, len(fields))
	for field := range fields {
		if header := headerOf(field); header != "" {
			delete(h, header)
			claims[header]++
		}
	}
	for field, raw := range fields {
		header := headerOf(field)
		if header == "" || claims[header] > 1 {
			continue
		}
		if raw[0] == '"' && plain && len(raw)-2 <= b.maxValueBytes {
			h[header] = []string{string(raw[1 : len(raw)-1])}
		} else {
			addValue(h, header, raw, b.maxValueBytes, plain)
		}
	}
}

// dropPlaceholders takes out the names that fields whose values add nothing claimed.
func dropPlaceholders(h http.Header) {
	for name, values := range h {
		if values == nil {
			delete(h, name)
		}
	}
}

// jsonNull is looked for in an array before it is decoded as strings, which would turn a
// null into "".
var jsonNull = []byte("null")

// addOtherValue is annotate for the other values: numbers, booleans, strings with
// escapes or a space at an end, arrays. It reports whether it added a header: objects,
// null, empty arrays and values over the bound add none, and leave a placeholder (a nil
// value) in its place.
func addOtherValue(h http.Header, header string, raw json.RawMessage, max int, plain bool) bool {
	if addValue(h, header, raw, max, plain) {
		return true
	}
	h[header] = nil
	return false
}

// addValue is addOtherValue without the placeholder.
func addValue(h http.Header, header string, raw json.RawMessage, max int, plain bool) bool {
	var texts []string
	if raw[0] == '[' && plain && len(raw) <= max && !bytes.Contains(raw, jsonNull) &&
		json.Unmarshal(raw, &texts) == nil && len(texts) > 0 && bytes.Count(raw, comma) == len(texts)-1 {
		// An array of plain strings, as ZEGO's URL lists are, decodes in one call.
		h[header] = texts
		return true
	}
	if c := raw[0]; c == '{' || c == 'n' {
		return false
	} else if c != '"' && c != '[' {
		// A number, true or false: its text as it is.
		if len(raw) > max {
			return false
		}
		h[header] = []string{string(raw)}
		return true
	}
	values := fieldValues(raw, max)
	if values == nil {
		return false
	}
	h[header] = values
	return true
}

// consideredFields returns the fields annotate looks at: the named ones the fields option
// selects (all, without it), then the others of the fields option, or the first
// maxFields by name.
func consideredFields(b *headerBuilder, fields map[string]json.RawMessage) map[string]json.RawMessage {
	if b.selectedNames != nil {
		// A lookup per name the fields option gives, not a pass over the body's fields.
		out := make(map[string]json.RawMessage, len(b.selectedNames))
		for _, field := range b.selectedNames {
			if raw, found := fields[field]; found {
				out[field] = raw
			}
		}
		return out
	}
	names := make([]string, 0, len(fields))
	out := make(map[string]json.RawMessage, len(fields))
	for field, raw := range fields {
		named, isNamed := spellingField[field]
		if !isNamed {
			if b.selected == nil || b.selected[field] {
				names = append(names, field)
			}
			continue
		}
		// The named fields are always considered, and do not count against maxFields.
		if named == fieldTimestamp && b.withTimestamp || named == fieldNonce && b.withNonce ||
			named == fieldEvent && b.withEvent || named == fieldAppID && b.withAppID {
			out[field] = raw
		}
	}
	if len(names) > b.maxFields {
		sort.Strings(names)
		names = names[:b.maxFields]
	}
	for _, field := range names {
		out[field] = fields[field]
	}
	return out
}

// fieldValues returns the header values of a string that needs decoding or of an array
// of scalars (one per element, nulls skipped), or nil when the value is too long or
// holds an object or an array.
func fieldValues(raw json.RawMessage, max int) []string {
	if raw[0] == '"' {
		// A string's text is at least a sixth of its JSON (\u00e9 is six bytes for two),
		// so a longer one is not decoded at all.
		if len(raw) > 6*max+2 {
			return nil
		}
		text, _ := scalarText(raw)
		if len(text) > max {
			return nil
		}
		return []string{headerValue(text)}
	}
	if len(raw) > max {
		return nil
	}
	var texts []string
	if bytes.Contains(raw, jsonNull) || json.Unmarshal(raw, &texts) != nil {
		// Not all strings (numbers, booleans, nulls, something nested), or perhaps a null
		// that decoding as strings would turn into "".
		var elems []json.RawMessage
		if json.Unmarshal(raw, &elems) != nil {
			return nil
		}
		texts = make([]string, 0, len(elems))
		for _, e := range elems {
			text, kind := scalarText(e)
			if kind == kindArray || kind == kindObject {
				return nil
			}
			if kind != kindNull {
				texts = append(texts, text)
			}
		}
	}
	if len(texts) == 0 {
		return nil
	}
	for i, t := range texts {
		if strings.IndexByte(t, ',') >= 0 {
			return nil // see comma
		}
		texts[i] = headerValue(t)
	}
	return texts
}

// headerValue writes bytes below 0x20 and 0x7F as %XX, so that no value can add, split
// or end a header, and a space at either end as %20, since HTTP drops white space there:
// the backend gets "PC%20" for "PC ", not "PC".
func headerValue(s string) string {
	if !strings.ContainsAny(s, controlBytes) && (s == "" || s[0] != ' ' && s[len(s)-1] != ' ') {
		return s
	}
	const hexDigits = "0123456789ABCDEF"
	var sb strings.Builder
	sb.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || c == ' ' && (i == 0 || i == len(s)-1) {
			sb.WriteByte('%')
			sb.WriteByte(hexDigits[c>>4])
			sb.WriteByte(hexDigits[c&0xf])
			continue
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

// fieldName is what a field name becomes, as the cache holds it (a pointer: see
// DESIGN.md): its header ("" when it is not copied), a number of its own, from 0 to
// maxCachedNames, by which a request tells it apart (see annotatePlain), the named field
// it is (-1 for none), and whether the fields option has it considered.
type fieldName struct {
	header     string
	id         int
	named      int
	considered bool
	alias      bool // EventType or event_type, which also writes the prefix's Event; SignatureNonce its Nonce
	// shared says another name in the cache writes the same header (task_id and TaskId):
	// the plain reading leaves a body holding it to plainKeys, which tells whether the
	// body holds both.
	shared bool
}

// storeNames makes names the cache, and the plain reading's copy of it, which leaves a
// key it does not find to plainKeys. The copy leaves out the names marked shared, those
// without a number (a fields option longer than the cache), and any but a named field's
// spellings that encoding/json reads as one (EVENT, eventType: see foldsApart). It is
// called with b.namesMu held, or before b is shared.
func storeNames(b *headerBuilder, names map[string]*fieldName) {
	plain := make(map[string]*fieldName, len(names))
	for field, n := range names {
		if !n.shared && n.id >= 0 && (n.named >= 0 || !foldedNamed[strings.ToUpper(field)]) {
			plain[field] = n
		}
	}
	b.plainNames.Store(plain)
	b.names.Store(names)
}

// cacheName adds n, what field becomes, to names, the cache's copy being written. Of two
// names other than the named fields' that write one header, both are marked shared, the
// one cached before as a copy (the cache's entries are read without a lock).
func cacheName(names map[string]*fieldName, field string, n *fieldName) {
	if n.header != "" && n.named < 0 {
		for other, o := range names {
			if o.header == n.header {
				n.shared = true
				marked := *o
				marked.shared = true
				names[other] = &marked
			}
		}
	}
	names[field] = n
}

// considered reports whether the fields option has the field called field, which the
// cache holds as n, considered and copied: a named field when it selects any spelling of
// it, another when it selects it or selects none.
func considered(b *headerBuilder, field string, n *fieldName) bool {
	switch {
	case n.header == "":
		return false
	case n.named == -1:
		return b.selected == nil || b.selected[field]
	case n.named == fieldTimestamp:
		return b.withTimestamp
	case n.named == fieldNonce:
		return b.withNonce
	case n.named == fieldEvent:
		return b.withEvent
	case n.named == fieldAppID:
		return b.withAppID
	}
	return false
}

// learnHeaderName derives a field's header name and caches it, up to maxCachedNames; it
// returns it as the cache holds it. The cache is copied on write, so that reads on the
// request path take no lock. A name the cache could not take has the id -1.
func learnHeaderName(b *headerBuilder, field string) *fieldName {
	b.namesMu.Lock()
	old, _ := b.names.Load().(map[string]*fieldName)
	if n := old[field]; n != nil {
		b.namesMu.Unlock()
		return n
	}
	n := &fieldName{header: headerName(b, field), id: -1, named: -1}
	n.considered = considered(b, field, n)
	if len(old) < maxCachedNames {
		n.id = len(old)
		names := make(map[string]*fieldName, len(old)+1)
		for k, v := range old {
			names[k] = v
		}
		cacheName(names, field, n)
		storeNames(b, names)
	}
	b.namesMu.Unlock()
	return n
}

// headerName returns the header a field other than a named one becomes (see
// fieldHeaderName), or "" for one that is not copied: the signature, a name that is empty,
// too long or holds a character not allowed in a header name, and one whose header only
// the named fields or the middleware write.
func headerName(b *headerBuilder, field string) string {
	if _, isNamed := spellingOf[field]; isNamed {
		return ""
	}
	header := fieldHeaderName(b, field)
	if b.reserved[header] {
		return ""
	}
	return header
}

// fieldHeaderName returns the prefix, then the field name in Header-Case, words split at
// every character other than a letter or digit, written '-', and where a lower-case
// letter meets a capital: task_id -> Task-Id, AppId -> App-Id, RoomID -> Room-Id,
// task.id -> Task-Id. It returns "" for a name that is empty, too long or holds a
// character not allowed in a header name.
func fieldHeaderName(b *headerBuilder, field string) string {
	if field == "" || len(field) > maxFieldNameBytes {
		return ""
	}
	name := make([]byte, 0, len(b.prefix)+len(field)+4)
	name = append(name, b.prefix...)
	lowerBefore := false
	for i := 0; i < len(field); i++ {
		c := field[i]
		switch {
		case 'A' <= c && c <= 'Z':
			if lowerBefore {
				name = append(name, '-')
			}
			lowerBefore = false
		case 'a' <= c && c <= 'z':
			lowerBefore = true
		case '0' <= c && c <= '9':
			lowerBefore = false
		case c == '_' || strings.IndexByte("!#$%&'*+-.^`|~", c) >= 0:
			c = '-'
			lowerBefore = false
		default:
			return ""
		}
		name = append(name, c)
	}
	return http.CanonicalHeaderKey(string(name))
}
