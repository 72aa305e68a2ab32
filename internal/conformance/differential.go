package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/redistest"
	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// The middleware reads a body one of two ways: the plain reading (plain_json.go), for a
// POST of application/json whose body it can walk at its quotes, and the general one
// (callback.go) for everything else. Differential holds them equal from outside: each
// generated request goes to two middlewares with one configuration, as it is (a POST of
// application/json, which the plain reading takes when it can) and with a Content-Type
// parameter (application/json; charset=utf-8, which only the general reading reads), and
// the two must give the same answer (status, headers, body), forward or not alike, and
// forward the same headers (all but Content-Type) and the same body. The two
// middlewares have stores of their own and see the same requests in the same order, so
// that duplicates and reused signatures answer alike too: each in a real Redis, under a
// key prefix of its own (every middleware of a process that keeps its store in memory
// shares one, and the pairs see the same bodies).

// DiffConfigs are the configurations Differential runs, each laid on Config().
var DiffConfigs = []map[string]any{
	nil,
	{"fields": []string{"event", "appid", "task_id"}},
	{"fields": []string{"Timestamp", "nonce", "channel_id", "hdl_urls", "EventType", "Data"}},
	{"maxHeaderFields": 5},
	{"maxHeaderValueBytes": 24},
	{"headerPrefix": "Zego-Cb-", "duplicates": "reject"},
	{"events": []string{"mix_start", "stream_create", "Exception", "2"}},
	{"replayKey": "signatureAndBody"},
	{"timestampUnit": "milliseconds", "secrets": []string{zegotest.OtherSecret, zegotest.Secret}},
}

// diffPair is one configuration's two middlewares and their backends.
type diffPair struct {
	config   map[string]any
	millis   bool
	handlers [2]http.Handler
	backends [2]*diffBackend
}

// diffBackend records the last request forwarded to it.
type diffBackend struct {
	called bool
	got    Received
	status int
}

func (b *diffBackend) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	var body bytes.Buffer
	_, _ = body.ReadFrom(req.Body)
	b.called = true
	b.got = Received{Method: req.Method, Header: req.Header.Clone(), Body: body.Bytes(), ContentLength: req.ContentLength}
	rw.Header().Set("Content-Type", "text/plain")
	rw.WriteHeader(b.status)
	_, _ = rw.Write([]byte("backend"))
}

// Differential sends n generated requests (see DiffGenerator) through both readings of
// each configuration of DiffConfigs and fails on the first that differs, with the
// request to reproduce it.
func Differential(t *testing.T, build Builder, n int, seed int64) {
	pairs := DiffPairs(t, build)
	gen := NewDiffGenerator(seed)
	for i := 0; i < n; i++ {
		p := pairs[gen.rng.Intn(len(pairs))]
		req := gen.Next(p.millis)
		if msg := p.Compare(req); msg != "" {
			t.Fatalf("request %d (seed %d), configuration %v: the two readings differ: %s\nbody: %q\nheaders: %v",
				i, seed, p.config, msg, req.Body, req.Header)
		}
	}
}

// DiffPairs builds the two middlewares of each configuration of DiffConfigs.
func DiffPairs(t testing.TB, build Builder) []*diffPair {
	var pairs []*diffPair
	redis := RedisStore(redistest.Start(t, redistest.Options{Password: RedisPassword}).Addr, RedisPassword)
	for _, over := range DiffConfigs {
		p := &diffPair{config: Config(over), millis: over["timestampUnit"] == "milliseconds"}
		for k := range p.handlers {
			p.backends[k] = &diffBackend{status: http.StatusOK}
			name := UniqueName("differential")
			h, err := build(t, Config(p.config, redis(name)), p.backends[k], name)
			if err != nil {
				t.Fatalf("configuration %v: %v", p.config, err)
			}
			p.handlers[k] = h
		}
		pairs = append(pairs, p)
	}
	return pairs
}

// DiffRequest is one generated request: its body and headers (without Content-Type),
// and the backend's status for it.
type DiffRequest struct {
	Body    []byte
	Header  http.Header
	Backend int
}

