package zegocallback

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Forms, as ZEGO's form mode sends them and as backends read them. PHP, the language of
// ZEGO's own verification sample, reads a form's names its own way: it drops leading
// spaces, cuts a name at a NUL, reads '.' and ' ' as '_', and takes "name[...]" as
// "name" (an array); the last of two values wins. A form whose names PHP would read as a
// named field under another spelling than the middleware read is refused, so that the
// backend reads the event and the signed fields the middleware checked.

// maxFormFields bounds a form's fields: PHP's max_input_vars and Node's querystring stop
// at 1 000, and a field past it would be seen here and missed by the backend.
const maxFormFields = 1000

var (
	errTooManyFields = fmt.Errorf("%w: more than %d form fields", ErrMalformedBody, maxFormFields)
	errFormAlias     = fmt.Errorf("%w: a form name that PHP reads as a named field", ErrMalformedBody)
	errFormInJSON    = fmt.Errorf("%w: a JSON body sent as a form holds a named field when read as one", ErrMalformedBody)
)

// parseForm decodes a form body into the same shape as a JSON one: each value becomes a
// JSON string, a repeated key an array of strings (so a signed field sent twice is not a
// scalar and is refused).
func parseForm(body []byte) (map[string]json.RawMessage, error) {
	if bytes.Count(body, ampersand) >= maxFormFields {
		return nil, errTooManyFields
	}
	values, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errNotForm
	}
	fields := make(map[string]json.RawMessage, len(values))
	for k, vs := range values {
		if !utf8.ValidString(k) {
			return nil, errNotUTF8
		}
		if _, exact := spellingOf[k]; !exact && phpNamed(k) {
			return nil, errFormAlias
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return nil, errNotUTF8
			}
		}
		var raw []byte
		if len(vs) == 1 {
			raw, err = json.Marshal(vs[0])
		} else {
			raw, err = json.Marshal(vs)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: form value", ErrMalformedBody)
		}
		fields[k] = raw
	}
	return fields, nil
}

var ampersand = []byte("&")

// spellingOf holds the named fields' spellings exactly.
var spellingOf = func() map[string]bool {
	m := make(map[string]bool, len(namedSpellings))
	for _, sp := range namedSpellings {
		m[sp.name] = true
	}
	return m
}()

// phpDots is how PHP reads '.' and ' ' in a form name.
var phpDots = strings.NewReplacer(".", "_", " ", "_")

// phpNamed reports whether PHP would read the decoded form name k as one of the named
// fields, in any letter case (a backend may fold it). Every step is a compiled call.
func phpNamed(k string) bool {
	k = strings.TrimLeft(k, " ")
	if i := strings.IndexAny(k, "\x00["); i >= 0 {
		k = k[:i]
	}
	// The spellings are 5 to 10 bytes long.
	if len(k) < 5 || len(k) > 10 {
		return false
	}
	_, named := namedByLowerName[strings.ToLower(phpDots.Replace(k))]
	return named
}

// formReadingNames reads a JSON body, whose Content-Type says it is a form, the way PHP's
// $_POST, Node's querystring and URLSearchParams would: pairs split at '&', the name
// before the first '=', URL-decoded leniently. A genuine callback, raw or URL-encoded
// JSON, yields no named field so; a body that does could make the backend read another
// event or other signed fields than the middleware checked.
func formReadingNames(body []byte) error {
	s := string(body)
	if strings.Count(s, "&") >= maxFormFields {
		return errTooManyFields
	}
	for s != "" {
		pair := s
		if i := strings.IndexByte(s, '&'); i >= 0 {
			pair = s[:i]
			s = s[i+1:]
		} else {
			s = ""
		}
		if i := strings.IndexByte(pair, '='); i >= 0 {
			pair = pair[:i]
		}
		if phpNamed(lenientFormName(pair)) {
			return errFormInJSON
		}
	}
	return nil
}

// lenientFormName decodes a form name as PHP does: '+' is a space, %XX a byte, and a '%'
// that starts no escape stays as it is. Only the start of a long name is decoded: a
// named field is at most 10 bytes, each written in at most 3, after leading spaces.
func lenientFormName(k string) string {
	if !strings.ContainsAny(k, "+%") {
		return k
	}
	k = strings.TrimLeft(strings.ReplaceAll(k, "%20", "+"), "+")
	if len(k) > 40 {
		k = k[:40]
	}
	if d, err := url.QueryUnescape(k); err == nil {
		return d
	}
	out := make([]byte, 0, len(k))
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c == '+' {
			c = ' '
		} else if c == '%' && i+2 < len(k) && isHex(k[i+1]) && isHex(k[i+2]) {
			c = unhex(k[i+1])<<4 | unhex(k[i+2])
			i += 2
		}
		out = append(out, c)
	}
	return string(out)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
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
