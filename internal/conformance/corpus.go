package conformance

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// CorpusEntry is one documented callback of testdata/callbacks, as its index.json
// describes it.
type CorpusEntry struct {
	File          string `json:"file"`
	Product       string `json:"product"`
	Event         string `json:"event"`
	EventField    string `json:"eventField"`
	AppIDField    string `json:"appidField"`
	Format        string `json:"format"`
	TimestampUnit string `json:"timestampUnit"`
	TimestampType string `json:"timestampType"`
	NonceType     string `json:"nonceType"`
	Source        string `json:"source"`
	Body          []byte `json:"-"`
}

// corpusDir is testdata/callbacks, found from this file's place in the repository.
func corpusDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "callbacks")
}

// corpus reads the documented callbacks. It panics when the corpus cannot be read: the
// tests that use it must not pass without it.
func corpus() []CorpusEntry {
	dir := corpusDir()
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		panic(fmt.Sprintf("conformance: the callback corpus: %v", err))
	}
	var entries []CorpusEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		panic(fmt.Sprintf("conformance: testdata/callbacks/index.json: %v", err))
	}
	for i := range entries {
		body, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(entries[i].File)))
		if err != nil {
			panic(fmt.Sprintf("conformance: %v", err))
		}
		entries[i].Body = body
	}
	return entries
}

// formProducts are the products whose callbacks ZEGO also sends in form mode, on
// request: the RTC server callbacks. The corpus holds their JSON examples; the table
// also sends each as the form ZEGO's form mode would make of it.
var formProducts = map[string]bool{"rtc_stream": true, "rtc_room": true, "stream_mixing": true, "cdn": true}

// signedNames are the names of the signed fields, in the corpus's spellings (mini-game's
// nonce is SignatureNonce).
var signedNames = [3][]string{{"signature", "Signature"}, {"timestamp", "Timestamp"}, {"nonce", "Nonce", "SignatureNonce"}}

// Resign returns the entry's body with a fresh timestamp (in its own unit and JSON type),
// a fresh nonce of the same shape and their signature with secret, everything else as
// published. It also returns the values signed.
func (e CorpusEntry) Resign(secret string, now time.Time) (body []byte, ts, nonce string, err error) {
	spans, err := topLevelSpans(e.Body)
	if err != nil {
		return nil, "", "", err
	}
	var names [3]string
	for i, pair := range signedNames {
		for _, n := range pair {
			if _, ok := spans[n]; ok {
				names[i] = n
			}
		}
		if names[i] == "" {
			return nil, "", "", fmt.Errorf("%s: no %s", e.File, pair[0])
		}
	}
	ts = zegotest.Seconds(now)
	if e.TimestampUnit == "milliseconds" {
		ts = zegotest.Millis(now)
	}
	var published map[string]json.RawMessage
	if err := json.Unmarshal(e.Body, &published); err != nil {
		return nil, "", "", err
	}
	var oldNonce string
	if json.Unmarshal(published[names[2]], &oldNonce) != nil {
		oldNonce = string(published[names[2]])
	}
	nonce = sameShape(oldNonce)
	tsRaw := ts
	if e.TimestampType == "string" {
		tsRaw = strconv.Quote(ts)
	}
	nonceRaw := nonce
	if e.NonceType == "string" {
		nonceRaw = strconv.Quote(nonce)
	}
	body, err = replaceValues(e.Body, map[string]string{
		names[0]: strconv.Quote(zegotest.Sign(secret, ts, nonce)),
		names[1]: tsRaw,
		names[2]: nonceRaw,
	})
	return body, ts, nonce, err
}

// sameShape returns a random nonce shaped like n: as many digits (the first not 0) when
// n is all digits, else as many lower-case letters and digits.
func sameShape(n string) string {
	alphabet := "abcdefghijklmnopqrstuvwxyz0123456789"
	if regexp.MustCompile(`^[0-9]+$`).MatchString(n) {
		alphabet = "0123456789"
	}
	out := make([]byte, len(n))
	for i := range out {
		for {
			k, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
			out[i] = alphabet[k.Int64()]
			if i > 0 || out[i] != '0' {
				break
			}
		}
	}
	return string(out)
}

// AsForm returns a JSON callback as ZEGO's form mode would send it: each top-level field
// as name=value, URL-encoded, arrays as repeated names; false when a field is an object.
func AsForm(body []byte) ([]byte, bool) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return nil, false
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	var parts []string
	for _, name := range names {
		texts, ok := scalarTexts(fields[name])
		if !ok {
			return nil, false
		}
		for _, text := range texts {
			parts = append(parts, url.QueryEscape(name)+"="+url.QueryEscape(text))
		}
	}
	return []byte(strings.Join(parts, "&")), true
}

// scalarTexts returns the text of a scalar (a string's value, a number's or a boolean's
// text) or of each element of an array of scalars; false for objects and nested arrays.
func scalarTexts(raw json.RawMessage) ([]string, bool) {
	var elems []json.RawMessage
	if json.Unmarshal(raw, &elems) != nil {
		elems = []json.RawMessage{raw}
	}
	var out []string
	for _, e := range elems {
		switch e[0] {
		case '{', '[':
			return nil, false
		case 'n':
			continue
		case '"':
			var s string
			_ = json.Unmarshal(e, &s)
			out = append(out, s)
		default:
			out = append(out, string(e))
		}
	}
	return out, true
}

