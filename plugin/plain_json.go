package zegocallback

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The plain reading of a JSON body: the one ZEGO sends, a JSON object without an escape,
// read at the cost its shape allows under Yaegi (see DESIGN.md). The body, valid UTF-8
// and valid JSON, is split at its quotes: with no escape, every odd piece is a string's
// text and every even one what lies between two strings, so one walk over the pieces
// finds the top-level keys, the named fields' texts and each value, and a header's value
// is a piece, written without a copy. Whatever this reading does not take (an escape, a
// form, an unusual value) the general reading (callback.go) reads; the two are held equal
// by TestPlainReadsAsTheGeneral, on generated requests, and by FuzzPlainReading.

// plainUnfit finds what makes a body one the plain reading does not take: an escape
// ('\\'), which would hide a quote; DEL, which a header value writes as %7F; '%' or '+',
// after which the body must read the same URL-decoded (checkURLDecoded); a quote next to
// a space (a string that starts or may end with a space, which a header would drop, or a
// space before a colon). One compiled pass, whatever the body.
var plainUnfit = regexp.MustCompile(`[\\\x7f%+]|" | (?:"[\s,:\]}]|:)`)

// maxPlainQuotes bounds the quotes of a body the plain reading takes, and so its walk,
// interpreted: ZEGO's callbacks have under 200; a larger body is read by the general
// reading, whose checks before the signature are compiled passes.
const maxPlainQuotes = 512

// maxPlainKeys is the most top-level keys the plain reading keeps the places of.
const maxPlainKeys = 96

var quote = []byte(`"`)

// readPlain reads a JSON object that starts the body into cb, as far as checking its
// signature needs: the top-level keys' places and the named fields' texts and spellings,
// checked as readNamedTexts checks them. It reports false, leaving cb to the general
// reading, for a body it does not take (plainUnfit), and for one whose named fields the
// general reading would refuse or read otherwise (a named field twice, a value neither a
// plain string nor plain digits, a text it refuses), so that every verdict on a body
// comes from one place.
func readPlain(cb *callback, b *headerBuilder, body []byte) bool {
	if plainUnfit.Match(body) || bytes.Count(body, quote) > maxPlainQuotes || !utf8.Valid(body) || !json.Valid(body) {
		return false
	}
	p := strings.Split(string(body), `"`)
	names, _ := b.names.Load().(map[string]*fieldName)
	var n *fieldName
	sep := p[0]
	depth, j := 0, 0
	// A loop's variables are declared before it (DESIGN.md); the depth of each string is
	// that after the piece before it, and a string followed by a colon is a key.
	for i := 1; i < len(p); i += 2 {
		if sep != ": " && sep != "," && sep != ":" { // the usual pieces change no depth
			for j = 0; j < len(sep); j++ {
				if sep[j] == '{' || sep[j] == '[' {
					depth++
				} else if sep[j] == '}' || sep[j] == ']' {
					depth--
				}
			}
		}
		sep = p[i+1]
		if depth != 1 || sep[0] != ':' {
			continue // a string value, or a key of a nested object
		}
		if cb.keys == maxPlainKeys {
			return unreadPlain(cb)
		}
		cb.keyAt[cb.keys] = i
		cb.keys++
		// Each key's number in the cache marks it seen: a key the cache does not hold
		// yet, or one seen twice, is for plainKeys once the signature holds, but a named
		// field twice, or under two spellings, for the general reading, which reads the
		// last and then refuses the body.
		if n = names[p[i]]; n == nil {
			cb.recheck = true
			continue
		}
		if j = n.named; cb.seen[n.id] && j < 0 {
			cb.recheck = true
			continue
		}
		cb.seen[n.id] = true
		if j < 0 {
			continue
		}
		if cb.spelling[j] != "" {
			return unreadPlain(cb)
		}
		cb.spelling[j] = p[i]
		if sep == ": " || sep == ":" {
			cb.texts[j] = p[i+2]
		} else if !plainNamedNumber(cb, sep, j) {
			return unreadPlain(cb)
		}
	}
	// The named texts, as readNamedTexts checks them: a plain body's hold no control byte,
	// no DEL and no space at either end; the signed ones must be there, the timestamp
	// whole, and every one ASCII, which only a body that is not (fewer runes than bytes)
	// makes readNamedTexts look at.
	ts, err := strconv.ParseUint(cb.texts[fieldTimestamp], 10, 64)
	if err != nil || cb.texts[fieldSignature] == "" || cb.texts[fieldNonce] == "" || utf8.RuneCount(body) != len(body) && readNamedTexts(cb) != nil {
		return unreadPlain(cb)
	}
	cb.timestamp = ts
	cb.eventName = cb.spelling[fieldEvent]
	cb.appIDName = cb.spelling[fieldAppID]
	cb.eventAlias = len(cb.eventName) > len("event")
	cb.recheck = cb.recheck || cb.keys > b.maxFields
	cb.pieces = p
	return true
}

