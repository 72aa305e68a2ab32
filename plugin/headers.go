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
// near it, and it keeps an attacker's name from costing more than a few microseconds.
const maxFieldNameBytes = 128

// maxCachedNames bounds the cache of header names derived from field names.
const maxCachedNames = 512

// controlBytes are the bytes written as %XX in header values.
const controlBytes = "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f" +
	"\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f"

// headerBuilder turns a verified callback's top-level fields into request headers. Its
// functions are plain functions, not methods: under Yaegi a method call costs about four
// times a function call, and they run for every field of every callback.
type headerBuilder struct {
	prefix        string // as configured
	canonPrefix   string // as incoming header names start, canonicalised by net/http
	letterAt      int    // the place of the prefix's last letter, -1 if it has none
	letter        byte   // that letter in lower case
	verified      string // canonical names of the middleware's own headers
	duplicate     string
	rejection     string
	maxFields     int
	maxValueBytes int
	selected      map[string]bool // the fields option; nil means every field
	names         atomic.Value    // map[string]string: field name -> header name ("" = not copied)
	namesMu       sync.Mutex
}

func newHeaderBuilder(prefix string, fields []string, maxFields, maxValueBytes int) *headerBuilder {
	b := &headerBuilder{
		prefix:        prefix,
		canonPrefix:   http.CanonicalHeaderKey(prefix),
		verified:      http.CanonicalHeaderKey(prefix + headerVerified),
		duplicate:     http.CanonicalHeaderKey(prefix + headerDuplicate),
		rejection:     http.CanonicalHeaderKey(prefix + headerRejection),
		maxFields:     maxFields,
		maxValueBytes: maxValueBytes,
	}
	b.letterAt = -1
	for i := 0; i < len(prefix); i++ {
		if c := prefix[i] | 0x20; 'a' <= c && c <= 'z' {
			b.letterAt, b.letter = i, c
		}
	}
	names := make(map[string]string)
	if len(fields) > 0 {
		b.selected = make(map[string]bool, len(fields))
		for _, f := range fields {
			b.selected[f] = true
			names[f] = headerName(b, f)
		}
	}
	b.names.Store(names)
	return b
}

// stripPrefixed removes every header whose name starts with the prefix, ignoring case
// and reading '_' as '-': some servers (CGI, PHP, nginx with underscores_in_headers)
// treat X_Zego_Verified as X-Zego-Verified, so a client must not be able to send either.
func stripPrefixed(b *headerBuilder, h http.Header) {
	n := len(b.prefix)
	for name := range h {
		// One letter of the prefix, compared without a call, rules out most names.
		if len(name) < n || b.letterAt >= 0 && name[b.letterAt]|0x20 != b.letter {
			continue
		}
		start := name[:n]
		// net/http canonicalises the names it reads, so this is the usual match.
		if start == b.canonPrefix {
			delete(h, name)
			continue
		}
		if strings.EqualFold(start, b.prefix) || strings.EqualFold(strings.ReplaceAll(start, "_", "-"), b.prefix) {
			delete(h, name)
		}
	}
}

// annotate adds the callback's fields to h: each top-level scalar but the signature as
// one header, each array of scalars as one header line per element. Nested objects,
// nulls and values over maxValueBytes stay in the body only. A body with more fields
// than maxFields has only the first maxFields by name considered, so that one body
// always yields the same headers. Two fields that map to one header name (task_id and
// TaskId) leave it out: the backend could not tell which one it got. It runs for every
// field of every callback, so its loop does the usual case only (see ServeHTTP on why).
func annotate(b *headerBuilder, h http.Header, cb *Callback) {
	fields := cb.Fields
	if b.selected != nil || len(fields) > b.maxFields {
		fields = consideredFields(b, fields)
	}
	names, _ := b.names.Load().(map[string]string)
	plain, max := cb.plain, b.maxValueBytes
	// dropped holds the names to take out at the end: those two fields claimed, and the
	// claims of fields that added nothing (null, an object, too long), kept until then so
	// that a second field for the same name is seen as a collision in any order.
	var dropped, texts []string
	// Keys only, and two-valued lookups: under Yaegi both allocate less than the
	// alternatives, for every field of every callback.
	for field := range fields {
		header, known := names[field]
		if !known {
			header = learnHeaderName(b, field)
		}
		raw, _ := fields[field]
		if _, taken := h[header]; taken {
			dropped = append(dropped, header)
		} else if header == "" {
		} else if raw[0] == '"' && plain && len(raw)-2 <= max {
			// A plain string, as most of ZEGO's fields are: its text lies between its quotes.
			h[header] = []string{string(raw[1 : len(raw)-1])}
		} else if texts = nil; raw[0] == '[' && plain && len(raw) <= max && !bytes.Contains(raw, jsonNull) &&
			json.Unmarshal(raw, &texts) == nil && len(texts) > 0 {
			// An array of plain strings, as ZEGO's URL lists are, decodes in one call.
			h[header] = texts
		} else if !addOtherValue(h, header, raw, max) {
			h[header] = nil
			dropped = append(dropped, header)
		}
	}
	for _, header := range dropped {
		delete(h, header)
	}
}

