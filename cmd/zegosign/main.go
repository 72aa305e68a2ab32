// Command zegosign signs a ZEGO callback body the way ZEGO does, with a fresh timestamp
// and nonce, and prints it or POSTs it to a URL: for operators testing their own
// deployment of the middleware (or any ZEGO callback endpoint).
//
//	go run ./cmd/zegosign -secret-file ./secret                      # print a signed mix_start
//	go run ./cmd/zegosign -url http://127.0.0.1:8080/zego/callback   # send it, print the answer
//	go run ./cmd/zegosign -body my-callback.json -url ...            # your own body
//	cat body.json | go run ./cmd/zegosign -body - -url ...
//
// The secret comes from -secret, -secret-file or $ZEGO_CALLBACK_SECRET.
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	zegocallback "github.com/zegocallback/traefik-zego-callback/plugin"
)

// main exits 0 when the body was printed or its POST got a 2xx answer, 1 otherwise, so
// that the tool serves as a smoke test of a deployment; -h prints the usage and exits 0.
func main() {
	err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, time.Now())
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errNot2xx):
		os.Exit(1) // the answer is printed already
	default:
		fmt.Fprintln(os.Stderr, "zegosign:", err)
		os.Exit(1)
	}
}

// errNot2xx is run's error when the POST's answer is not a 2xx: the middleware refused
// the callback, or the backend failed.
var errNot2xx = errors.New("the answer is not a 2xx")

type options struct {
	body, secret, secretFile, url, contentType, timestamp, nonce string
	millis, verbose                                              bool
	timeout                                                      time.Duration
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer, now time.Time) error {
	fs := flag.NewFlagSet("zegosign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.body, "body", "", "callback body: a file, - for stdin; empty for the built-in mix_start example")
	fs.StringVar(&o.secret, "secret", "", "the CallbackSecret (prefer -secret-file or $ZEGO_CALLBACK_SECRET: flags show in ps)")
	fs.StringVar(&o.secretFile, "secret-file", "", "a file whose first non-empty, non-# line is the CallbackSecret")
	fs.StringVar(&o.url, "url", "", "POST the signed body here and print the answer; without it, print the body")
	fs.StringVar(&o.contentType, "content-type", "", "Content-Type of the POST (default: by the body's kind)")
	fs.StringVar(&o.timestamp, "timestamp", "", "use this timestamp instead of now (to try a stale one)")
	fs.StringVar(&o.nonce, "nonce", "", "use this nonce instead of a random one (to try a replay)")
	fs.BoolVar(&o.millis, "ms", false, "timestamp in milliseconds, as AI Agent and ASR callbacks have it")
	fs.BoolVar(&o.verbose, "v", false, "with -url, print the request's headers and body too")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "HTTP timeout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	secret, err := readSecret(o)
	if err != nil {
		return err
	}
	body, err := readBody(o.body, stdin)
	if err != nil {
		return err
	}
	ts := o.timestamp
	if ts == "" {
		ts = strconv.FormatInt(now.Unix(), 10)
		if o.millis {
			ts = strconv.FormatInt(now.UnixMilli(), 10)
		}
	}
	nonce := o.nonce
	if nonce == "" {
		if nonce, err = randomNonce(); err != nil {
			return err
		}
	}
	signed, kind, err := Sign(body, secret, ts, nonce)
	if err != nil {
		return err
	}
	if o.url == "" {
		_, err = stdout.Write(append(signed, '\n'))
		return err
	}
	ct := o.contentType
	if ct == "" {
		ct = map[string]string{"json": "application/json", "form": "application/x-www-form-urlencoded"}[kind]
	}
	return post(o, signed, ct, stdout)
}

// Sign sets the body's timestamp and nonce, and its signature over them with secret. A
// JSON object keeps its fields' spelling (timestamp or Timestamp) and kinds (a number
// stays a number); a form keeps its keys. It returns the signed body and its kind.
func Sign(body []byte, secret, timestamp, nonce string) ([]byte, string, error) {
	sig := zegocallback.Sign(secret, timestamp, nonce)
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		out, err := signJSON(trimmed, timestamp, nonce, sig)
		return out, "json", err
	}
	values, err := url.ParseQuery(string(trimmed))
	if err != nil {
		return nil, "", fmt.Errorf("the body is neither a JSON object nor a form: %w", err)
	}
	for _, f := range [][2]string{{"timestamp", timestamp}, {"nonce", nonce}, {"signature", sig}} {
		name := spelling(f[0], func(k string) bool { _, ok := values[k]; return ok })
		values.Set(name, f[1])
	}
	return []byte(values.Encode()), "form", nil
}