// unreadPlain undoes what readPlain wrote into cb, for the general reading, and reports
// false.
func unreadPlain(cb *callback) bool {
	cb.texts = [namedCount]string{}
	cb.spelling = [namedCount]string{}
	cb.seen = [maxCachedNames]bool{}
	cb.keys = 0
	cb.recheck = false
	return false
}

// plainNamedNumber keeps the text of named field i written as a number in the piece
// sep, after its key: plain digits (an event's or app id's at most 15), as namedJSONText
// keeps them; it reports false for any other value, which the general reading refuses.
func plainNamedNumber(cb *callback, sep string, i int) bool {
	text := plainScalar(sep)
	if text == "" || strings.Trim(text, "0123456789") != "" || i >= fieldEvent && len(text) > 15 {
		return false
	}
	cb.texts[i] = text
	return true
}

// plainScalar returns the literal a piece between two strings holds after a key's
// colon (a number, true, false or null), or "" when it holds none (an array or an object
// follows).
func plainScalar(sep string) string {
	i := strings.IndexByte(sep, ':')
	rest := strings.TrimLeft(sep[i+1:], " \t\r\n")
	end := strings.IndexAny(rest, ",}] \t\r\n")
	if end <= 0 {
		return ""
	}
	return rest[:end]
}

// readNamedTexts checks the named fields' texts readNamed and readPlain keep, as the
// general reading does: the signed ones present, each printable ASCII without a space at
// either end, the timestamp a whole number.
func readNamedTexts(cb *callback) error {
	if !namedTexts.MatchString(strings.Join(cb.texts[:], "\x01")) {
		return namedTextError(cb.texts[:])
	}
	cb.timestamp, _ = strconv.ParseUint(cb.texts[fieldTimestamp], 10, 64)
	cb.eventName = cb.spelling[fieldEvent]
	cb.appIDName = cb.spelling[fieldAppID]
	cb.eventAlias = len(cb.eventName) > len("event")
	return nil
}

// plainKeys finishes, once the signature holds, the check readPlain began that no
// top-level key appears twice, which checkReading makes of the general reading: when a key
// was seen twice, or the cache of names did not hold one (which it learns now), the keys
// are counted again, each by its number in the cache. A body with more top-level keys
// than maxFields (whose headers are the first maxFields by name), or with a key the full
// cache cannot take, goes to the general reading.
func plainKeys(b *headerBuilder, cb *callback) error {
	cb.seen = [maxCachedNames]bool{}
	var n *fieldName
	for k := 0; k < cb.keys; k++ {
		if n = learnHeaderName(b, cb.pieces[cb.keyAt[k]]); n.id < 0 {
			return plainToGeneral(cb)
		}
		if cb.seen[n.id] {
			return errKeyTwice
		}
		cb.seen[n.id] = true
	}
	if cb.keys > b.maxFields {
		return plainToGeneral(cb)
	}
	return nil
}

// plainToGeneral hands a verified body the plain reading took to the general reading:
// decoded whole, its keys checked by checkReading, annotated by annotate.
func plainToGeneral(cb *callback) error {
	cb.pieces = nil
	if err := decodeJSON(cb, cb.body); err != nil {
		return err
	}
	return checkReading(cb, cb.body)
}

