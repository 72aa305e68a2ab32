package zegocallback

import (
	"bufio"
	"strings"
	"testing"
)

func TestReadRedisReply(t *testing.T) {
	for _, tc := range []struct {
		in, text string
		kind     byte
		err      bool
	}{
		{in: "+OK\r\n", kind: '+', text: "OK"},
		{in: "-ERR wrong\r\n", kind: '-', text: "ERR wrong"},
		{in: ":42\r\n", kind: ':', text: "42"},
		{in: "$9\r\ndelivered\r\n", kind: '$', text: "delivered"},
		{in: "$0\r\n\r\n", kind: '$', text: ""},
		{in: "$-1\r\n", kind: redisNil},
		{in: "$4\r\na\r\nb\r\n", kind: '$', text: "a\r\nb"},
		{in: "*1\r\n$1\r\na\r\n", err: true},
		{in: "+OK\n", err: true},
		{in: "$5\r\nabc\r\n", err: true},
		{in: "$3\r\nabcde", err: true},
		{in: "$x\r\n", err: true},
		{in: "$-2\r\n", err: true},
		{in: "$99999999\r\n", err: true},
		{in: "+" + strings.Repeat("a", 5000) + "\r\n", err: true},
		{in: "", err: true},
	} {
		kind, text, err := readRedisReply(bufio.NewReader(strings.NewReader(tc.in)))
		if (err != nil) != tc.err || kind != tc.kind && !tc.err || text != tc.text && !tc.err {
			t.Errorf("readRedisReply(%q) = %q, %q, %v", tc.in, kind, text, err)
		}
	}
	if got := string(appendRedisCommand(nil, "SET", "k", "")); got != "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n" {
		t.Errorf("appendRedisCommand = %q", got)
	}
	for _, tc := range []struct{ got, want []byte }{
		{redisSetPXCommand("zego-callback:00ff", "d:ab", "60000"), appendRedisCommand(nil, "SET", "zego-callback:00ff", "d:ab", "PX", "60000")},
		{redisEvalCommand(redisForgetScript, "k", "i:ab-1:cd"), appendRedisCommand(nil, "EVAL", redisForgetScript, "1", "k", "i:ab-1:cd")},
		{redisClaimCommand("k", "i:ab-1:cd", "cd", "20000", "605000"), appendRedisCommand(nil, "EVAL", redisClaimScript, "1", "k", "i:ab-1:cd", "cd", "20000", "605000")},
		{redisClaimCommand("", "", "", "", ""), appendRedisCommand(nil, "EVAL", redisClaimScript, "1", "", "", "", "", "")},
	} {
		if string(tc.got) != string(tc.want) {
			t.Errorf("command %q, want %q", tc.got, tc.want)
		}
	}
}
