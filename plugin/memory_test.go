package zegocallback

import (
	"crypto/sha1"
	"encoding/binary"
	"runtime"
	"testing"
	"time"
)

// BenchmarkMemoryStore reports the heap each remembered callback holds in the memory
// store: its 20-byte key, its map entry and its place in the expiry queue, at 100 000 and
// 1 000 000 entries (the default nonceCapacity).
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
	now := time.Now().UnixMilli()
	for i, k := range keys {
		_, _ = claimAt(s, k, uint64(i), now+int64(i/1000), 20000)
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
