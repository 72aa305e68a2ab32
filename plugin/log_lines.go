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
// not. The reasons are the rejection codes and a few of the middleware's own, so a
// reason a genuine callback meets (a stale timestamp, the store) is written the first
// time it comes, whatever floods another.

// The levels a line is written at.
const (
	levelError = iota // the log package's writer: Traefik's ERROR
	levelDebug        // standard output: Traefik's DEBUG
)

const (
	logBurst   = 5    // lines one reason may write at once
	logEveryMs = 1000 // then one per this many milliseconds
)

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
	l.mu.Lock()
	nowMs := l.now().UnixMilli()
	r := l.reasons[reason]
	if r == nil {
		r = &reasonLines{allowance: logBurst, refilledMs: nowMs}
		l.reasons[reason] = r
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
		return
	}
	r.allowance--
	suppressed, sinceMs := r.suppressed, r.sinceMs
	r.suppressed = 0
	l.mu.Unlock()

	line := fmt.Sprintf("zegocallback: middleware=%s ", l.name) + fmt.Sprintf(format, args...)
	if suppressed > 0 {
		line += fmt.Sprintf(" (%d more lines for %s not written in the last %.1f s)", suppressed, reason, float64(nowMs-sinceMs)/1000)
	}
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