// Compare sends req through both middlewares of p and says how they differ ("" when they
// do not).
func (p *diffPair) Compare(req DiffRequest) string {
	var recs [2]*httptest.ResponseRecorder
	for k, contentType := range []string{"application/json", "application/json; charset=utf-8"} {
		r := httptest.NewRequest(http.MethodPost, "/callback", bytes.NewReader(req.Body))
		for name, values := range req.Header {
			r.Header[name] = append([]string(nil), values...)
		}
		r.Header["Content-Type"] = []string{contentType}
		b := p.backends[k]
		b.called, b.got, b.status = false, Received{}, req.Backend
		recs[k] = httptest.NewRecorder()
		p.handlers[k].ServeHTTP(recs[k], r)
	}
	a, g := recs[0], recs[1]
	switch {
	case a.Code != g.Code:
		return fmt.Sprintf("status %d (plain) and %d (general)", a.Code, g.Code)
	case !reflect.DeepEqual(a.Header(), g.Header()):
		return fmt.Sprintf("answer headers %v (plain) and %v (general)", a.Header(), g.Header())
	case a.Body.String() != g.Body.String():
		return fmt.Sprintf("answer %q (plain) and %q (general)", a.Body, g.Body)
	case p.backends[0].called != p.backends[1].called:
		return fmt.Sprintf("forwarded: %v (plain) and %v (general)", p.backends[0].called, p.backends[1].called)
	case !p.backends[0].called:
		return ""
	}
	fa, fg := p.backends[0].got, p.backends[1].got
	delete(fa.Header, "Content-Type")
	delete(fg.Header, "Content-Type")
	switch {
	case !reflect.DeepEqual(fa.Header, fg.Header):
		return "forwarded headers differ:\n" + headerDiff(fa.Header, fg.Header)
	case !bytes.Equal(fa.Body, fg.Body):
		return fmt.Sprintf("forwarded bodies %q (plain) and %q (general)", fa.Body, fg.Body)
	case fa.ContentLength != fg.ContentLength:
		return fmt.Sprintf("forwarded Content-Length %d (plain) and %d (general)", fa.ContentLength, fg.ContentLength)
	}
	return ""
}

