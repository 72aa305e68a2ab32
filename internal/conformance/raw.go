package conformance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// RawCase is a request the http.Client cannot send: bytes written to a TCP connection
// as they are, with what the client must get and what the backend must see.
type RawCase struct {
	Desc   string
	Config map[string]any // over the base
	// Parts are written in order; after each but the last the client waits until the
	// middleware has read what it can (see Pause).
	Parts [][]byte
	// Pause is how long to wait between parts: long enough for the server to be
	// reading the body when the next part (or the close) comes.
	Pause time.Duration
	// Close says how the client ends: "" keeps the connection until the answers are
	// read, "write" half-closes it after the last part, "full" closes it without reading.
	Close string
	// Head is set when the first request is a HEAD, whose answer has no body.
	Head bool
	// Statuses are the answers the client must get, in order (none with "full").
	Statuses []int
	// Codes are the rejection codes of those answers that come from the middleware ("" for
	// an answer that is not a JSON rejection).
	Codes []string
	// Served is how many requests reach the middleware; Forwarded how many of them the
	// backend gets, the last with ForwardedBody.
	Served, Forwarded int
	ForwardedBody     []byte
}

// RawCases returns the raw-connection cases, signed for a clock reading now.
func RawCases(now time.Time) []RawCase {
	sec := zegotest.Seconds(now)
	valid := zegotest.New("mix_stop.json", zegotest.Secret, sec).Body
	replayed := zegotest.New("mix_stop.json", zegotest.Secret, sec).Body
	chunkedBody := zegotest.New("mix_stop.json", zegotest.Secret, sec).Body
	clte := zegotest.New("mix_stop.json", zegotest.Secret, sec).Body
	post := func(body []byte, headers ...string) []byte {
		return rawRequest("POST", body, append([]string{"Content-Length: " + strconv.Itoa(len(body))}, headers...)...)
	}
	var chunked bytes.Buffer
	for _, c := range chunkedBody {
		fmt.Fprintf(&chunked, "1;ext=\"x\"\r\n%c\r\n", c)
	}
	chunked.WriteString("0\r\nX-Zego-Verified: trailer\r\nX-Zego-Event: trailer\r\n\r\n")

	return []RawCase{
		{Desc: "body shorter than its Content-Length, then the client half-closes: 400, not forwarded",
			Parts:    [][]byte{rawRequest("POST", valid[:len(valid)/2], "Content-Length: "+strconv.Itoa(len(valid)))},
			Close:    "write",
			Statuses: []int{400}, Codes: []string{"malformed_body"}, Served: 1},
		{Desc: "a client that stops sending mid-body and closes: not forwarded",
			Parts: [][]byte{rawRequest("POST", valid[:len(valid)/2], "Content-Length: "+strconv.Itoa(len(valid)))},
			Pause: 50 * time.Millisecond, Close: "full", Served: 1},
		{Desc: "a client that sends the headers, then nothing, then closes: not forwarded",
			Parts: [][]byte{rawRequest("POST", nil, "Content-Length: "+strconv.Itoa(len(valid))), {}},
			Pause: 50 * time.Millisecond, Close: "full", Served: 1},
		{Desc: "body longer than its Content-Length: the first request alone is forwarded; the rest is Go's own 400",
			Parts:    [][]byte{append(post(valid), "this is no request\r\n\r\n"...)},
			Statuses: []int{200, 400}, Codes: []string{"", ""}, Served: 1, Forwarded: 1, ForwardedBody: valid},
		{Desc: "body longer than its Content-Length, the rest a forged callback: 200, then 401",
			Parts:    [][]byte{append(post(valid), post(forged(now))...)},
			Statuses: []int{200, 401}, Codes: []string{"", "invalid_signature"}, Served: 2, Forwarded: 1, ForwardedBody: valid},
		{Desc: "a callback and its replay pipelined on one connection: 200, then 200 acknowledged, forwarded once",
			Parts:    [][]byte{append(post(replayed), post(replayed)...)},
			Statuses: []int{200, 200}, Codes: []string{"", ""}, Served: 2, Forwarded: 1, ForwardedBody: replayed},
		{Desc: "Expect: 100-continue with a Content-Length over maxBodyBytes: 413 before any body is sent",
			Parts:    [][]byte{rawRequest("POST", nil, "Content-Length: 2000000", "Expect: 100-continue")},
			Statuses: []int{413}, Codes: []string{"body_too_large"}, Served: 1},
		{Desc: "HEAD, then OPTIONS on the same connection: 405 twice, no body after the HEAD answer",
			Parts:    [][]byte{append(rawRequest("HEAD", nil), rawRequest("OPTIONS", nil)...)},
			Head:     true,
			Statuses: []int{405, 405}, Codes: []string{"", "method_not_allowed"}, Served: 2},
		{Desc: "chunked in 1-byte chunks with extensions and prefixed trailers: forwarded with a Content-Length",
			Parts:    [][]byte{append(rawRequest("POST", nil, "Transfer-Encoding: chunked"), chunked.Bytes()...)},
			Statuses: []int{200}, Codes: []string{""}, Served: 1, Forwarded: 1, ForwardedBody: chunkedBody},
		{Desc: "Content-Length and Transfer-Encoding together: the chunked framing wins, forwarded once",
			Parts: [][]byte{append(rawRequest("POST", nil, "Content-Length: 5", "Transfer-Encoding: chunked"),
				[]byte(strconv.FormatInt(int64(len(clte)), 16)+"\r\n"+string(clte)+"\r\n0\r\n\r\n")...)},
			Statuses: []int{200}, Codes: []string{""}, Served: 1, Forwarded: 1, ForwardedBody: clte},
		{Desc: "two different Content-Length values: Go's server refuses, nothing forwarded",
			Parts:    [][]byte{rawRequest("POST", valid, "Content-Length: "+strconv.Itoa(len(valid)), "Content-Length: 5")},
			Statuses: []int{400}, Codes: []string{""}},
	}
}

