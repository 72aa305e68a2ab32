package zegocallback

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
)

// errBodyRead is a body that could not be read to its end (the client went away).
var errBodyRead = fmt.Errorf("%w: the body could not be read", ErrMalformedBody)

// readBody reads the whole body, at most limit bytes; a body with no Content-Length
// (chunked) is read until it passes the limit.
func readBody(req *http.Request, limit int64) ([]byte, error) {
	if req.ContentLength > 0 && req.ContentLength <= limit {
		body := make([]byte, req.ContentLength)
		if _, err := io.ReadFull(req.Body, body); err != nil {
			return nil, errBodyRead
		}
		return body, nil
	}
	return readOtherBody(req, limit)
}

// readOtherBody is readBody for a body too large, empty, or of unknown length.
func readOtherBody(req *http.Request, limit int64) ([]byte, error) {
	if req.ContentLength > limit {
		return nil, fmt.Errorf("%w: Content-Length %d", ErrBodyTooLarge, req.ContentLength)
	}
	if req.ContentLength == 0 || req.Body == nil || req.Body == http.NoBody {
		return []byte{}, nil
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		return nil, errBodyRead
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, limit)
	}
	return body, nil
}

// setBody puts the bytes read back as the request's body, without trailers. A chunked
// request goes on with a Content-Length.
func setBody(req *http.Request, body []byte) {
	req.Body = io.NopCloser(bytes.NewReader(body))
	// Trailers of a chunked request could carry prefixed headers past stripPrefixed; a
	// callback has no use for them.
	req.Trailer = nil
	if req.ContentLength != int64(len(body)) || req.TransferEncoding != nil {
		setLength(req, len(body))
	}
}

func setLength(req *http.Request, n int) {
	req.ContentLength = int64(n)
	req.TransferEncoding = nil
	req.Header["Content-Length"] = []string{strconv.Itoa(n)}
}

// statusRecorder notes the status the backend answered.
type statusRecorder struct {
	http.ResponseWriter
	status   int
	returned bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

// Flush lets a streaming backend's answer through as it comes.
func (r *statusRecorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack is the underlying writer's, where it has one.
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := r.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, fmt.Errorf("zegocallback: %T cannot be hijacked", r.ResponseWriter)
}

// Unwrap gives http.ResponseController the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter {
	return r.ResponseWriter
}
