package zegocallback

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestLineLimiter: a reason writes logBurst lines at once, then one a second, and the
// next line written says how many were not; another reason is written the first time
// it comes, whatever floods the first; each level goes to its own writer.
func TestLineLimiter(t *testing.T) {
	now := time.Unix(1700000000, 0)
	var errs, debug bytes.Buffer
	l := newLineLimiter("zego@file")
	l.now = func() time.Time { return now }
	l.out[levelError], l.out[levelDebug] = &errs, &debug
	lines := func(b *bytes.Buffer) []string {
		s := strings.TrimSpace(b.String())
		if s == "" {
			return nil
		}
		return strings.Split(s, "\n")
	}

	for i := 0; i < 1000; i++ {
		l.printf(levelError, "invalid_signature", "rejected code=invalid_signature n=%d", i)
	}
	if got := lines(&errs); len(got) != logBurst || got[0] != "zegocallback: middleware=zego@file rejected code=invalid_signature n=0" {
		t.Fatalf("a flood at one instant wrote %d lines, want %d: %q", len(got), logBurst, got)
	}
	l.printf(levelError, "stale_timestamp", "rejected code=stale_timestamp")
	if got := lines(&errs); len(got) != logBurst+1 || !strings.Contains(got[logBurst], "stale_timestamp") {
		t.Fatalf("another reason was not written at once: %q", got)
	}
	l.printf(levelDebug, "duplicate", "acknowledged code=duplicate")
	if got := lines(&debug); len(got) != 1 || len(lines(&errs)) != logBurst+1 {
		t.Fatalf("a DEBUG line went astray: debug %q", got)
	}

	// Half a second later, nothing more; a second after the flood, one line, with the count.
	now = now.Add(500 * time.Millisecond)
	l.printf(levelError, "invalid_signature", "rejected code=invalid_signature n=late")
	now = now.Add(500 * time.Millisecond)
	l.printf(levelError, "invalid_signature", "rejected code=invalid_signature n=next")
	l.printf(levelError, "invalid_signature", "rejected code=invalid_signature n=again")
	got := lines(&errs)
	if len(got) != logBurst+2 {
		t.Fatalf("a second on, %d lines, want %d: %q", len(got), logBurst+2, got)
	}
	if want := "n=next (996 lines not written in the last 1.0 s: invalid_signature)"; !strings.HasSuffix(got[logBurst+1], want) {
		t.Errorf("the line after the flood: %q, want it to end %q", got[logBurst+1], want)
	}

	// A flood that goes on writes one line a second; a quiet stretch gives the burst back.
	errs.Reset()
	for s := 0; s < 10; s++ {
		now = now.Add(time.Second)
		for i := 0; i < 100; i++ {
			l.printf(levelError, "invalid_signature", "rejected")
		}
	}
	if n := len(lines(&errs)); n != 10 {
		t.Errorf("10 s of flood wrote %d lines, want 10", n)
	}
	errs.Reset()
	now = now.Add(time.Minute)
	for i := 0; i < 100; i++ {
		l.printf(levelError, "invalid_signature", "rejected")
	}
	if n := len(lines(&errs)); n != logBurst {
		t.Errorf("after a quiet minute, %d lines, want %d", n, logBurst)
	}
}

// TestLineLimiterClockBack: a clock set back does not silence a reason for as long.
func TestLineLimiterClockBack(t *testing.T) {
	now := time.Unix(1700000000, 0)
	var errs bytes.Buffer
	l := newLineLimiter("zego@file")
	l.now = func() time.Time { return now }
	l.out[levelError] = &errs
	for i := 0; i < 2*logBurst; i++ {
		l.printf(levelError, "stale_timestamp", "line")
	}
	now = now.Add(-time.Hour)
	l.printf(levelError, "stale_timestamp", "line")
	now = now.Add(time.Second)
	l.printf(levelError, "stale_timestamp", "after")
	if !strings.Contains(errs.String(), "after") {
		t.Errorf("a second after the clock went back an hour, the reason writes nothing:\n%s", errs.String())
	}
}
