package conformance

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// stepAnswerCases: step 9 and 10, the answers each ZEGO product expects. A duplicate of
// a delivered callback gets the answer the backend gave its delivery (ZIM's
// before_send_msg reads its result from the body: a message the backend blocked must
// stay blocked on a retry); with retryOn noAnswer, what asks ZEGO to try again closes the
// connection instead of answering (cloud player, cloud recording and super board retry
// only a callback that got no answer).
func stepAnswerCases(now time.Time) []Case {
	blocked := Documented("zim/before_send_msg.json", now)
	rejectMode, long, custom, sniffed := Documented("zim/before_send_msg.json", now), mixNow(now), mixNow(now), mixNow(now)
	const result = `{"result":3,"reason":"blocked by the business"}`
	const json = "application/json"
	full, failed, fine := mixNow(now), mixNow(now), mixNow(now)
	miniGame := Documented("mini_game/report_game_info_danmaku.json", now)
	noAnswer := map[string]any{"retryOn": "noAnswer"}
	ack := `{"status":"duplicate","message":"this callback was already delivered; it was not forwarded again"}` + "\n"
	return []Case{
		{Desc: "9 before_send_msg replayed: the backend's result, as it answered",
			Store: true,
			Steps: []Step{
				{Req: Request{Body: blocked}, Status: 200, Forwarded: true, BackendBody: result, BackendType: json, RespBody: result},
				{Req: Request{Body: blocked}, Status: 200, RespBody: result,
					RespHeader: map[string]string{"X-Zego-Duplicate": "true", "Content-Type": json}},
			}},
		{Desc: "9 before_send_msg replayed, duplicates reject: its result, not 409",
			Store:  true,
			Config: map[string]any{"duplicates": "reject"},
			Steps: []Step{
				{Req: Request{Body: rejectMode}, Status: 200, Forwarded: true, BackendBody: result, BackendType: json},
				{Req: Request{Body: rejectMode}, Status: 200, RespBody: result,
					RespHeader: map[string]string{"X-Zego-Duplicate": "true", "Content-Type": json}},
			}},
		{Desc: "9 an answer past rememberAnswerBytes: the middleware's own ack",
			Store:  true,
			Config: map[string]any{"rememberAnswerBytes": 16},
			Steps: []Step{
				{Req: Request{Body: long}, Status: 200, Forwarded: true, BackendBody: result, BackendType: json},
				{Req: Request{Body: long}, Status: 200, RespBody: ack, RespHeader: map[string]string{"X-Zego-Duplicate": "true"}},
			}},
		{Desc: "9 an answer of another Content-Type and status: remembered as it was",
			Store: true,
			Steps: []Step{
				{Req: Request{Body: custom}, Status: 202, Backend: 202, Forwarded: true, BackendBody: `{"Code":200}`, BackendType: "application/vnd.example+json; v=2"},
				{Req: Request{Body: custom}, Status: 202, RespBody: `{"Code":200}`,
					RespHeader: map[string]string{"X-Zego-Duplicate": "true", "Content-Type": "application/vnd.example+json; v=2"}},
			}},
		{Desc: "9 a Content-Type the backend's server chose: remembered",
			Store: true,
			Steps: []Step{
				{Req: Request{Body: sniffed}, Status: 200, Forwarded: true, BackendBody: "ok"},
				{Req: Request{Body: sniffed}, Status: 200, RespBody: "ok",
					RespHeader: map[string]string{"X-Zego-Duplicate": "true", "Content-Type": "text/plain; charset=utf-8"}},
			}},
		{Desc: "9 retryOn noAnswer, the store full: no answer, not forwarded",
			Config: map[string]any{"retryOn": "noAnswer", "nonceCapacity": 1},
			Steps: []Step{
				Delivered(fine),
				{Req: Request{Body: full}, NoAnswer: true},
				Acked(fine),
			}},
		{Desc: "10 retryOn noAnswer, the backend's 5xx: no answer; 4xx relayed",
			Store:  true,
			Config: noAnswer,
			Steps: []Step{
				{Req: Request{Body: failed}, Backend: 500, Forwarded: true, NoAnswer: true},
				{Req: Request{Body: failed}, Backend: 503, Forwarded: true, NoAnswer: true},
				{Req: Request{Body: failed}, Backend: 404, Forwarded: true, Status: 404},
				Delivered(failed),
				Acked(failed),
			}},
		// Mini-game's API page describes an MD5 for its callbacks, which the middleware
		// does not check: refused as forged, with a log line that says why.
		{Desc: "6 a mini-game callback signed with an MD5: 401",
			Steps: []Step{withBody(rejected(401, "invalid_signature"), md5Signed(Documented("mini_game/report_game_info_danmaku.json", now)))}},
		{Desc: "6 the documented mini-game callback (SignatureNonce): delivered once",
			Store: true,
			Steps: []Step{Delivered(miniGame), Acked(miniGame)}},
		{Desc: "10 retryOn noAnswer: a delivery answers as always",
			Store:  true,
			Config: noAnswer,
			Steps:  []Step{Delivered(mixNow(now)), withBody(rejected(401, "invalid_signature"), zegotest.New("mix_start.json", zegotest.OtherSecret, zegotest.Seconds(now)).Body)},
		},
	}
}

// Documented returns the corpus's callback file (testdata/callbacks), re-signed with
// zegotest.Secret for now, in its own unit.
func Documented(file string, now time.Time) []byte {
	for _, e := range corpus() {
		if e.File == file {
			body, _, _, err := e.Resign(zegotest.Secret, now)
			if err != nil {
				panic(fmt.Sprintf("conformance: %s: %v", file, err))
			}
			return body
		}
	}
	panic("conformance: no " + file + " in the corpus; have " + strings.Join(corpusFiles(), ", "))
}

// md5Signed is body with its Signature replaced by 32 hex digits, the length of an MD5.
func md5Signed(body []byte) []byte {
	return regexp.MustCompile(`("Signature"\s*:\s*")[0-9a-f]{40}"`).ReplaceAll(body, []byte(`${1}0123456789abcdef0123456789abcdef"`))
}

func corpusFiles() []string {
	var files []string
	for _, e := range corpus() {
		files = append(files, e.File)
	}
	return files
}
