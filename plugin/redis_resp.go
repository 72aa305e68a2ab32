package zegocallback

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// RESP2, the Redis protocol, as far as the store needs it: commands are arrays of bulk
// strings; the replies read are simple strings, errors, integers and bulk strings.

// redisMaxBulk is the longest bulk reply read; the store's values are a few dozen bytes,
// so a longer one is not ours and the connection is dropped rather than read into memory.
const redisMaxBulk = 1 << 16

// redisNil is the kind readRedisReply gives a nil bulk string ($-1): a key that does not
// exist, or a SET NX or XX that did nothing.
const redisNil = '_'

// errRedisProtocol is a reply that is not what RESP2 allows, or not what the store
// expects: the connection is dropped.
var errRedisProtocol = errors.New("malformed reply")

// The store's commands are each encoded with one compiled call, not a loop (see
// DESIGN.md).

// redisSetPXCommand encodes SET key value PX ttl.
func redisSetPXCommand(key, value, ttl string) []byte {
	return fmt.Appendf(nil, "*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$2\r\nPX\r\n$%d\r\n%s\r\n",
		len(key), key, len(value), value, len(ttl), ttl)
}

// redisEvalCommand encodes EVAL script 1 key arg.
func redisEvalCommand(script, key, arg string) []byte {
	return fmt.Appendf(nil, "*5\r\n$4\r\nEVAL\r\n$%d\r\n%s\r\n$1\r\n1\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n",
		len(script), script, len(key), key, len(arg), arg)
}

// appendRedisCommand encodes a command as RESP: an array of bulk strings. It serves
// the handshake, encoded once per settings.
func appendRedisCommand(b []byte, args ...string) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	return b
}

// readRedisReply reads one RESP2 reply that is not an array: a simple string ('+'), an
// error ('-', the text being Redis's message), an integer (':', its digits), a bulk
// string ('$') or a nil bulk string (redisNil). An error return means the connection
// can no longer be trusted.
func readRedisReply(r *bufio.Reader) (byte, string, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return 0, "", fmt.Errorf("%w: a line longer than %d bytes", errRedisProtocol, r.Size())
		}
		return 0, "", err
	}
	n := len(line)
	if n < 3 || line[n-2] != '\r' {
		return 0, "", fmt.Errorf("%w: %q", errRedisProtocol, line)
	}
	kind := line[0]
	switch kind {
	case '-':
		// An error's text goes into log lines: control characters escaped, as Go quotes
		// them.
		text := strconv.Quote(string(line[1 : n-2]))
		return kind, text[1 : len(text)-1], nil
	case '+', ':':
		return kind, string(line[1 : n-2]), nil
	case '$':
		size, err := strconv.Atoi(string(line[1 : n-2]))
		if err != nil || size < -1 || size > redisMaxBulk {
			return 0, "", fmt.Errorf("%w: bulk length %q", errRedisProtocol, line[1:n-2])
		}
		if size == -1 {
			return redisNil, "", nil
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return 0, "", err
		}
		if buf[size] != '\r' || buf[size+1] != '\n' {
			return 0, "", fmt.Errorf("%w: bulk string not ended by CRLF", errRedisProtocol)
		}
		return '$', string(buf[:size]), nil
	}
	return 0, "", fmt.Errorf("%w: unexpected reply type %q", errRedisProtocol, kind)
}

// redisClaimCommand encodes EVAL redisClaimScript 1 key value digest inFlight ttl.
func redisClaimCommand(key, value, digest, inFlight, ttl string) []byte {
	return fmt.Appendf(nil, "*8\r\n$4\r\nEVAL\r\n$%d\r\n%s\r\n$1\r\n1\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n",
		len(redisClaimScript), redisClaimScript, len(key), key, len(value), value, len(digest), digest, len(inFlight), inFlight, len(ttl), ttl)
}

// redisMaxItems bounds an array reply's length: CLUSTER SLOTS lists at most one range
// per slot, and each range a few nodes.
const redisMaxItems = 16384

// readRedisArray reads an array reply's header, *<n>, and returns n, or -1 for a nil
// array. Its items follow, each read with readRedisReply, readRedisArray or
// skipRedisValue. An error reply is returned as an error carrying its text.
func readRedisArray(r *bufio.Reader) (int, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return 0, fmt.Errorf("%w: a line longer than %d bytes", errRedisProtocol, r.Size())
		}
		return 0, err
	}
	n := len(line)
	if n < 3 || line[n-2] != '\r' {
		return 0, fmt.Errorf("%w: %q", errRedisProtocol, line)
	}
	if line[0] == '-' {
		text := strconv.Quote(string(line[1 : n-2])) // as readRedisReply gives it
		return 0, fmt.Errorf("%w: %s", errRedisErrorReply, text[1:len(text)-1])
	}
	if line[0] != '*' {
		return 0, fmt.Errorf("%w: %q where an array was expected", errRedisProtocol, line[0])
	}
	size, err := strconv.Atoi(string(line[1 : n-2]))
	if err != nil || size < -1 || size > redisMaxItems {
		return 0, fmt.Errorf("%w: array length %q", errRedisProtocol, line[1:n-2])
	}
	return size, nil
}

// errRedisErrorReply is an error reply where readRedisArray expected an array.
var errRedisErrorReply = errors.New("error reply")

// skipRedisValue reads one value of any type and forgets it: an array's items too, down
// to depth levels of arrays.
func skipRedisValue(r *bufio.Reader, depth int) error {
	b, err := r.Peek(1)
	if err != nil {
		return err
	}
	if b[0] != '*' {
		_, _, err = readRedisReply(r)
		return err
	}
	if depth == 0 {
		return fmt.Errorf("%w: arrays nested too deep", errRedisProtocol)
	}
	n, err := readRedisArray(r)
	for i := 0; i < n && err == nil; i++ {
		err = skipRedisValue(r, depth-1)
	}
	return err
}