// jsonNull is looked for in an array before it is decoded as strings, which would turn a
// null into "".
var jsonNull = []byte("null")

// addOtherValue is annotate for the other values: numbers, booleans, strings with
// escapes, arrays that are not plain strings. It reports whether it added a header:
// objects, null, empty arrays and values over the bound add none.
func addOtherValue(h http.Header, header string, raw json.RawMessage, max int) bool {
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

// consideredFields returns the fields annotate looks at: those of the fields option, or
// the first maxFields by name, the signature (never a header) left out.
func consideredFields(b *headerBuilder, fields map[string]json.RawMessage) map[string]json.RawMessage {
	names := make([]string, 0, len(fields))
	for field := range fields {
		if (b.selected == nil || b.selected[field]) && field != "signature" && field != "Signature" {
			names = append(names, field)
		}
	}
	if len(names) > b.maxFields {
		sort.Strings(names)
		names = names[:b.maxFields]
	}
	out := make(map[string]json.RawMessage, len(names))
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
		texts[i] = headerValue(t)
	}
	return texts
}

// headerValue writes bytes below 0x20 and 0x7F as %XX, so that no value can add, split
// or end a header.
func headerValue(s string) string {
	if !strings.ContainsAny(s, controlBytes) {
		return s
	}
	const hexDigits = "0123456789ABCDEF"
	var sb strings.Builder
	sb.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			sb.WriteByte('%')
			sb.WriteByte(hexDigits[c>>4])
			sb.WriteByte(hexDigits[c&0xf])
			continue
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

// learnHeaderName derives a field's header name and caches it, up to maxCachedNames.
// The cache is copied on write, so that reads on the request path take no lock.
func learnHeaderName(b *headerBuilder, field string) string {
	header := headerName(b, field)
	b.namesMu.Lock()
	old, _ := b.names.Load().(map[string]string)
	if len(old) < maxCachedNames {
		names := make(map[string]string, len(old)+1)
		for k, v := range old {
			names[k] = v
		}
		names[field] = header
		b.names.Store(names)
	}
	b.namesMu.Unlock()
	return header
}

// headerName returns the header a field becomes: the prefix, then the field name in
// Header-Case, words split at '_' and where a lower-case letter meets a capital
// (task_id -> Task-Id, AppId -> App-Id, RoomID -> Room-Id). It returns "" for the
// signature, for a name that is empty, too long or not a valid header token, and for one
// that would be the middleware's own header.
func headerName(b *headerBuilder, field string) string {
	if field == "" || len(field) > maxFieldNameBytes || field == "signature" || field == "Signature" {
		return ""
	}
	name := make([]byte, 0, len(b.prefix)+len(field)+4)
	name = append(name, b.prefix...)
	lowerBefore := false
	for i := 0; i < len(field); i++ {
		c := field[i]
		switch {
		case c == '_':
			c = '-'
			lowerBefore = false
		case 'A' <= c && c <= 'Z':
			if lowerBefore {
				name = append(name, '-')
			}
			lowerBefore = false
		case 'a' <= c && c <= 'z':
			lowerBefore = true
		case '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^`|~", c) >= 0:
			lowerBefore = false
		default:
			return ""
		}
		name = append(name, c)
	}
	header := http.CanonicalHeaderKey(string(name))
	if header == b.verified || header == b.duplicate || header == b.rejection {
		return ""
	}
	return header
}
