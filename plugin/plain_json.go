package zegocallback

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The plain reading of a JSON body: the one ZEGO sends, a JSON object without an escape
// or a nested object, read at the cost its shape allows under Yaegi (see DESIGN.md). The
// body, valid UTF-8 and valid JSON, is split at its quotes: with no escape, every odd
// piece is a string's text and every even one what lies between two strings, so one walk
// over the pieces finds the keys, the named fields' texts and each value, and writes a header's
// value as a piece, without a copy. Whatever this reading does not take (an escape, a
// form, a named field it would read otherwise) the general reading (callback.go) reads;
// what the walk leaves (a key the cache of names does not hold yet, a key twice, a value
// other than a string or an array of strings) is finished once the signature holds
// (plainKeys). The two readings are held equal from outside (conformance.Differential):
// TestPlainReadsAsTheGeneral sends 100 000 generated requests through both, natively,
// the test module 10 000 through Yaegi, and FuzzPlainReading the bodies a fuzzer makes.

// unplainBytes are the bytes of a body the plain reading does not take, after its opening
// brace: an escape ('\\'), which would hide a quote; '%' or '+', after which the body must
// read the same URL-decoded (checkURLDecoded); DEL, which a header value writes as %7F; a
// tab or a line break, before which a key's colon could hide (a pretty-printed body); a
// second '{', since with no object but the body every key is a top-level one (the
// callbacks with a nested object, AI Agent's Data and the like, are the general
// reading's). Nor does it take
// a byte that is not ASCII (the general reading checks UTF-8 and the named texts'
// bytes), or a quote next to a space (quoteSpace and spaceEdge: a string that starts or
// may end with a space, which a header would drop, or a space before a colon). Each is a
// compiled pass with no backtracking, a few microseconds in all for a callback.
const unplainBytes = "\\%+\x7f\t\r\n{"

// maxPlainQuotes bounds the quotes of a body the plain reading walks, interpreted, and so
// what splitting a body costs before its signature is checked: at most 258 pieces (4 KiB),
// whatever the body (strings.SplitN stops there). The documented callbacks it takes have
// at most 78; a body with more is read by the general reading, whose checks before the
// signature are compiled passes.
const maxPlainQuotes = 256

// maxPlainKeys is the most top-level keys the plain reading keeps the places of; it takes
// no more than maxHeaderFields either (a body with more has the headers of the first
// maxHeaderFields by name: consideredFields).
const maxPlainKeys = 96