// rawRequest writes a request to /callback with the headers given, then body.
func rawRequest(method string, body []byte, headers ...string) []byte {
	var b bytes.Buffer
	b.WriteString(method + " /callback HTTP/1.1\r\nHost: 127.0.0.1\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// RunRaw runs RawCases, each against its own middleware.
func RunRaw(t *testing.T, build Builder) {
	n := len(RawCases(time.Now()))
	for i := 0; i < n; i++ {
		c := RawCases(time.Now())[i]
		t.Run(c.Desc, func(t *testing.T) {
			config := Config(c.Config)
			srv, g := startGuarded(t, build, config, UniqueName("raw"))
			resps := rawExchange(t, srv.URL, c)
			for j, want := range c.Statuses {
				if j >= len(resps) {
					t.Errorf("answer %d: none, want %d (%d answers)", j+1, want, len(resps))
					continue
				}
				r := resps[j]
				if r.status != want {
					t.Errorf("answer %d: status %d, want %d (body %q)", j+1, r.status, want, r.body)
				}
				if j < len(c.Codes) && r.code != c.Codes[j] {
					t.Errorf("answer %d: code %q, want %q", j+1, r.code, c.Codes[j])
				}
			}
			if len(resps) > len(c.Statuses) {
				t.Errorf("%d answers, want %d", len(resps), len(c.Statuses))
			}
			g.waitServed(t, c.Served, 10*time.Second)
			calls := srv.Backend.Calls()
			if len(calls) != c.Forwarded {
				t.Errorf("the backend got %d requests, want %d", len(calls), c.Forwarded)
			}
			if c.Forwarded > 0 && len(calls) > 0 {
				got := calls[len(calls)-1]
				if !bytes.Equal(got.Body, c.ForwardedBody) {
					t.Errorf("the backend got body %q, want %q", got.Body, c.ForwardedBody)
				}
				if got.ContentLength != int64(len(c.ForwardedBody)) || len(got.TransferEncoding) != 0 {
					t.Errorf("the backend got Content-Length %d, Transfer-Encoding %v", got.ContentLength, got.TransferEncoding)
				}
			}
			checkBounds(t, calls, config)
			g.check(t)
		})
	}
}

// rawAnswer is one answer read from a raw connection.
type rawAnswer struct {
	status int
	code   string
	body   []byte
}

// rawExchange dials the server, writes the case's parts and reads the answers, each
// within a deadline: it reads until the connection ends or as many answers as the case
// expects and one more have come.
func rawExchange(t *testing.T, url string, c RawCase) []rawAnswer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	for i, p := range c.Parts {
		if i > 0 && c.Pause > 0 {
			time.Sleep(c.Pause)
		}
		if _, err := conn.Write(p); err != nil {
			t.Fatalf("writing part %d: %v", i+1, err)
		}
	}
	switch c.Close {
	case "full":
		if c.Pause > 0 {
			time.Sleep(c.Pause)
		}
		conn.Close()
		return nil
	case "write":
		if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
	}
	var out []rawAnswer
	br := bufio.NewReader(conn)
	for i := 0; i <= len(c.Statuses); i++ {
		method := http.MethodPost
		if i == 0 && c.Head {
			method = http.MethodHead
		}
		if i == len(c.Statuses) {
			// One more answer would be one too many; wait only briefly for it.
			_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			var ne net.Error
			if i < len(c.Statuses) && !errors.Is(err, io.EOF) && !(errors.As(err, &ne) && ne.Timeout()) {
				t.Logf("reading answer %d: %v", i+1, err)
			}
			break
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Errorf("reading answer %d's body: %v", i+1, err)
		}
		a := rawAnswer{status: resp.StatusCode, body: body}
		if resp.Header.Get("Content-Type") == "application/json" {
			a.code = jsonError(body)
		}
		if i == 0 && c.Head && len(body) != 0 {
			t.Errorf("the HEAD answer has a body: %q", body)
		}
		out = append(out, a)
	}
	return out
}

// jsonError returns the "error" of a JSON rejection.
func jsonError(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return e.Error
}
