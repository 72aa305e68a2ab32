package zegocallback

import (
	"fmt"
	"io"
	"log"
	"sync"
	"time"
)

// The middleware's log lines. Traefik shows what a plugin writes through the log package
// at its ERROR level and what it prints to standard output at DEBUG, each inside
// Traefik's own format: a refused callback, a replay store that fails and reportOnly's
// findings are errors; an acknowledged duplicate (ZEGO's ordinary retry) and the news
// that a file was read again are not.
//
// A flood must not fill a disk: each middleware writes at most logBurst lines for one
// reason at once, then one a second, the next line that is written saying how many were
// not. Every request refused before its signature held is one reason (reasonUnverified),
// whatever its code, so that forgeries of every kind share one bound; past the signature,
// each rejection code is a reason, and a few of the middleware's own are: a reason a
// genuine callback meets (a stale timestamp, the store) is written the first time it
// comes, whatever floods another.

// The levels a line is written at.
const (
	levelError = iota // the log package's writer: Traefik's ERROR
	levelDebug        // standard output: Traefik's DEBUG
)

const (
	logBurst   = 5    // lines one reason may write at once
	logEveryMs = 1000 // then one per this many milliseconds
)

// reasonUnverified is the reason of every request refused before its signature held.
const reasonUnverified = "requests refused before their signature was checked"

// lineLimiter bounds the lines of one middleware, by reason. Every instance of a
// middleware (one per router, again at each reload) shares its limiter (see
// lineLimiters).
type lineLimiter struct {
	name    string // the middleware's name
	mu      sync.Mutex
	reasons map[string]*reasonLines
	now     func() time.Time
	out     [2]io.Writer // by level; nil writes where Traefik reads (tests set them)
}

// reasonLines is what one reason may still write: allowance lines now, one more each
// logEveryMs after refilledMs, up to logBurst; suppressed lines were not written since
// sinceMs.
type reasonLines struct {
	allowance  int
	refilledMs int64
	suppressed int
	sinceMs    int64
}

func newLineLimiter(name string) *lineLimiter {
	return &lineLimiter{name: name, reasons: make(map[string]*reasonLines), now: time.Now}
}

// printf writes one line about reason at level, "zegocallback: middleware=<name> " then
// the text, unless the reason has written its share.
func (l *lineLimiter) printf(level int, reason, format string, args ...any) {
	note := lineAllowed(l, reason, l.now().UnixMilli())
	if note == lineSuppressed {
		return
	}
	writeLine(l, level, fmt.Sprintf(format, args...)+note)
}

// lineSuppressed is lineAllowed's answer for a line not to write.
const lineSuppressed = "\x00"

// lineAllowed says whether a line about reason may be written at nowMs (0 for now):
// lineSuppressed when not, else what the line ends with, the count of the lines not
// written since the last one ("" for none). A plain function, called before a line is
// built, whose usual answer under a flood, a reason whose share is spent, takes one look
// (DESIGN.md); the rest is lineAllowedSlowly's.
func lineAllowed(l *lineLimiter, reason string, nowMs int64) string {
	l.mu.Lock()
	if r := l.reasons[reason]; r != nil && r.suppressed > 0 && nowMs > r.refilledMs && nowMs < r.refilledMs+logEveryMs {
		r.suppressed++
		l.mu.Unlock()
		return lineSuppressed
	}
	l.mu.Unlock()
	return lineAllowedSlowly(l, reason, nowMs)
}

// lineAllowedSlowly is lineAllowed when its one look did not decide.
func lineAllowedSlowly(l *lineLimiter, reason string, nowMs int64) string {
	if nowMs == 0 {
		nowMs = l.now().UnixMilli()
	}
	l.mu.Lock()
	r := l.reasons[reason]
	if r == nil {
		r = &reasonLines{allowance: logBurst, refilledMs: nowMs}
		l.reasons[reason] = r
	}
	if nowMs < r.refilledMs {
		r.refilledMs = nowMs // the clock was set back
	}
	if gained := (nowMs - r.refilledMs) / logEveryMs; gained > 0 {
		r.allowance += int(gained)
		r.refilledMs += gained * logEveryMs
		if r.allowance >= logBurst {
			r.allowance = logBurst
			r.refilledMs = nowMs
		}
	}
	if r.allowance == 0 {
		if r.suppressed == 0 {
			r.sinceMs = nowMs
		}
		r.suppressed++
		l.mu.Unlock()
		return lineSuppressed
	}
	r.allowance--
	note := ""
	if r.suppressed > 0 {
		note = fmt.Sprintf(" (%d lines not written in the last %.1f s: %s)", r.suppressed, float64(nowMs-r.sinceMs)/1000, reason)
		r.suppressed = 0
	}
	l.mu.Unlock()
	return note
}

// writeLine writes "zegocallback: middleware=<name> <text>" at level.
func writeLine(l *lineLimiter, level int, text string) {
	line := "zegocallback: middleware=" + l.name + " " + text
	w := l.out[level]
	switch {
	case w != nil:
	case level == levelError:
		w = log.Writer()
	case debugOut != nil:
		w = debugOut
	default:
		// The interpreter's standard output, which Traefik logs at DEBUG: Yaegi sends
		// fmt.Println there (os.Stdout is the process's own).
		fmt.Println(line)
		return
	}
	_, _ = io.WriteString(w, line+"\n")
}

// debugOut, when set, takes the DEBUG lines in place of standard output: the native
// tests set it, so that their output is not flooded. Nothing else sets it.
var debugOut io.Writer

// lineLimiters holds each middleware's limiter by name, for the life of the process, as
// memoryStores holds its store: the instances New makes for each router and at each
// reload share one bound. It only grows by configured names.
var lineLimiters = &limiterRegistry{byName: make(map[string]*lineLimiter)}

type limiterRegistry struct {
	mu     sync.Mutex
	byName map[string]*lineLimiter
}

// lineLimiterOf returns the limiter of the middleware called name, made on first use.
func lineLimiterOf(name string) *lineLimiter {
	lineLimiters.mu.Lock()
	defer lineLimiters.mu.Unlock()
	l := lineLimiters.byName[name]
	if l == nil {
		l = newLineLimiter(name)
		lineLimiters.byName[name] = l
	}
	return l
}