// annotatePlain writes the fields of a verified body the plain reading took as headers,
// as annotate does for the general reading: a plain string, or an array of plain strings
// written without white space, as pieces; any other value by addOtherValue
// (plainOtherValue). Two fields that would write one header send the body to annotate,
// which leaves both out.
func annotatePlain(b *headerBuilder, h http.Header, cb *callback) {
	names, _ := b.names.Load().(map[string]*fieldName)
	p := cb.pieces
	max := b.maxValueBytes
	before, written := len(h), 0
	var n *fieldName
	var values []string
	i, j, size, sep := 0, 0, 0, ""
	for k := 0; k < cb.keys; k++ {
		i = cb.keyAt[k]
		if n = names[p[i]]; !n.considered {
			continue // plainKeys cached every key
		}
		written++
		sep = p[i+1]
		i += 2
		if (sep == ": " || sep == ":") && len(p[i]) <= max {
			h[n.header] = p[i : i+1 : i+1]
			continue
		}
		if sep == ": [" || sep == ":[" {
			// An array of strings, one after each "," and the last before ']': its JSON
			// text is 2 bytes, and each string quoted, with a comma between.
			size = 1
			for j = i; p[j+1] == ","; j += 2 {
				size += len(p[j]) + 3
			}
			if size += len(p[j]) + 3; size <= max && p[j+1][0] == ']' {
				values = make([]string, (j-i)/2+1)
				for j = 0; j < len(values); j++ {
					values[j] = p[i+j+j]
				}
				h[n.header] = values
				continue
			}
		}
		if !plainOtherValue(b, h, cb, k, n) {
			cb.placeholders++
		}
	}
	if len(h)-before != written || cb.placeholders != 0 || cb.eventAlias {
		annotatePlainEnd(b, h, cb, len(h)-before != written)
	}
}

// annotatePlainEnd finishes annotatePlain when its loop could not do all, as annotateEnd
// does annotate's: two fields wrote one header (the general reading writes the headers
// again, and leaves that one out), fields whose values add nothing left placeholders,
// or the event's spelling (EventType, event_type) also gives the prefix's Event.
func annotatePlainEnd(b *headerBuilder, h http.Header, cb *callback, collided bool) {
	if collided {
		names, _ := b.names.Load().(map[string]*fieldName)
		for k := 0; k < cb.keys; k++ {
			delete(h, names[cb.pieces[cb.keyAt[k]]].header)
		}
		cb.pieces = nil
		if decodeJSON(cb, cb.body) == nil {
			annotate(b, h, cb)
		}
		return
	}
	if cb.placeholders != 0 {
		dropPlaceholders(h)
	}
	if cb.eventAlias {
		if event, ok := h[b.eventType]; ok {
			h[b.event] = event
		}
	}
}

// plainOtherValue writes the value of the k-th top-level key as annotate writes a value
// that is not a plain string (addOtherValue): its raw JSON text lies between the colon
// after the key and the next top-level key (or the object's end). It reports whether it
// added a header, as addOtherValue does.
func plainOtherValue(b *headerBuilder, h http.Header, cb *callback, k int, n *fieldName) bool {
	p := cb.pieces
	start := pieceOffset(p, cb.keyAt[k]+1)
	start += strings.IndexByte(p[cb.keyAt[k]+1], ':') + 1
	end := bytes.LastIndexByte(cb.body, '}') // the object's end
	if k+1 < cb.keys {
		end = pieceOffset(p, cb.keyAt[k+1]) - 1 // the next key's opening quote
	}
	raw := bytes.TrimSpace(cb.body[start:end])
	if k+1 < cb.keys {
		raw = bytes.TrimSpace(bytes.TrimSuffix(raw, comma))
	}
	return addOtherValue(h, n.header, json.RawMessage(raw), b.maxValueBytes, false)
}

var comma = []byte(",")

// pieceOffset is where piece i starts in the body the pieces were split from.
func pieceOffset(p []string, i int) int {
	offset := 0
	for j := 0; j < i; j++ {
		offset += len(p[j]) + 1
	}
	return offset
}
