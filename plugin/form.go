package zegocallback

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Forms, as ZEGO's form mode sends them and as backends read them. Backends read a
// form's names their own ways: PHP drops leading spaces, cuts a name at a NUL, reads '.'
// and ' ' as '_', takes "name[...]" as "name" and an unclosed "name[x" as "name_x";
// Express's extended parser (qs) takes "[name]" as "name"; letter case may be folded. A
// form whose names any of them would read as a named field under another spelling than
// the middleware read is refused, so that the backend reads the event and the signed
// fields the middleware checked. Every check here is a compiled pass over the body:
// they run before the signature is known.

// maxFormFields bounds a form's fields: PHP's max_input_vars and Node's querystring stop
// at 1 000, and a field past it would be seen here and missed by the backend.
const maxFormFields = 1000

var (
	errTooManyFields = fmt.Errorf("%w: more than %d form fields", errMalformedBody, maxFormFields)
	errFormAlias     = fmt.Errorf("%w: a form name that a backend reads as a named field", errMalformedBody)
	errFormInJSON    = fmt.Errorf("%w: a JSON body sent as a form holds a named field when read as one", errMalformedBody)
)

// parseForm decodes a form body: its values by name, checked as above.
func parseForm(body []byte) (url.Values, error) {
	if bytes.Count(body, ampersand) >= maxFormFields {
		return nil, errTooManyFields
	}
	values, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errNotForm
	}
	// ParseQuery took every escape: the body decodes whole in one compiled call.
	if decoded, err := url.QueryUnescape(string(body)); err != nil || !utf8.ValidString(decoded) {
		return nil, errNotUTF8
	}
	if formAlias(body, true) {
		return nil, errFormAlias
	}
	return values, nil
}

// formFields turns a form's values into the shape of a JSON body's fields: each value a
// JSON string, a repeated name an array of strings. It runs once the callback verified,
// or for reportOnly's annotation.
func formFields(values url.Values) map[string]json.RawMessage {
	fields := make(map[string]json.RawMessage, len(values))
	for k, vs := range values {
		var raw []byte
		if len(vs) == 1 {
			raw, _ = json.Marshal(vs[0])
		} else {
			raw, _ = json.Marshal(vs)
		}
		fields[k] = raw
	}
	return fields
}

var ampersand = []byte("&")

// spaceRuns are the runs of spaces formAlias makes one space, longest first.
var spaceRuns = [...]string{strings.Repeat(" ", 256), strings.Repeat(" ", 16), "  "}

// namedInForm finds, in a form's names decoded (see formAlias), a name that a backend
// reads as a named field: after '&' (or ';', where Rack's parse_query splits too) and
// leading spaces, one of the spellings in any letter case with any of ' ', '.', '_' or
// '[' where a word ends, followed by the end of the name ('=', '&', '[', a NUL, or the
// end of the body); or, as qs and Rack read it, one of them after brackets, and before a
// closing one and anything up to the name's end (qs's [event] and [event]x, Rack's
// ]event, [event]], [[appid and event]x). Group 1 is the leading spaces, 2 the name, 3 what ends it. Its
// literal '&' lets the matcher skip from one '&' to the next, so that a long value costs
// a byte search, not a step of the matcher per byte.
var namedInForm = regexp.MustCompile(`&( *)([\[\]]*(?i:signature(?:[ ._\[]?nonce)?|timestamp|nonce|event(?:[ ._\[]?type)?|app(?:[ ._\[]?id))(?:\][^=&]*)?)([=&\[\x00]|$)`)

// formAlias reports whether a form's names hold a named field that a backend reads under
// another name than the middleware: any name that reads as one, when exactAllowed is
// false (a JSON body sent as a form); one not written exactly as a spelling, else.
func formAlias(body []byte, exactAllowed bool) bool {
	// Decoded as backends decode names, %26 kept (a form splits at its raw '&' first):
	// one compiled call for a body whose escapes are all valid, the replacer else. Each
	// '&' and ';' made "&&", so that a match that ends at one leaves the other to start
	// the next, and one before the first name.
	text, err := url.QueryUnescape(strings.ReplaceAll(string(body), "%26", "%2526"))
	if err != nil {
		text = formNameDecoder.Replace(string(body))
	}
	// A run of spaces made one (a name's leading spaces matter, not how many), so that
	// the matcher does not step through it: long runs first, a few compiled passes.
	if strings.Contains(text, "  ") {
		for i := 0; i < len(spaceRuns); i++ {
			for strings.Contains(text, spaceRuns[i]) {
				text = strings.ReplaceAll(text, spaceRuns[i], " ")
			}
		}
	}
	decoded := "&" + strings.ReplaceAll(strings.ReplaceAll(text, "&", "&&"), ";", "&&")
	// At most a few named fields: more matches than spellings is a repeat, refused.
	matches := namedInForm.FindAllStringSubmatchIndex(decoded, len(namedSpellings)+1)
	if len(matches) > len(namedSpellings) {
		return true
	}
	for i := 0; i < len(matches); i++ {
		m := matches[i]
		if !exactAllowed || m[3] > m[2] || !spellingOf[decoded[m[4]:m[5]]] || m[7] > m[6] && decoded[m[6]] != '=' && decoded[m[6]] != '&' {
			return true
		}
	}
	return false
}

// formNamesInJSON reads a JSON body, whose Content-Type says it is a form, the way PHP's
// $_POST, Node's querystring and URLSearchParams and Express's qs would, and reports
// whether that reading finds a named field. A genuine callback, raw or URL-encoded JSON,
// yields none; a body that does could make the backend read another event or other
// signed fields than the middleware checked.
func formNamesInJSON(body []byte) error {
	if bytes.Count(body, ampersand) >= maxFormFields {
		return errTooManyFields
	}
	if formAlias(body, false) {
		return errFormInJSON
	}
	return nil
}

// spellingOf holds the named fields' spellings exactly.
var spellingOf = func() map[string]bool {
	m := make(map[string]bool, len(namedSpellings))
	for _, sp := range namedSpellings {
		m[sp.name] = true
	}
	return m
}()

// urlDecoder decodes as PHP's urldecode and Node's querystring.unescape do: '+' is a
// space, %XX a byte (either case), and a '%' that starts no escape stays as it is. One
// compiled pass, whatever the body. formNameDecoder is the same but keeps %26 ('&'),
// since a form is split at its raw '&' before its names are decoded; plusDecoder keeps
// '+', as PHP's rawurldecode and Python's unquote do.
var (
	urlDecoder      = newURLDecoder(true, true)
	formNameDecoder = newURLDecoder(false, true)
	plusDecoder     = newURLDecoder(true, false)
)

func newURLDecoder(ampersand, plus bool) *strings.Replacer {
	const hexDigits = "0123456789abcdefABCDEF"
	var pairs []string
	if plus {
		pairs = append(pairs, "+", " ")
	}
	for i := 0; i < len(hexDigits); i++ {
		for j := 0; j < len(hexDigits); j++ {
			hi := hexDigits[i]
			lo := hexDigits[j]
			b := string([]byte{unhex(hi)<<4 | unhex(lo)})
			if b != "&" || ampersand {
				pairs = append(pairs, string([]byte{'%', hi, lo}), b)
			}
		}
	}
	return strings.NewReplacer(pairs...)
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
