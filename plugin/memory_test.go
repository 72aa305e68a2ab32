package zegocallback

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/redistest"
)

// BenchmarkMemoryStore reports the heap each remembered callback holds in the memory
// store: its 20-byte key, its map entry, its place in the expiry queue and the backend's
// answer to its delivery (a 20-byte JSON body), at 100 000 and 1 000 000 entries (the
// default nonceCapacity).
func BenchmarkMemoryStore(b *testing.B) {
	for _, n := range []int{100000, 1000000} {
		n := n
		b.Run(fmtCount(n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.ReportMetric(bytesPerEntry(n), "bytes/callback")
			}
		})
	}
}

// bytesPerEntry fills a fresh store with n claimed callbacks and returns the live heap
// it added, per callback.
func bytesPerEntry(n int) float64 {
	keys := make([]string, n)
	var buf [8]byte
	for i := range keys {
		binary.LittleEndian.PutUint64(buf[:], uint64(i))
		sum := sha1.Sum(buf[:])
		keys[i] = string(sum[:]) // the keys the middleware makes are strings too
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s := newMemoryStore(n, 605000)
	m := &middleware{mem: s, answerBytes: 256}
	now := time.Now().UnixMilli()
	header := http.Header{"Content-Type": {"application/json"}}
	for i, k := range keys {
		cb := &callback{key: k, digest: digestOf(uint64(i)), receivedMs: now + int64(i/1000)}
		claimMemory(s, cb, s.rooms[0], 20000)
		cb.answer = &httptest.ResponseRecorder{Code: http.StatusOK, HeaderMap: header, Body: bytes.NewBufferString(`{"code":0,"msg":"o"}`)}
		cb.answered = true
		settleMemory(m, cb)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	// Before: the keys' bytes (24 each, their size class) and the slice of their headers
	// (16 each). After: the store holds the keys' bytes; the slice is gone. So the store
	// holds the difference plus 40 bytes a key.
	used := float64(after.HeapAlloc) - float64(before.HeapAlloc) + float64(n)*40
	runtime.KeepAlive(s)
	return used / float64(n)
}

func fmtCount(n int) string {
	if n >= 1000000 {
		return "1M"
	}
	return "100k"
}

// BenchmarkRedisKeyBytes reports what a remembered callback takes in a real Redis: the
// MEMORY USAGE of its key once delivered, with the backend's answer (a 20-byte JSON body)
// kept in its value, as settleRedis writes it.
func BenchmarkRedisKeyBytes(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	p := testRedisPool(b, testRedisSettings(b, srv.Addr, nil))
	answer := &httptest.ResponseRecorder{Code: http.StatusOK, HeaderMap: http.Header{"Content-Type": {"application/json"}},
		Body: bytes.NewBufferString(`{"code":0,"msg":"o"}`)}
	for i := 0; i < b.N; i++ {
		key := redisTestKey("bytes" + strconv.Itoa(i))
		if _, _, err := claimRedis(p, key, testDigest, 20000, 605000); err != nil {
			b.Fatal(err)
		}
		if err := confirmRedis(p, key, testDigest, rememberedAnswer(answer, 256, true), 605000); err != nil {
			b.Fatal(err)
		}
		n, err := srv.Do("MEMORY", "USAGE", p.s.keyPrefix+hex.EncodeToString([]byte(key)))
		if err != nil {
			b.Fatal(err)
		}
		used, _ := n.(int64)
		b.ReportMetric(float64(used), "bytes/key")
	}
}
