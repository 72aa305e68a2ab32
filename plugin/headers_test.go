package zegocallback

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestHeaderName(t *testing.T) {
	b := newHeaderBuilder("X-Zego-", nil, 64, 1024)
	tests := map[string]string{
		"task_id":                                "X-Zego-Task-Id",
		"appid":                                  "",
		"AppId":                                  "",
		"RoomID":                                 "X-Zego-Room-Id",
		"rtmp_urls":                              "X-Zego-Rtmp-Urls",
		"Event":                                  "",
		"EVENT":                                  "",
		"Event_Type":                             "",
		"time.stamp":                             "X-Zego-Time-Stamp",
		"TIMESTAMP":                              "",
		"APP_ID":                                 "",
		"AgentInstanceId":                        "X-Zego-Agent-Instance-Id",
		"hls_url2":                               "X-Zego-Hls-Url2",
		"a.b":                                    "X-Zego-A-B",
		"task.id":                                "X-Zego-Task-Id",
		"UPPER":                                  "X-Zego-Upper",
		"snake__double":                          "X-Zego-Snake--Double",
		"signature":                              "",
		"Signature":                              "",
		"verified":                               "",
		"Duplicate":                              "",
		"rejection":                              "",
		"":                                       "",
		"with space":                             "",
		"colon:":                                 "",
		"é":                                      "",
		"new\nline":                              "",
		strings.Repeat("a", maxFieldNameBytes+1): "",
	}
	for field, want := range tests {
		if got := headerName(b, field); got != want {
			t.Errorf("headerName(%q) = %q, want %q", field, got, want)
		}
	}
}

func TestHeaderValue(t *testing.T) {
	tests := map[string]string{
		"plain":               "plain",
		"a\r\nX-Evil: 1":      "a%0D%0AX-Evil: 1",
		"nul\x00tab\tdel\x7f": "nul%00tab%09del%7F",
		"é ünïcode":           "é ünïcode",
		"100%":                "100%",
		"PC ":                 "PC%20",
		" a b ":               "%20a b%20",
		" ":                   "%20",
	}
	for in, want := range tests {
		if got := headerValue(in); got != want {
			t.Errorf("headerValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStrip(t *testing.T) {
	b := newHeaderBuilder("X-Zego-", nil, 64, 1024)
	h := http.Header{
		"X-Zego-Verified": {"true"}, "x-zego-event": {"a"}, "X_zego_verified": {"true"}, "X-ZEGO_Event": {"a"},
		"X-Zego": {"kept: shorter than the prefix"}, "X-Zegoo-A": {"kept"}, "Content-Type": {"kept"},
	}
	stripPrefixed(b, h)
	for k := range h {
		if k != "X-Zego" && k != "X-Zegoo-A" && k != "Content-Type" {
			t.Errorf("%s was not stripped", k)
		}
	}
	if len(h) != 3 {
		t.Errorf("stripped too much: %v", h)
	}
}

func TestAnnotateBounds(t *testing.T) {
	fields := map[string]json.RawMessage{}
	for _, c := range "abcdefghij" {
		fields[string(c)] = json.RawMessage(`"v"`)
	}
	b := newHeaderBuilder("X-Zego-", nil, 3, 1024)
	for i := 0; i < 5; i++ {
		h := http.Header{}
		annotate(b, h, &callback{Fields: fields, plain: true})
		if len(h) != 3 || h.Get("X-Zego-A") == "" || h.Get("X-Zego-B") == "" || h.Get("X-Zego-C") == "" {
			t.Fatalf("over maxFields: %v, want the first three by name, every time", h)
		}
	}
	long := map[string]json.RawMessage{
		"ok":      json.RawMessage(`"` + strings.Repeat("x", 8) + `"`),
		"long":    json.RawMessage(`"` + strings.Repeat("x", 9) + `"`),
		"escaped": json.RawMessage(`"` + strings.Repeat(`\u0078`, 8) + `"`), // decodes to 8 bytes
		"array":   json.RawMessage(`["a",1]`),                               // 7 bytes of JSON
		"big":     json.RawMessage(`["aaaa","bbbb"]`),
	}
	h := http.Header{}
	annotate(newHeaderBuilder("X-Zego-", nil, 64, 8), h, &callback{Fields: long})
	if h.Get("X-Zego-Ok") == "" || h.Get("X-Zego-Escaped") != "xxxxxxxx" || len(h.Values("X-Zego-Array")) != 2 {
		t.Errorf("values within the bound are missing: %v", h)
	}
	if h.Get("X-Zego-Long") != "" || h.Get("X-Zego-Big") != "" {
		t.Errorf("values over the bound were copied: %v", h)
	}
}

func TestNameCacheIsBounded(t *testing.T) {
	b := newHeaderBuilder("X-Zego-", nil, 64, 1024)
	for i := 0; i < maxCachedNames+100; i++ {
		annotate(b, http.Header{}, &callback{Fields: map[string]json.RawMessage{"f" + strings.Repeat("x", i%200) + string(rune('a'+i%26)): json.RawMessage(`1`)}})
	}
	if n := len(b.names.Load().(map[string]*fieldName)); n > maxCachedNames {
		t.Errorf("cache holds %d names, bound %d", n, maxCachedNames)
	}
}

// TestAnnotateCollisionWithAFullCache: two fields that map to one header are both left
// out even when the cache of header names is full and learns neither.
func TestAnnotateCollisionWithAFullCache(t *testing.T) {
	b := newHeaderBuilder("X-Zego-", nil, 64, 1024)
	for i := 0; len(b.names.Load().(map[string]*fieldName)) < maxCachedNames; i++ {
		annotate(b, http.Header{}, &callback{Fields: map[string]json.RawMessage{"filler" + strings.Repeat("x", i%50) + string(rune('a'+i%26)) + string(rune('a'+i/26%26)): json.RawMessage(`"1"`)}, plain: true})
	}
	h := http.Header{}
	annotate(b, h, &callback{Fields: map[string]json.RawMessage{"room_key": json.RawMessage(`"a"`), "RoomKey": json.RawMessage(`"b"`)}, plain: true})
	if v, ok := h["X-Zego-Room-Key"]; ok {
		t.Errorf("X-Zego-Room-Key = %q with a full cache, want none", v)
	}
}
