package zegocallback

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Reading a callback's body: whole, within maxBodyBytes, with memory that follows the
// bytes received, never the length a client declares; and the headers that say what
// the bytes are.

// readChunk is the most memory a body gets before its bytes arrive: a declared length
// up to it is allocated at once (every genuine callback), a longer one grows as the
// bytes come, so that clients declaring large bodies and sending nothing hold little.
const readChunk = 64 << 10

// errBodyRead is a body that could not be read to its end (the client went away).
var errBodyRead = fmt.Errorf("%w: the body could not be read", errMalformedBody)

// readBody reads the whole body, at most limit bytes.
func readBody(req *http.Request, limit int64) ([]byte, error) {
	if n := req.ContentLength; n > 0 && n <= limit && n <= readChunk {
		body := make([]byte, n)
		if _, err := io.ReadFull(req.Body, body); err != nil {
			return nil, errBodyRead
		}
		return body, nil
	}
	return readOtherBody(req, limit)
}

// readOtherBody is readBody for a body too large, empty, longer than readChunk or of
// unknown length (chunked): it reads into a buffer that doubles as it fills, from
// readChunk at most, until the body ends or passes the limit.
func readOtherBody(req *http.Request, limit int64) ([]byte, error) {
	if req.ContentLength > limit {
		return nil, fmt.Errorf("%w: Content-Length %d", errBodyTooLarge, req.ContentLength)
	}
	if req.ContentLength == 0 || req.Body == nil || req.Body == http.NoBody {
		return []byte{}, nil
	}
	size := int64(readChunk)
	if req.ContentLength > 0 && req.ContentLength < size {
		size = req.ContentLength
	}
	body := make([]byte, 0, size)
	for {
		if len(body) == cap(body) {
			// One byte past the limit tells a body that is too large.
			grown := int64(2 * cap(body))
			if grown > limit+1 {
				grown = limit + 1
			}
			if req.ContentLength > 0 && grown > req.ContentLength+1 {
				grown = req.ContentLength + 1
			}
			body = append(make([]byte, 0, grown), body...)
		}
		n, err := req.Body.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		if int64(len(body)) > limit {
			return nil, fmt.Errorf("%w: more than %d bytes", errBodyTooLarge, limit)
		}
		if err == io.EOF {
			return body, nil
		}
		if err != nil {
			return nil, errBodyRead
		}
	}
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

// errUnsupportedMedia is a body whose headers say it is not the bytes it holds: encoded
// (compressed), or multipart. ZEGO sends neither, and a backend would read something
// else from it than the middleware.
var errUnsupportedMedia = fmt.Errorf("%w: Content-Encoding or a multipart Content-Type", errUnsupportedMediaType)

// errCharset is a Content-Type naming a charset other than UTF-8 (charsetUTF8).
var errCharset = fmt.Errorf("%w: a charset other than UTF-8", errUnsupportedMediaType)

// bodyHeaders checks the headers that say what the body's bytes are, and reports
// whether its Content-Type is a form's: a JSON body sent so is also read as a form (see
// formReadingNames).
func bodyHeaders(h http.Header) (bool, error) {
	for _, v := range h["Content-Encoding"] {
		if !strings.EqualFold(strings.TrimSpace(v), "identity") {
			return false, errUnsupportedMedia
		}
	}
	types := h["Content-Type"]
	if len(types) == 1 && types[0] == "application/json" {
		return false, nil
	}
	if len(types) == 0 {
		return true, nil // Rack reads a POST without a Content-Type as a form
	}
	// Anywhere in the value, whatever surrounds it: readers trim different characters
	// (Node's trim drops a no-break space that Go's keeps).
	form := false
	for _, v := range types {
		v = strings.ToLower(v)
		if strings.Contains(v, "multipart/") {
			return false, errUnsupportedMedia
		}
		if otherMediaType(v) {
			return false, errOtherMedia
		}
		if !charsetUTF8(v) {
			return false, errCharset
		}
		if strings.Contains(v, "x-www-form-urlencoded") || strings.Contains(v, "x-url-encoded") || emptyMediaType(v) {
			form = true
		}
	}
	return form, nil
}

// errOtherMedia is a body sent as a type a common backend decodes as neither JSON nor a
// form: gin's ShouldBind and echo's Bind pick their decoder by the Content-Type, and
// would read the event of a YAML, TOML or XML document that the middleware read as a
// form holding another one.
var errOtherMedia = fmt.Errorf("%w: a Content-Type that backends decode as XML, YAML, TOML, MessagePack, Protocol Buffers or CBOR; ZEGO sends JSON or a form", errUnsupportedMediaType)

// otherMediaTypes are the parts of a Content-Type value (in lower case) that name such a
// type, wherever they stand (application/yaml, text/xml, application/vnd.x+xml).
var otherMediaTypes = []string{"xml", "yaml", "toml", "msgpack", "protobuf", "cbor"}

func otherMediaType(v string) bool {
	for _, t := range otherMediaTypes {
		if strings.Contains(v, t) {
			return true
		}
	}
	return false
}

// charsetUTF8 reports whether every charset a Content-Type value (in lower case) names is
// UTF-8. A backend decodes the body by it (Express's json() and urlencoded(), Django's
// forms; Python's json.loads and Jackson read UTF-16 and UTF-32 from the bytes too,
// which the general reading refuses as NUL bytes): UTF-16 or UTF-7 would make it read
// another text than the middleware read.
func charsetUTF8(v string) bool {
	for i := strings.Index(v, "charset"); i >= 0; i = strings.Index(v, "charset") {
		v = strings.TrimLeft(v[i+len("charset"):], " \t")
		if !strings.HasPrefix(v, "=") {
			return false
		}
		v = strings.TrimLeft(v[1:], " \t")
		v = strings.TrimPrefix(v, `"`)
		end := strings.IndexAny(v, "\"; \t,")
		if end < 0 {
			end = len(v)
		}
		if name := v[:end]; name != "utf-8" && name != "utf8" {
			return false
		}
		v = v[end:]
	}
	return true
}

// emptyMediaType reports whether a Content-Type value names no media type (";", " ,x"):
// Rack reads the body of a POST without one as a form, as it does one without the header.
func emptyMediaType(v string) bool {
	if i := strings.IndexAny(v, ";,"); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v) == ""
}
