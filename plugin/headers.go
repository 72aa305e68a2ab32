package zegocallback

import (
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

// headerBuilder turns a verified callback's top-level fields into request headers.
type headerBuilder struct {
	prefix          string // as configured
	prefixDashed    string // the prefix with '_' read as '-', for stripping
	verified        string // canonical names of the middleware's own headers
	duplicate       string
	rejection       string
	maxFields       int
	maxValueBytes   int
	selected        []selectedField // the fields option, in order; nil means every field
	names           atomic.Value    // map[string]string: field name -> header name ("" = not copied)
	namesMu         sync.Mutex
	namesFromConfig bool
}

type selectedField struct {
	field  string
	header string
}

func newHeaderBuilder(prefix string, fields []string, maxFields, maxValueBytes int) *headerBuilder {
	b := &headerBuilder{
		prefix:        prefix,
		prefixDashed:  strings.ReplaceAll(prefix, "_", "-"),
		verified:      http.CanonicalHeaderKey(prefix + headerVerified),
		duplicate:     http.CanonicalHeaderKey(prefix + headerDuplicate),
		rejection:     http.CanonicalHeaderKey(prefix + headerRejection),
		maxFields:     maxFields,
		maxValueBytes: maxValueBytes,
	}
	names := make(map[string]string)
	for _, f := range fields {
		h := b.headerName(f)
		names[f] = h
		if h != "" {
			b.selected = append(b.selected, selectedField{field: f, header: h})
		}
	}
	b.namesFromConfig = len(fields) > 0
	b.names.Store(names)
	return b
}

// strip removes every header whose name starts with the prefix, ignoring case and
// reading '_' as '-': some servers (CGI, PHP, nginx with underscores_in_headers) treat
// X_Zego_Verified as X-Zego-Verified, so a client must not be able to send either.
func (b *headerBuilder) strip(h http.Header) {
	n := len(b.prefix)
	for name := range h {
		if len(name) < n {
			continue
		}
		start := name[:n]
		if strings.EqualFold(start, b.prefix) ||
			(strings.IndexByte(start, '_') >= 0 && strings.EqualFold(strings.ReplaceAll(start, "_", "-"), b.prefixDashed)) {
			delete(h, name)
		}
	}
}

// annotate adds the callback's fields to h: each top-level scalar but the signature as
// one header, each array of scalars as one header line per element. Nested objects,
// nulls, values over maxValueBytes and fields past maxFields stay in the body only. Two
// fields that map to one header name (task_id and TaskId) leave it out: the backend
// could not tell which one it got.
func (b *headerBuilder) annotate(h http.Header, fields map[string]json.RawMessage) {
	collided := false
	if b.namesFromConfig {
		added := 0
		for _, f := range b.selected {
			raw, ok := fields[f.field]
			if ok && added < b.maxFields {
				switch b.add(h, f.header, raw) {
				case headerAdded:
					added++
				case headerCollided:
					collided = true
				}
			}
		}
	} else if len(fields) <= b.maxFields {
		// Every field fits: the map's order does not matter.
		names, _ := b.names.Load().(map[string]string)
		for field, raw := range fields {
			header, known := names[field]
			if !known {
				header = b.learn(field)
			}
			if header != "" && b.add(h, header, raw) == headerCollided {
				collided = true
			}
		}
	} else {
		collided = b.annotateSorted(h, fields)
	}
	if collided {
		for k, v := range h {
			if v == nil {
				delete(h, k)
			}
		}
	}
}

// annotateSorted is annotate for a body with more fields than headers allowed: it takes
// them in name order, so that the same body always yields the same headers.
func (b *headerBuilder) annotateSorted(h http.Header, fields map[string]json.RawMessage) (collided bool) {
	names, _ := b.names.Load().(map[string]string)
	sorted := make([]string, 0, len(fields))
	for field := range fields {
		sorted = append(sorted, field)
	}
	sort.Strings(sorted)
	added := 0
	for _, field := range sorted {
		if added >= b.maxFields {
			break
		}
		header, known := names[field]
		if !known {
			header = b.learn(field)
		}
		if header == "" {
			continue
		}
		switch b.add(h, header, fields[field]) {
		case headerAdded:
			added++
		case headerCollided:
			collided = true
		}
	}
	return collided
}

// What add did with a field.
const (
	headerSkipped = iota
	headerAdded
	headerCollided
)

// add sets header from one field's raw value.
func (b *headerBuilder) add(h http.Header, header string, raw json.RawMessage) int {
	if _, taken := h[header]; taken {
		// A second field for this name, or a third after the first two collided: the
		// name is blanked now and deleted once every field has been seen.
		h[header] = nil
		return headerCollided
	}
	// A string's text is at least a sixth of its JSON (escapes such as \u00e9 shrink
	// six bytes to one or two), so a raw value past this cannot fit and is not decoded.
	if len(raw) == 0 || len(raw) > 6*b.maxValueBytes+2 {
		return headerSkipped
	}
	text, kind := scalarText(raw)
	switch kind {
	case kindString, kindNumber, kindBool:
		if len(text) > b.maxValueBytes {
			return headerSkipped
		}
		h[header] = []string{headerValue(text)}
		return headerAdded
	case kindArray:
		if len(raw) > b.maxValueBytes {
			return headerSkipped
		}
		values := arrayValues(raw)
		if values == nil {
			return headerSkipped
		}
		h[header] = values
		return headerAdded
	}
	return headerSkipped
}

// arrayValues returns the texts of an array of scalars (nulls skipped), or nil when it
// holds an object or an array, or nothing.
func arrayValues(raw json.RawMessage) []string {
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil
	}
	values := make([]string, 0, len(elems))
	for _, e := range elems {
		text, kind := scalarText(e)
		if kind == kindArray || kind == kindObject {
			return nil
		}
		if kind != kindNull {
			values = append(values, headerValue(text))
		}
	}
	if len(values) == 0 {
		return nil
	}
	return values
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

// learn derives a field's header name and caches it. The cache is copied on write: reads
// on the request path take no lock.
func (b *headerBuilder) learn(field string) string {
	header := b.headerName(field)
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
func (b *headerBuilder) headerName(field string) string {
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