// readPlain reads a JSON object that starts the body into cb: the top-level keys' places,
// the named fields' texts and spellings (checked as readNamedTexts checks them), and the
// fields as headers where the walk can write them, and sets cb.parsed. It leaves cb and
// the request's headers to the general reading, for a body it does not take
// (plainUnfit), and for one whose named fields the general reading would refuse or read
// otherwise (a named field twice, a value neither a plain string nor plain digits, a
// text it refuses), so that every verdict on a body comes from one place. It sets
// cb.recheck for plainKeys.
//
// It is one function, and its expressions are few: each is a frame slot under Yaegi,
// allocated at every call whichever branches run. Its working variables are its
// results, which its caller does not take: a variable declared in a function's body is
// allocated twice at every call, its slot and its declaration, a result once (DESIGN.md).
// Yaegi does not zero a function's results at a second call from the same place: each is
// set before it is read.
func readPlain(cb *callback, b *headerBuilder, body []byte) (
	p []string, // the body split at its quotes
	names map[string]*fieldName, // the cache of names, but the shared ones
	n *fieldName, // the key at i
	values []string, // an array's strings
	sep string, // the piece after the string at i
	i, j, keys, size int,
	commas int, // 256 for each array written, and the commas between its strings (at most 127 in all)
	text bool, // the value after the key at i is a string
	err error, // the timestamp's
) {
	if bytes.ContainsAny(body[1:], unplainBytes) || !utf8.Valid(body) || utf8.RuneCount(body) != len(body) ||
		bytes.Contains(body, quoteSpace) || spaceEdge.Match(body) || !json.Valid(body) {
		return
	}
	if p = strings.SplitN(string(body), `"`, maxPlainQuotes+2); len(p) > maxPlainQuotes+1 {
		return // more quotes than the walk takes
	}
	names = b.plainNames.Load().(map[string]*fieldName)
	keys = 0
	commas = 0
	// With no object but the body, a string followed by a colon is a top-level key.
	for i = 1; i < len(p); i += 2 {
		if sep = p[i+1]; sep[0] != ':' {
			continue // a value
		}
		if keys == b.plainKeys {
			unreadPlain(cb, b) // more than maxHeaderFields: the general reading
			return
		}
		cb.keyAt[keys] = i
		keys++
		// A key the cache does not hold (yet), one whose header another name writes too
		// (storeNames), or one seen twice (marked by its number in the cache), is
		// plainKeys's; a named field twice, or under two spellings, the general reading's,
		// which reads the last and then refuses the body.
		if n = names[p[i]]; n == nil || cb.seen[n.id] {
			cb.recheck = true
			continue
		}
		text = sep == ": " || sep == ":"
		if j = n.named; j < 0 {
			cb.seen[n.id] = true
		} else {
			if cb.spelling[j] != "" {
				unreadPlain(cb, b)
				return
			}
			cb.spelling[j] = p[i]
			if n.alias {
				cb.recheck = true // EventType, event_type or SignatureNonce, which also write the prefix's Event or Nonce
			}
			if text {
				cb.texts[j] = p[i+2]
			} else if !plainNamedNumber(cb, sep, j) {
				unreadPlain(cb, b)
				return
			}
		}
		if !n.considered {
			continue
		}
		// The value: a string, or an array of strings, one after each "," and the last
		// before ']' (its JSON text 2 bytes, and each string quoted, with a comma
		// between), within maxHeaderValueBytes, as a piece, or pieces; any other is
		// plainKeys's.
		if text {
			if len(p[i+2]) <= b.maxValueBytes {
				cb.header[n.header] = p[i+2 : i+3 : i+3]
				continue
			}
		} else if sep == ": [" || sep == ":[" {
			values = nil
			size = 1
			for j = i + 2; ; j += 2 {
				values = append(values, p[j])
				if size += len(p[j]) + 3; p[j+1] != "," {
					break
				}
			}
			if size <= b.maxValueBytes && p[j+1][0] == ']' {
				cb.header[n.header] = values
				commas += 255 + len(values)
				continue
			}
		}
		cb.recheck = true
	}
	// With an array written, more commas than between the keys and the arrays' strings:
	// one in a string, which in an array's would not split back from its header's lines
	// (most backends join them with a comma: see comma). Step 10 writes them again.
	if commas != 0 && bytes.Count(body, comma) != keys-1+commas&255 {
		cb.recheck = true
	}
	// The named texts, as readNamedTexts checks them: a plain body's are ASCII without a
	// control byte, DEL or a space at either end; the timestamp must be whole, and the
	// nonce there (a missing signature is refused as readNamedTexts refuses it, by
	// signatureError).
	if cb.timestamp, err = strconv.ParseUint(cb.texts[fieldTimestamp], 10, 64); err != nil || cb.texts[fieldNonce] == "" {
		unreadPlain(cb, b)
		return
	}
	cb.keys = keys
	cb.pieces = p
	cb.parsed = true
	return
}

// unreadPlain undoes what readPlain wrote, into cb and the request's headers (which held
// none with the prefix before it: stripPrefixed), for the general reading.
func unreadPlain(cb *callback, b *headerBuilder) {
	stripPrefixed(b, cb.header)
	cb.texts = [namedCount]string{}
	cb.spelling = [namedCount]string{}
	cb.seen = [maxCachedNames]bool{}
	cb.recheck = false
	cb.keys = 0
	cb.timestamp = 0
}

