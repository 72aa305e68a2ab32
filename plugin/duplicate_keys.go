package zegocallback

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
)

// Duplicate keys, and how many keys a JSON body holds. A JSON body is decoded by one
// compiled call, json.Unmarshal into raw values (decodeJSON). Two things it does not
// tell, and that must cost in proportion to the body's bytes whatever its shape, since
// they are checked before the signature: how many keys the body holds, and whether a
// top-level key appears twice (encoding/json keeps the last of two, PHP and JavaScript
// too, but a backend's parser may keep the first).

// maxKeys bounds the keys of a JSON body, at any depth: ZEGO's callbacks have a few
// dozen, and what a repeated key costs to find grows with them.
const maxKeys = 10000

var errTooManyKeys = fmt.Errorf("%w: more than %d keys", errMalformedBody, maxKeys)

// maxWalkedKeys bounds the top-level keys walked one by one (keysUniqueSlow): only a
// body with a key written with an escape needs the walk, which no encoder writes for
// ZEGO's field names, and each key walked is an interpreted step.
const maxWalkedKeys = 1000

var errKeysUnchecked = fmt.Errorf("%w: more than %d top-level keys, one written with an escape", errMalformedBody, maxWalkedKeys)

var (
	colon = []byte(":")
	// keyEnd ends every key of a JSON text that has no white space before its colons.
	keyEnd = []byte(`":`)
	// escapedKeyEnd is the only way keyEnd appears inside a string of compact JSON.
	escapedKeyEnd = []byte(`\":`)
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
