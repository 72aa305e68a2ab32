package zegocallback

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"unicode/utf8"
)

// A JSON body is decoded by one compiled call, json.Unmarshal into raw values. Two things
// it does not tell, and that must cost in proportion to the body's bytes whatever its
// shape, since they are checked before the signature: how many keys the body holds, and
// whether a top-level key appears twice (encoding/json keeps the last of two, PHP and
// JavaScript too, but a backend's parser may keep the first).

// maxKeys bounds the keys of a JSON body, at any depth: ZEGO's callbacks have a few
// dozen, and what a repeated key costs to find grows with them.
const maxKeys = 10000

var errTooManyKeys = fmt.Errorf("%w: more than %d keys", ErrMalformedBody, maxKeys)

// decodeJSON decodes a JSON object's top level into cb, with compiled passes only. It
// tells whether the body's strings are plain: without escapes or DEL, their texts lie
// between their quotes, and none starts or ends with a space. walkKeys says a repeated
// key is not ruled out yet, and keysUnique must look.
func decodeJSON(cb *Callback, body []byte) error {
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
	cb.plain = !bytes.Contains(body, quoteSpace) && !spaceEdge.Match(body)
	cb.walkKeys = !cb.plain || bytes.Count(body, keyEnd) != len(fields)
	cb.recheck = cb.walkKeys || cb.formTyped
	return nil
}

// decodedUnusual is decodeJSON's end for a body with an escape, DEL, a tab, a line
// break, '%' or '+': the same checks, each byte class apart.
func decodedUnusual(cb *Callback, body []byte) {
	cb.plain = !bytes.ContainsAny(body, "\\\x7f") && !bytes.Contains(body, quoteSpace) && !spaceQuoteEnd.Match(body)
	cb.walkKeys = !cb.plain || bytes.Count(body, keyEnd) != len(cb.Fields) || spaceBeforeColon(body)
	cb.recheck = true
}

// maxWalkedKeys bounds the top-level keys walked one by one (keysUniqueSlow): only a
// body with a key written with an escape needs the walk, which no encoder writes for
// ZEGO's field names, and each key walked costs a few microseconds under Yaegi.
const maxWalkedKeys = 1000

var errKeysUnchecked = fmt.Errorf("%w: more than %d top-level keys, one written with an escape", ErrMalformedBody, maxWalkedKeys)

var (
	colon = []byte(":")
	// keyEnd ends every key of a JSON text that has no white space before its colons.
	keyEnd = []byte(`":`)
	// escapedKeyEnd is the only way keyEnd appears inside a string of compact JSON.
	escapedKeyEnd = []byte(`\":`)
	// quoteSpace and spaceQuoteEnd find a string that may start or end with a space,
	// which a header value cannot carry as it is (a body with one is not plain). The
	// expression's literal prefix lets it skip from one ` "` to the next.
	quoteSpace    = []byte(`" `)
	spaceQuoteEnd = regexp.MustCompile(` "[\s,:\]}]`)
	spaceEdge     = regexp.MustCompile(` (?:"[\s,:\]}]|:)`)
	// jsonString matches a JSON string, escapes included.
	jsonString = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
)

// countKeys refuses a body of more than maxKeys keys, however it is spaced or escaped,
// for one whose colons outnumber maxKeys. Each step is a compiled pass over the body:
// compacted, its key ends bound the keys from above; less the ones that are escaped
// quotes, from below; only when those disagree about the limit are the strings taken
// out and the colons left counted, which is exact.
func countKeys(body []byte) error {
	var buf bytes.Buffer
	buf.Grow(len(body))
	if json.Compact(&buf, body) != nil {
		return errNotObject
	}
	compact := buf.Bytes()
	upper := bytes.Count(compact, keyEnd)
	if upper <= maxKeys {
		return nil
	}
	if upper-bytes.Count(compact, escapedKeyEnd) > maxKeys {
		return errTooManyKeys
	}
	if bytes.Count(jsonString.ReplaceAllLiteral(compact, nil), colon) > maxKeys {
		return errTooManyKeys
	}
	return nil
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

// keysUnique refuses a JSON object with a key twice (the exact check, for bodies the
// count in parseJSONObject cannot vouch for).
//
// encoding/json keeps the last of two equal keys, so the decoded map has fewer entries
// than the object. Measuring the map, encoded again, against the compact text tells:
// they are the same length exactly when nothing was dropped and every key is written
// as encoding/json writes it, with one compiled call whatever the number of keys. Only
// a key written with an escape (which no encoder writes for ZEGO's field names) makes
// them differ without a duplicate, and pays for a walk of the keys, at most
// maxWalkedKeys of them. encoding/json writes U+2028 and U+2029 escaped, longer than a
// body may: a body that holds either is walked too, so that their length cannot make
// up for a dropped key.
func keysUnique(body []byte, fields map[string]json.RawMessage) error {
	compact := body
	if bytes.ContainsAny(body, " \t\r\n") {
		var buf bytes.Buffer
		buf.Grow(len(body))
		if json.Compact(&buf, body) != nil {
			return errNotObject
		}
		compact = buf.Bytes()
	}
	if !bytes.Contains(body, lineSeparator) && !bytes.Contains(body, paragraphSeparator) {
		var again bytes.Buffer
		again.Grow(len(compact) + 1)
		enc := json.NewEncoder(&again)
		enc.SetEscapeHTML(false)
		// Encode ends with a newline.
		if enc.Encode(fields) == nil && again.Len() == len(compact)+1 {
			return nil
		}
	}
	return keysUniqueSlow(compact, len(fields))
}

var (
	lineSeparator      = []byte("\u2028")
	paragraphSeparator = []byte("\u2029")
)

// keysUniqueSlow walks the object's top-level keys, decoded, one by one, at most
// maxWalkedKeys of them.
func keysUniqueSlow(compact []byte, hint int) error {
	if hint > maxWalkedKeys {
		return errKeysUnchecked
	}
	dec := json.NewDecoder(bytes.NewReader(compact))
	if _, err := dec.Token(); err != nil {
		return errNotObject
	}
	seen := make(map[string]bool, hint)
	for n := 0; dec.More(); n++ {
		if n == maxWalkedKeys {
			return errKeysUnchecked
		}
		tok, err := dec.Token()
		if err != nil {
			return errNotObject
		}
		key, _ := tok.(string)
		if seen[key] {
			return errKeyTwice
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return errNotObject
		}
	}
	return nil
}