// ExpectedHeaders is what README.md says a backend gets for a body's top-level scalar
// fields: the prefix then the name in Header-Case (words split at every character other
// than a letter or digit and where a lower-case letter meets a capital), the value's
// text; the signature, nulls and objects give none; names that two fields share, and
// the middleware's own names, are left out. The event also comes as X-Zego-Event
// whatever its spelling. Written apart from the plugin's code, from the README's rule.
func ExpectedHeaders(fields map[string]json.RawMessage) map[string][]string {
	out := map[string][]string{}
	count := map[string]int{}
	for name, raw := range fields {
		if name == "signature" || name == "Signature" || raw[0] == '{' || raw[0] == '[' || raw[0] == 'n' {
			continue
		}
		texts, _ := scalarTexts(raw)
		for i := range texts {
			texts[i] = ExpectedHeaderValue(texts[i])
		}
		h := ExpectedHeaderName(name)
		count[h]++
		out[h] = texts
		if name == "EventType" || name == "event_type" {
			out["X-Zego-Event"] = texts
		}
		if name == "SignatureNonce" {
			out["X-Zego-Nonce"] = texts
		}
	}
	for h, n := range count {
		if n > 1 {
			delete(out, h)
		}
	}
	for _, own := range []string{"X-Zego-Verified", "X-Zego-Duplicate", "X-Zego-Rejection"} {
		delete(out, own)
	}
	return out
}

var (
	lowerUpper = regexp.MustCompile(`([a-z])([A-Z])`)
	notAlnum   = regexp.MustCompile(`[^A-Za-z0-9]`)
)

// ExpectedHeaderValue is the README's rule for a header's value: bytes below 0x20 and
// 0x7F, and a space at either end, written as %XX.
func ExpectedHeaderValue(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || c == ' ' && (i == 0 || i == len(s)-1) {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// ExpectedHeaderName is the README's rule for a field's header name, with the default
// prefix.
func ExpectedHeaderName(field string) string {
	return http.CanonicalHeaderKey("X-Zego-" + notAlnum.ReplaceAllString(lowerUpper.ReplaceAllString(field, "$1-$2"), "-"))
}

// CorpusRow is a documented callback sent in one body format.
type CorpusRow struct {
	Entry  CorpusEntry
	Format string // json, or form for the RTC examples sent as ZEGO's form mode would
}

var (
	corpusOnce sync.Once
	corpusRows []CorpusRow
)

// CorpusCallbacks returns a row per documented callback and format: every entry as
// JSON, the RTC ones as forms too.
func CorpusCallbacks() []CorpusRow {
	corpusOnce.Do(func() {
		for _, e := range corpus() {
			corpusRows = append(corpusRows, CorpusRow{Entry: e, Format: "json"})
			if formProducts[e.Product] {
				corpusRows = append(corpusRows, CorpusRow{Entry: e, Format: "form"})
			}
		}
	})
	return corpusRows
}

// Case returns the row's case for a clock reading now: the callback re-signed with
// zegotest.Secret, in its own timestamp unit; forwarded once with its body intact and
// every top-level scalar field as a header; refused with 401 when signed with another
// secret; not forwarded again when replayed.
func (r CorpusRow) Case(now time.Time) Case {
	e := r.Entry
	body, _, _, err := e.Resign(zegotest.Secret, now)
	forged, _, _, forgedErr := e.Resign(zegotest.OtherSecret, now)
	var fields map[string]json.RawMessage
	if err = errors.Join(err, forgedErr, json.Unmarshal(body, &fields)); err != nil {
		panic(fmt.Sprintf("conformance: %s: %v", e.File, err))
	}
	got := ExpectedHeaders(fields)
	got["X-Zego-Verified"] = []string{"true"}
	contentType := "application/json"
	if r.Format == "form" {
		contentType = "application/x-www-form-urlencoded"
		var ok bool
		if body, ok = AsForm(body); !ok {
			panic(fmt.Sprintf("conformance: %s cannot be sent as a form", e.File))
		}
		forged, _ = AsForm(forged)
	}
	ct := map[string][]string{"Content-Type": {contentType}}
	return Case{
		Desc:   fmt.Sprintf("documented %s (%s, %s, %s)", e.File, e.Event, r.Format, e.TimestampUnit),
		Config: map[string]any{"timestampUnit": e.TimestampUnit},
		Store:  true,
		Steps: []Step{
			{Req: Request{Body: body, Header: ct}, Status: http.StatusOK, Forwarded: true, Got: got, NotGot: []string{"X-Zego-Signature"}},
			{Req: Request{Body: forged, Header: ct}, Status: http.StatusUnauthorized, Code: "invalid_signature"},
			{Req: Request{Body: body, Header: ct}, Status: http.StatusOK, RespHeader: map[string]string{"X-Zego-Duplicate": "true"}},
		},
	}
}

// CorpusRows are the documented callbacks as rows, each signed just before it runs.
func CorpusRows() []Row {
	var rows []Row
	for _, cr := range CorpusCallbacks() {
		cr := cr
		c := cr.Case(time.Now())
		rows = append(rows, Row{Desc: c.Desc, Store: true, Mws: []Mw{{Config: c.Config}},
			Run: func(t *testing.T, e *Env) { CheckSteps(t, e.Srv[0], cr.Case(time.Now()).Steps) }})
	}
	return rows
}
