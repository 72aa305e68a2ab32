package conformance

import (
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// Case is one row of the table: a configuration and the requests sent to one middleware,
// in order, each with what must come of it.
type Case struct {
	Desc   string
	Config map[string]any // over the base: secrets [zegotest.Secret]
	Steps  []Step
	Store  bool // the case exercises the replay store: it runs with each store
}

// Step is one request and what must come of it.
type Step struct {
	Req     Request
	Backend int // the backend's answer for this request (200 when zero)

	Status     int
	Code       string              // the rejection code in the JSON body, "" for none
	Forwarded  bool                // whether the backend got the request
	Got        map[string][]string // headers the backend must get, exactly
	NotGot     []string            // headers the backend must not get
	RespHeader map[string]string   // headers the client must get
	// BackendBody and BackendType are the backend's answer's body and Content-Type for
	// this request (its own when BackendBody is ""); RespBody, when set, is the body the
	// client must get.
	BackendBody, BackendType, RespBody string
	// NoAnswer: the client must get no answer at all, the connection closed (retryOn
	// noAnswer); Status and Code are not looked at.
	NoAnswer bool
}

// requestSteps are the steps of a request as README.md's "Each request, in order" and
// ServeHTTP's comments number them. The name of each row of Cases and AdversarialCases
// (ReadingCases aside) starts with the number of the step it is about: where the
// request is refused, or, for one forwarded, the step whose reading or rule it shows.
var requestSteps = [...]string{
	1:  "strip the headers with the prefix",
	2:  "only POST",
	3:  "Content-Encoding and multipart",
	4:  "the body, at most maxBodyBytes",
	5:  "parse the body",
	6:  "the signature",
	7:  "freshness",
	8:  "the event against events",
	9:  "replays",
	10: "forward, annotated, and settle",
}

// Cases returns the table for a clock reading now: build it just before a case runs (see
// CaseAt). secretsFile names a file that holds zegotest.OtherSecret. The rows come in
// the order of the request's steps, then the rows of the options that concern several
// (the header options, reportOnly), then ReadingCases; the order is fixed, as CaseAt
// takes a row by its place.
func Cases(now time.Time, secretsFile string) []Case {
	return joinRows(
		stepStripCases(now),
		stepMethodCases(now),
		stepSizeCases(now),
		stepBodyKindCases(now),
		stepNamedFieldCases(now),
		stepMalformedCases(now),
		stepSignatureCases(now, secretsFile),
		stepAppSecretCases(now),
		stepFreshnessCases(now),
		stepEventCases(now),
		stepReplayCases(now),
		stepAnswerCases(now),
		stepForwardCases(now),
		headerOptionCases(now),
		reportOnlyCases(now),
		ReadingCases(now),
	)
}

// joinRows is the groups' rows, one group after the other.
func joinRows(groups ...[]Case) []Case {
	var rows []Case
	for _, g := range groups {
		rows = append(rows, g...)
	}
	return rows
}

// CaseAt returns case i of the table, signed now: the time-sensitive rows hold only
// for a second or two after signing.
func CaseAt(i int, secretsFile string) Case {
	return Cases(time.Now(), secretsFile)[i]
}

// signed fills template with ts, a fresh nonce and their signature with zegotest.Secret.
func signed(template, ts string) []byte {
	return zegotest.Fill(template, zegotest.Secret, ts, zegotest.Nonce())
}

// mixNow is ZEGO's mix_start example signed for now with zegotest.Secret, a nonce of its
// own.
func mixNow(now time.Time) []byte {
	return zegotest.New("mix_start.json", zegotest.Secret, zegotest.Seconds(now)).Body
}

// row is a case of the base configuration that sends body once, with what must come of it.
func row(desc string, body []byte, want Step) Case { return Case{Desc: desc, Steps: one(body, want)} }

// configured is a row of config over the base configuration.
func configured(desc string, config map[string]any, body []byte, want Step) Case {
	return Case{Desc: desc, Config: config, Steps: one(body, want)}
}

// malformed is a row whose body is refused with 400 malformed_body.
func malformed(desc string, body []byte) Case {
	return row(desc, body, rejected(400, "malformed_body"))
}

// ok is a step forwarded with 200, the backend getting the headers got and none of notGot.
func ok(got map[string][]string, notGot ...string) Step {
	return Step{Status: 200, Forwarded: true, Got: got, NotGot: notGot}
}

// Delivered is a step whose body is forwarded, and answered 200.
func Delivered(body []byte) Step { return Step{Req: Request{Body: body}, Status: 200, Forwarded: true} }

// Acked is a step whose body was delivered before: acknowledged with 200 and
// X-Zego-Duplicate, not forwarded.
func Acked(body []byte) Step {
	return Step{Req: Request{Body: body}, Status: 200, RespHeader: map[string]string{"X-Zego-Duplicate": "true"}}
}

// rejected is a step refused with status and the rejection code.
func rejected(status int, code string) Step { return Step{Status: status, Code: code} }

// one is the steps of a case that sends body once.
func one(body []byte, want Step) []Step { return []Step{withBody(want, body)} }

func withBody(s Step, body []byte) Step {
	s.Req.Body = body
	return s
}

func withHeader(s Step, name, value string) Step {
	return withHeaders(s, map[string][]string{name: {value}})
}

func withHeaders(s Step, h map[string][]string) Step {
	if s.Req.Header == nil {
		s.Req.Header = map[string][]string{}
	}
	for k, v := range h {
		s.Req.Header[k] = v
	}
	return s
}

// forged is a mix_stop signed with a secret the middleware does not hold.
func forged(now time.Time) []byte {
	return zegotest.New("mix_stop.json", "not-the-secret", zegotest.Seconds(now)).Body
}
