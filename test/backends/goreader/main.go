// A Go backend behind the middleware, for the end-to-end tests: it reads each request the
// ways Go backends do (encoding/json into a struct and into a map, r.ParseForm and
// FormValue, gin's ShouldBind) and answers what it read as JSON, for the test to hold
// against the X-Zego-* headers the middleware wrote.
//
// Run with: goreader <port>, built from the test module (go build ./backends/goreader); it prints
// "listening" once it serves.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/gin-gonic/gin"
)

// rtcCallback is how a Go backend declares an RTC callback: one field per concept, the
// names as ZEGO's documentation writes them. encoding/json matches a key to a field
// without regard to case (Unicode's simple folding), and the last key that matches wins.
type rtcCallback struct {
	Event     any `json:"event" form:"event"`
	AppID     any `json:"appid" form:"appid"`
	Timestamp any `json:"timestamp" form:"timestamp"`
	Nonce     any `json:"nonce" form:"nonce"`
	Signature any `json:"signature" form:"signature"`
}

// agentCallback is the shape of the callbacks whose fields are capitalised (AI Agent's).
type agentCallback struct {
	EventType any `json:"EventType" form:"EventType"`
	AppID     any `json:"AppId" form:"AppId"`
	Timestamp any `json:"Timestamp" form:"Timestamp"`
	Nonce     any `json:"Nonce" form:"Nonce"`
	Signature any `json:"Signature" form:"Signature"`
	// SignatureNonce is mini-game's nonce.
	SignatureNonce any `json:"SignatureNonce" form:"SignatureNonce"`
}

func (c rtcCallback) fields() map[string]any {
	return present(map[string]any{"event": c.Event, "appid": c.AppID, "timestamp": c.Timestamp, "nonce": c.Nonce, "signature": c.Signature})
}

func (c agentCallback) fields() map[string]any {
	return present(map[string]any{"EventType": c.EventType, "AppId": c.AppID, "Timestamp": c.Timestamp, "Nonce": c.Nonce, "Signature": c.Signature, "SignatureNonce": c.SignatureNonce})
}

// present drops the fields a reading did not find.
func present(m map[string]any) map[string]any {
	for k, v := range m {
		if v == nil || v == "" {
			delete(m, k)
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// spellings are the named fields' spellings a backend might ask a form for.
var spellings = []string{"event", "Event", "EventType", "event_type", "appid", "Appid", "AppId", "AppID", "app_id",
	"timestamp", "Timestamp", "nonce", "Nonce", "SignatureNonce", "signature", "Signature"}

func decodeInto(body []byte, v any) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	return dec.Decode(v) == nil
}

func report(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	headers := map[string]string{}
	for name, values := range r.Header {
		if strings.HasPrefix(strings.ToLower(name), "x-zego") {
			headers[name] = strings.Join(values, ", ")
		}
	}
	readings := map[string]any{}
	var rtc rtcCallback
	if decodeInto(body, &rtc) {
		readings["struct"] = rtc.fields()
	}
	var agent agentCallback
	if decodeInto(body, &agent) {
		readings["struct_agent"] = agent.fields()
	}
	var m map[string]any
	if decodeInto(body, &m) {
		readings["map"] = present(m)
	}
	// net/http's form: FormValue reads the body's form first, then the query string; with
	// another Content-Type, the query string only.
	fr := r.Clone(r.Context())
	fr.Body = io.NopCloser(bytes.NewReader(body))
	form := map[string]any{}
	for _, s := range spellings {
		if v := fr.FormValue(s); v != "" {
			form[s] = v
		}
	}
	readings["formvalue"] = present(form)
	// gin: ShouldBind picks JSON or form binding by the Content-Type.
	for name, target := range map[string]interface{ fields() map[string]any }{"gin": &rtcCallback{}, "gin_agent": &agentCallback{}} {
		gr := r.Clone(r.Context())
		gr.Body = io.NopCloser(bytes.NewReader(body))
		c, _ := gin.CreateTestContext(httptestRecorder{})
		c.Request = gr
		if c.ShouldBind(target) == nil {
			readings[name] = target.fields()
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"backend": "go", "headers": headers, "readings": readings})
}

// httptestRecorder is a ResponseWriter that drops what gin writes.
type httptestRecorder struct{}

func (httptestRecorder) Header() http.Header         { return http.Header{} }
func (httptestRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (httptestRecorder) WriteHeader(int)             {}

func main() {
	gin.SetMode(gin.ReleaseMode)
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("listening")
	_ = http.Serve(ln, http.HandlerFunc(report))
}