// plainNamedNumber keeps the text of named field i written as a number in the piece
// sep, after its key: plain digits (an event's or app id's at most 15), as namedJSONText
// keeps them; it reports false for any other value, which the general reading refuses.
func plainNamedNumber(cb *callback, sep string, i int) bool {
	text := plainScalar(sep)
	if text == "" || strings.Trim(text, digits) != "" || i >= fieldEvent && len(text) > 15 {
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
	// Each pass runs compiled over the joined texts, whatever their length: the signed
	// texts present, printable ASCII, no space beside a separator or at either end, the
	// timestamp's digits.
	joined := strings.Join(cb.texts[:], namedTextsSeparator)
	stamp := cb.texts[fieldTimestamp]
	if cb.texts[fieldSignature] == "" || cb.texts[fieldNonce] == "" || stamp == "" ||
		strings.Trim(stamp, digits) != "" || strings.Trim(joined, namedTextBytes) != "" ||
		strings.Count(joined, namedTextsSeparator) != namedCount-1 ||
		joined[0] == ' ' || joined[len(joined)-1] == ' ' ||
		strings.Contains(joined, " "+namedTextsSeparator) || strings.Contains(joined, namedTextsSeparator+" ") {
		return namedTextError(cb.texts[:])
	}
	cb.timestamp, _ = strconv.ParseUint(cb.texts[fieldTimestamp], 10, 64)
	return nil
}

// plainKeys finishes at step 6, once the signature holds, what readPlain left
// (cb.recheck), as checkReading finishes the general reading: no key appears twice, and
// none that encoding/json reads as a named field's (foldsApart, which the copy of the
// cache the walk reads sends here). A key the cache of names holds is told by its number,
// another by its text. The cache learns
// names only at step 10 (annotatePlain), from callbacks forwarded, as annotate does: a
// captured triple, however old, cannot fill it.
func plainKeys(b *headerBuilder, cb *callback) error {
	names, _ := b.names.Load().(map[string]*fieldName)
	cb.seen = [maxCachedNames]bool{}
	var others map[string]bool
	var n *fieldName
	key := ""
	for k := 0; k < cb.keys; k++ {
		key = cb.pieces[cb.keyAt[k]]
		if n = names[key]; n != nil && n.id >= 0 {
			if cb.seen[n.id] {
				return errKeyTwice
			}
			cb.seen[n.id] = true
			continue
		}
		if others == nil {
			others = make(map[string]bool)
		}
		if others[key] {
			return errKeyTwice
		}
		others[key] = true
	}
	if foldAlias(cb.body) {
		return foldsApart(cb, cb.body)
	}
	return nil
}

// plainName is what the key field becomes, from names, the cache as loaded, or learned
// (or, the cache full, derived).
func plainName(b *headerBuilder, names map[string]*fieldName, field string) *fieldName {
	if n := names[field]; n != nil {
		return n
	}
	return learnHeaderName(b, field)
}

// unannotatePlain takes out the headers written for cb's fields.
func unannotatePlain(b *headerBuilder, cb *callback) {
	names, _ := b.names.Load().(map[string]*fieldName)
	for k := 0; k < cb.keys; k++ {
		if n := plainName(b, names, cb.pieces[cb.keyAt[k]]); n.header != "" {
			delete(cb.header, n.header)
		}
	}
}

// annotateVerified writes a forwarded callback's fields as headers when its reading has
// not (forwardUnsettled; ServeHTTP's step 10 does the same in place): annotate for the
// general reading, annotatePlain for a body the plain reading took but left to plainKeys.
func annotateVerified(b *headerBuilder, h http.Header, cb *callback) {
	if cb.pieces == nil {
		annotate(b, h, cb)
		return
	}
	annotatePlain(b, h, cb)
}

// annotatePlain writes the fields of a forwarded body the plain reading took as headers,
// again (the cache of names learning the new ones), as annotate does for the general
// reading: a plain string, or an array of plain
// strings written without white space, as pieces; any other value by addOtherValue
// (plainOtherValue). Two fields that would write one header send the body to annotate,
// which leaves both out.
func annotatePlain(b *headerBuilder, h http.Header, cb *callback) {
	unannotatePlain(b, cb)
	names, _ := b.names.Load().(map[string]*fieldName)
	p := cb.pieces
	max := b.maxValueBytes
	before, written, placeholders := len(h), 0, 0
	var n *fieldName
	var values []string
	i, j, size, sep := 0, 0, 0, ""
	for k := 0; k < cb.keys; k++ {
		i = cb.keyAt[k]
		if n = plainName(b, names, p[i]); !n.considered {
			continue
		}
		written++
		sep = p[i+1]
		i += 2
		if (sep == ": " || sep == ":") && len(p[i]) <= max {
			h[n.header] = p[i : i+1 : i+1]
			continue
		}
		if sep == ": [" || sep == ":[" {
			size = 1
			for j = i; p[j+1] == ","; j += 2 {
				size += len(p[j]) + 3
			}
			if size += len(p[j]) + 3; size <= b.maxValueBytes && p[j+1][0] == ']' {
				values = make([]string, (j-i)/2+1)
				for j = 0; j < len(values) && strings.IndexByte(p[i+j+j], ',') < 0; j++ {
					values[j] = p[i+j+j]
				}
				if j == len(values) { // else a string holds a comma: see comma
					cb.header[n.header] = values
					continue
				}
			}
		}
		if !plainOtherValue(b, h, cb, k, n) {
			placeholders++
		}
	}
	if len(h)-before != written {
		// Two fields wrote one header: annotate leaves both out (annotateCollided).
		unannotatePlain(b, cb)
		cb.pieces = nil
		if decodeJSON(cb, cb.body) == nil {
			annotate(b, h, cb)
		}
		return
	}
	if placeholders != 0 {
		dropPlaceholders(h)
	}
	// EventType or event_type: the event's header too; SignatureNonce: the nonce's.
	writeAliases(b, h, cb)
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

// comma: most backends' readings join a header's lines with a comma (WSGI and Werkzeug
// with ",", Django, Rack and Node with ", "), so an array one of whose strings holds one
// would not split back into its strings (["a, b","c"] reads as three): it gets no
// header, in any reading (fieldValues; annotate and addValue, for which an array's
// commas are its strings' separators exactly; readPlain, which counts the body's, and
// annotatePlain).
var comma = []byte(",")

// pieceOffset is where piece i starts in the body the pieces were split from.
func pieceOffset(p []string, i int) int {
	offset := 0
	for j := 0; j < i; j++ {
		offset += len(p[j]) + 1
	}
	return offset
}