// headerDiff lists the header names whose values differ, with both values.
func headerDiff(a, g http.Header) string {
	names := map[string]bool{}
	for n := range a {
		names[n] = true
	}
	for n := range g {
		names[n] = true
	}
	var lines []string
	for n := range names {
		if !reflect.DeepEqual(a[n], g[n]) {
			lines = append(lines, fmt.Sprintf("  %s: %q (plain) %q (general)", n, a[n], g[n]))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// DiffGenerator makes the requests of Differential from ZEGO's documented callbacks
// (testdata/callbacks), each taken apart into its top-level fields, changed the ways a
// body can differ (named fields' spellings and types, keys twice, names that write one
// header, values of every JSON kind, white space, escapes, bytes that are not ASCII,
// too many fields, values too long, a body cut short), put together in one of several
// layouts, and signed, signed with another secret, or not at all. Every choice comes
// from its seed.
type DiffGenerator struct {
	rng    *rand.Rand
	bodies [][]diffMember
	plain  [][]diffMember // the bodies whose values are all strings or arrays of strings
	recent [][]byte       // bodies sent, some of which are sent again
}

// diffMember is a top-level field: its key and its value's JSON text.
type diffMember struct{ key, raw string }

// NewDiffGenerator returns the generator of seed.
func NewDiffGenerator(seed int64) *DiffGenerator {
	g := &DiffGenerator{rng: rand.New(rand.NewSource(seed))}
	for _, e := range corpus() {
		if members, err := topLevelMembers(e.Body); err == nil {
			g.bodies = append(g.bodies, members)
			if allStrings(members) {
				g.plain = append(g.plain, members)
			}
		}
	}
	return g
}

// topLevelMembers takes a JSON object apart into its fields, in order, each value's text
// compacted.
func topLevelMembers(body []byte) ([]diffMember, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not an object")
	}
	var out []diffMember
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		var c bytes.Buffer
		if err := json.Compact(&c, raw); err != nil {
			return nil, err
		}
		out = append(out, diffMember{key: tok.(string), raw: c.String()})
	}
	return out, nil
}

// The named fields' spellings, by field, as ZEGO's products write them.
var diffSpellings = [][]string{
	{"signature", "Signature"},
	{"timestamp", "Timestamp"},
	{"nonce", "Nonce"},
	{"event", "Event", "EventType", "event_type"},
	{"appid", "AppId", "Appid", "AppID", "app_id"},
}

// diffKeys are other keys a body may get: ZEGO's, names that write one header (task_id
// and TaskId, task.id), the middleware's own, names no header can carry, and the like.
var diffKeys = []string{
	"task_id", "TaskId", "task.id", "Task-Id", "channel_id", "ChannelId", "seq", "hdl_urls", "extra",
	"verified", "Verified", "duplicate", "rejection", "X-Zego-Verified", "Data", "data", "detail",
	"", " ", "a b", " lead", "trail ", "é", "ключ", "k\"q", "%41", "a+b", "room_id", "RoomID", "roomId",
	strings.Repeat("n", 128), strings.Repeat("n", 129), "event_type2", "appid_", "_appid",
}

// diffTexts are string values: plain ones, and those a header cannot carry as they are.
var diffTexts = []string{
	"", "abc", "111111:1111", "rtmp://rtmp.wsdemo.zego.im/zegodemo/aaa", "a b", " lead", "trail ",
	" ", "x%41y", "a+b", "é", "日本", "tab\there", "line\nbreak", "del\x7f", "quote\"in", `back\slash`,
	strings.Repeat("v", 23), strings.Repeat("v", 24), strings.Repeat("v", 25), strings.Repeat("w", 300),
	"null", "true", "0", "{}", "[]", ":", ",", "\",\"",
}

// Next returns the next request: a body for a route whose timestamps are in milliseconds
// when millis is set.
func (g *DiffGenerator) Next(millis bool) DiffRequest {
	r := g.rng
	req := DiffRequest{Header: http.Header{}, Backend: http.StatusOK}
	if r.Intn(20) == 0 {
		req.Backend = http.StatusInternalServerError
	}
	if r.Intn(8) == 0 {
		// A client's own headers with the prefix, which neither reading lets through.
		req.Header["X-Zego-Event"] = []string{"forged"}
		req.Header["X_zego_verified"] = []string{"true"}
		req.Header["Zego_cb_event"] = []string{"forged"}
	}
	if len(g.recent) > 0 && r.Intn(10) == 0 {
		req.Body = g.recent[r.Intn(len(g.recent))] // a retry, or a replay
		return req
	}
	req.Body = g.body(millis)
	if len(g.recent) < 64 {
		g.recent = append(g.recent, req.Body)
	} else {
		g.recent[r.Intn(len(g.recent))] = req.Body
	}
	return req
}

// body makes one body: fields changed, laid out, signed.
func (g *DiffGenerator) body(millis bool) []byte {
	r := g.rng
	from := g.bodies
	if r.Intn(3) == 0 {
		from = g.plain // the plain reading's usual body, which it reads without a second look
	}
	members := append([]diffMember(nil), from[r.Intn(len(from))]...)
	now := time.Now()
	ts := zegotest.Seconds(now)
	if millis {
		ts = zegotest.Millis(now)
	}
	// A stale or future timestamp, some of the time, far from the window's edges.
	switch r.Intn(12) {
	case 0:
		ts = zegotest.Seconds(now.Add(-2 * time.Hour))
	case 1:
		ts = zegotest.Seconds(now.Add(2 * time.Hour))
	case 2:
		ts = "0" + ts
	case 3:
		ts = zegotest.Millis(now) // milliseconds on a seconds route, or the unit it wants
	}
	nonce := strconv.FormatInt(r.Int63(), 10)
	if r.Intn(10) == 0 {
		nonce = []string{"", "abcdd22113", " 12", "12 ", "é1", "1\"2", `1\2`}[r.Intn(7)]
	}
	// The signed fields' values, each a JSON string or number.
	tsRaw := strconv.Quote(ts)
	if r.Intn(3) == 0 {
		tsRaw = ts
	}
	nonceRaw := jsonString(nonce)
	if r.Intn(6) == 0 && nonce != "" && strings.Trim(nonce, "0123456789") == "" && nonce[0] != '0' {
		nonceRaw = nonce
	}
	members = setNamed(members, 1, tsRaw)
	members = setNamed(members, 2, nonceRaw)
	for k := r.Intn(6) - 2; k > 0; k-- {
		members = g.change(members)
	}
	sig := zegotest.Sign(zegotest.Secret, ts, nonce)
	switch r.Intn(10) {
	case 0:
		sig = zegotest.Sign(zegotest.OtherSecret+"x", ts, nonce) // forged
	case 1:
		sig = strings.ToUpper(sig)
	case 2:
		sig = sig[:39]
	}
	members = setNamed(members, 0, strconv.Quote(sig))
	if r.Intn(25) == 0 {
		members = removeNamed(members, r.Intn(3))
	}
	body := layout(r, members)
	switch r.Intn(40) {
	case 0:
		body = body[:r.Intn(len(body))] // cut short
	case 1:
		body = append(body, " "...)
	case 2:
		body = append([]byte(" "), body...)
	case 3:
		body = append(body, "}"...)
	}
	return body
}

// change changes one thing of a body's fields.
func (g *DiffGenerator) change(members []diffMember) []diffMember {
	r := g.rng
	switch r.Intn(12) {
	case 0: // a named field under another spelling
		f := 3 + r.Intn(2)
		if i := namedAt(members, f); i >= 0 {
			members[i].key = diffSpellings[f][r.Intn(len(diffSpellings[f]))]
		} else {
			members = append(members, diffMember{diffSpellings[f][r.Intn(len(diffSpellings[f]))], g.value()})
		}
	case 1: // a named field's value of another kind
		f := 3 + r.Intn(2)
		if i := namedAt(members, f); i >= 0 {
			members[i].raw = g.value()
		}
	case 2: // a key twice
		if len(members) > 0 {
			m := members[r.Intn(len(members))]
			if r.Intn(2) == 0 {
				m.raw = g.value()
			}
			members = insert(r, members, m)
		}
	case 3: // a named field under a second spelling
		f := r.Intn(5)
		members = insert(r, members, diffMember{diffSpellings[f][r.Intn(len(diffSpellings[f]))], g.value()})
	case 4, 5: // another field
		members = insert(r, members, diffMember{diffKeys[r.Intn(len(diffKeys))], g.value()})
	case 6: // a value of another kind
		if i := r.Intn(len(members)); !isNamedKey(members[i].key) {
			members[i].raw = g.value()
		}
	case 7: // many fields
		for k := 3 + r.Intn(110); k > 0; k-- {
			members = insert(r, members, diffMember{"f" + strconv.Itoa(r.Intn(200)), g.value()})
		}
	case 8: // a key with an escape, or not ASCII
		members = insert(r, members, diffMember{[]string{"k\\u0061", "ключ", "caf\\u00e9"}[r.Intn(3)], g.value()})
	case 9: // a field removed
		if i := r.Intn(len(members)); !isNamedKey(members[i].key) {
			members = append(members[:i], members[i+1:]...)
		}
	case 10: // nested objects and arrays
		members = insert(r, members, diffMember{diffKeys[r.Intn(len(diffKeys))],
			`{"a":[1,{"b":"c"}],"k":{"signature":"x","event":"y"}}`})
	case 11: // an array of strings
		members = insert(r, members, diffMember{diffKeys[r.Intn(len(diffKeys))], g.array()})
	}
	return members
}

// value returns a JSON value of any kind.
func (g *DiffGenerator) value() string {
	r := g.rng
	switch r.Intn(10) {
	case 0:
		return []string{"0", "1", "-1", "1.5", "1e3", "12345678901234567890", "007"}[r.Intn(7)]
	case 1:
		return []string{"true", "false", "null"}[r.Intn(3)]
	case 2:
		return g.array()
	case 3:
		return []string{`{}`, `{"a":"b"}`, `{"x":{"y":[1,2]}}`}[r.Intn(3)]
	case 4:
		return []string{`"\u00e9"`, `"a\"b"`, `"a\\b"`, `"\/x"`, `"\t"`, `"\u0041"`}[r.Intn(6)]
	}
	return jsonString(diffTexts[r.Intn(len(diffTexts))])
}

// array returns a JSON array, of strings most of the time.
func (g *DiffGenerator) array() string {
	r := g.rng
	n := r.Intn(4)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = jsonString(diffTexts[r.Intn(len(diffTexts))])
		if r.Intn(6) == 0 {
			parts[i] = []string{"1", "null", "true", `{"a":"b"}`, `["x"]`}[r.Intn(5)]
		}
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// layout writes the fields as a JSON object, in one of the layouts ZEGO's examples, JSON
// encoders and hand-written bodies use.
func layout(r *rand.Rand, members []diffMember) []byte {
	colon, comma, open, end := `: `, `,`, "{", "}" // ZEGO's own layout, the usual one
	switch r.Intn(10) {
	case 0, 1:
		colon = `:` // compact, as encoders write it
	case 2:
		colon = []string{` : `, `:  `, ` :`, "\t:", "\n: ", "\r\n :\t"}[r.Intn(6)]
		comma = []string{`,`, `, `, ` ,`, "\t,", "\n,\n"}[r.Intn(5)]
	case 3:
		comma, open, end = ",\n  ", "{\n  ", "\n}" // pretty-printed
	case 4:
		comma = []string{",\t", ",\r\n", ", "}[r.Intn(3)]
	}
	odd := r.Intn(4) == 0 // a field or two laid out otherwise, as hand-edited bodies are
	var b strings.Builder
	b.WriteString(open)
	for i, m := range members {
		c := colon
		if odd && r.Intn(6) == 0 {
			c = []string{`:`, ` :`, "\t:", "\n: ", `: `}[r.Intn(5)]
		}
		if i > 0 {
			b.WriteString(comma)
		}
		b.WriteString(jsonString(m.key))
		b.WriteString(c)
		raw := m.raw
		if len(raw) > 2 && raw[0] == '[' && r.Intn(4) == 0 {
			raw = strings.ReplaceAll(raw, `","`, `", "`)
		}
		b.WriteString(raw)
	}
	b.WriteString(end)
	return []byte(b.String())
}

// allStrings says whether every value is a string or an array of strings.
func allStrings(members []diffMember) bool {
	for _, m := range members {
		if m.raw[0] == '"' {
			continue
		}
		var texts []string
		if m.raw[0] != '[' || json.Unmarshal([]byte(m.raw), &texts) != nil {
			return false
		}
	}
	return true
}

// jsonString is s as a JSON string, with no more escapes than JSON needs: bytes that are
// not ASCII, DEL and '/' as they are.
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// namedAt is the place of the first field that is named field f, under any spelling,
// -1 for none.
func namedAt(members []diffMember, f int) int {
	for i, m := range members {
		for _, s := range diffSpellings[f] {
			if m.key == s {
				return i
			}
		}
	}
	return -1
}

func isNamedKey(key string) bool {
	for _, spellings := range diffSpellings {
		for _, s := range spellings {
			if key == s {
				return true
			}
		}
	}
	return false
}

// setNamed sets named field f's value, adding it under its first spelling when absent.
func setNamed(members []diffMember, f int, raw string) []diffMember {
	if i := namedAt(members, f); i >= 0 {
		members[i].raw = raw
		return members
	}
	return append(members, diffMember{diffSpellings[f][0], raw})
}

func removeNamed(members []diffMember, f int) []diffMember {
	if i := namedAt(members, f); i >= 0 {
		return append(members[:i], members[i+1:]...)
	}
	return members
}

// insert puts m at a random place.
func insert(r *rand.Rand, members []diffMember, m diffMember) []diffMember {
	i := r.Intn(len(members) + 1)
	members = append(members, diffMember{})
	copy(members[i+1:], members[i:])
	members[i] = m
	return members
}

// DiffSeeds returns n bodies of the generator, to seed a fuzzer.
func DiffSeeds(n int) [][]byte {
	g := NewDiffGenerator(3)
	out := make([][]byte, n)
	for i := range out {
		out[i] = g.body(false)
	}
	return out
}

// DiffBody sends body through both readings of every pair, as it is and signed as its
// own timestamp and nonce say (its signature's value replaced), and fails when the
// readings differ.
func DiffBody(t *testing.T, pairs []*diffPair, body []byte) {
	bodies := [][]byte{body}
	if signed, ok := resignAsItSays(body); ok {
		bodies = append(bodies, signed)
	}
	for _, b := range bodies {
		for _, p := range pairs {
			req := DiffRequest{Body: b, Header: http.Header{}, Backend: http.StatusOK}
			if msg := p.Compare(req); msg != "" {
				t.Fatalf("configuration %v: the two readings differ: %s\nbody: %q", p.config, msg, b)
			}
		}
	}
}

// resignAsItSays returns body with its signature's value replaced by the signature of
// its own timestamp and nonce texts (a JSON string's value, or a number's text), when it
// is a JSON object that holds all three under one spelling each.
func resignAsItSays(body []byte) ([]byte, bool) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return nil, false
	}
	var names [3]string
	var texts [3]string
	for f := 0; f < 3; f++ {
		for _, s := range diffSpellings[f] {
			if raw, ok := fields[s]; ok {
				names[f] = s
				if json.Unmarshal(raw, &texts[f]) != nil {
					texts[f] = string(raw)
				}
			}
		}
		if names[f] == "" {
			return nil, false
		}
	}
	signed, err := replaceValues(body, map[string]string{names[0]: strconv.Quote(zegotest.Sign(zegotest.Secret, texts[1], texts[2]))})
	return signed, err == nil
}