func signJSON(body []byte, timestamp, nonce, sig string) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var fields map[string]any
	if err := dec.Decode(&fields); err != nil {
		return nil, fmt.Errorf("the body is not a JSON object: %w", err)
	}
	for _, f := range [][2]string{{"timestamp", timestamp}, {"nonce", nonce}, {"signature", sig}} {
		name := spelling(f[0], func(k string) bool { _, ok := fields[k]; return ok })
		if _, isNumber := fields[name].(json.Number); isNumber && f[0] != "signature" {
			fields[name] = json.Number(f[1])
		} else {
			fields[name] = f[1]
		}
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(fields); err != nil {
		return nil, err
	}
	return bytes.TrimRight(out.Bytes(), "\n"), nil
}

// spelling returns the Pascal-case name (Timestamp) when the body uses it, else the
// lower-case one.
func spelling(lower string, has func(string) bool) string {
	pascal := strings.ToUpper(lower[:1]) + lower[1:]
	if !has(lower) && has(pascal) {
		return pascal
	}
	return lower
}

func readSecret(o options) (string, error) {
	switch {
	case o.secret != "":
		return o.secret, nil
	case o.secretFile != "":
		b, err := os.ReadFile(o.secretFile)
		if err != nil {
			return "", err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				return line, nil
			}
		}
		return "", fmt.Errorf("%s holds no secret", o.secretFile)
	case os.Getenv("ZEGO_CALLBACK_SECRET") != "":
		return strings.TrimSpace(os.Getenv("ZEGO_CALLBACK_SECRET")), nil
	}
	return "", errors.New("no secret: use -secret-file, $ZEGO_CALLBACK_SECRET or -secret")
}

func readBody(name string, stdin io.Reader) ([]byte, error) {
	switch name {
	case "":
		return []byte(sampleBody), nil
	case "-":
		return io.ReadAll(stdin)
	}
	return os.ReadFile(name)
}

// sampleBody is ZEGO's documented stream-mixing-started callback, signed when -body is
// not given; Sign fills its timestamp, nonce and signature.
const sampleBody = `{"appid":"111111","channel_id":"2222","event":"mix_start",
"hdl_url":"http://hdl.wsdemo.zego.im/zegodemo/aaa.flv",
"hdl_urls":["http://hdl.wsdemo.zego.im/zegodemo/aaa.flv","http://testplay.aliyun.zego.im/livestream/aaa.flv"],
"hls_url":"http://hls.wsdemo.zego.im/zegodemo/aaa/playlist.m3u8",
"hls_urls":["http://hls.wsdemo.zego.im/zegodemo/aaa/playlist.m3u8","http://testplay.aliyun.zego.im/livestream/aaa.m3u8"],
"mix_stream_alias":"aaa","mix_url":"rtmp://rtmp.wsdemo.zego.im/zegodemo/aaa","nonce":"","publish_id":"abc",
"rtmp_url":"rtmp://rtmp.wsdemo.zego.im/zegodemo/aaa",
"rtmp_urls":["rtmp://rtmp.wsdemo.zego.im/zegodemo/aaa","rtmp://testplay.aliyun.zego.im/livestream/aaa"],
"seq":"123","signature":"","stream_alias":"aaa","task_id":"111111:1111","timestamp":""}`

// randomNonce is 19 random digits, as ZEGO's nonces look (up to 9999999999999999999,
// more than an int64 holds).
func randomNonce() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(9e18))
	if err != nil {
		return "", err
	}
	return n.Add(n, big.NewInt(1e18)).String(), nil
}

func post(o options, body []byte, contentType string, stdout io.Writer) error {
	req, err := http.NewRequest(http.MethodPost, o.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	if o.verbose {
		fmt.Fprintf(stdout, "> POST %s\n> Content-Type: %s\n> %s\n\n", o.url, contentType, body)
	}
	resp, err := (&http.Client{Timeout: o.timeout}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s\n", resp.Proto, resp.Status)
	for _, k := range []string{"Content-Type", "X-Zego-Duplicate", "X-Zego-Rejection"} {
		if v := resp.Header.Get(k); v != "" {
			fmt.Fprintf(stdout, "%s: %s\n", k, v)
		}
	}
	fmt.Fprintf(stdout, "\n%s\n", bytes.TrimRight(answer, "\n"))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%w: %s", errNot2xx, resp.Status)
	}
	return nil
}
