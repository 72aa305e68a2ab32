package zegocallback

import (
	"os"
	"sync"
	"sync/atomic"
)

// Files a setting names (secretsFile, redis.passwordFile) hold secrets that rotate: a
// Kubernetes Secret volume swaps a symbolic link, a Docker secret is replaced, an
// operator rewrites the file. New reads each one; after that, the requests that use it
// look at it again, at most once a second, and take its new content once it has stayed
// the same for a second (so that a file caught half written is not taken): at once when
// it was written longer ago than that, else at the next look. Nothing runs in the
// background: the look is made by a request, under a lock only one request takes.

// fileCheckMs is how often a watched file is looked at, and how long a change must stay
// put before it is taken: a change applies within about twice this.
const fileCheckMs = 1000

// watchedFile is a file a setting names, and what was last taken from it: texts (the
// secrets, or the password alone), not a value of any type, which Yaegi v0.16.1 cannot
// pass through a function value and back.
type watchedFile struct {
	key   string // the setting that names it, for the log: "secretsFile"
	path  string
	parse func(data []byte) ([]string, error) // what the setting reads from the file's bytes
	log   *lineLimiter                        // where a change that could not be taken is told
	mu    sync.Mutex                          // held by the one caller that looks at the file
	// current is a *fileContent, replaced whole (never changed) at each look.
	current atomic.Value
}

// fileContent is what a watched file held when it was last taken, and when to look again.
type fileContent struct {
	value     []string
	info      os.FileInfo // the file as it was when value was read
	pending   os.FileInfo // a change seen at the last look, not taken yet
	missing   bool        // the last look could not find the file: told once
	checkAtMs int64
}

// watchFile reads the file a setting names and parses it: New's first reading, whose
// error is New's.
func watchFile(key, path string, parse func([]byte) ([]string, error), log *lineLimiter, nowMs int64) (*watchedFile, error) {
	w := &watchedFile{key: key, path: path, parse: parse, log: log}
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	value, err := readWatched(w)
	if err != nil {
		return nil, err
	}
	w.current.Store(&fileContent{value: value, info: info, checkAtMs: nowMs + fileCheckMs})
	return w, nil
}

// watchedValue is what the file holds now, as far as a look at most a second old tells.
func watchedValue(w *watchedFile, nowMs int64) []string {
	c, _ := w.current.Load().(*fileContent)
	if nowMs >= c.checkAtMs {
		c = lookAgain(w, c, nowMs)
	}
	return c.value
}

// lookAgain looks at the file once its time has come, unless another caller is looking:
// a change is taken when the look before saw the same file, and it parses; a file that
// cannot be read or parsed keeps what was taken before, and the log says why.
func lookAgain(w *watchedFile, c *fileContent, nowMs int64) *fileContent {
	if !w.mu.TryLock() {
		return c
	}
	defer w.mu.Unlock()
	c, _ = w.current.Load().(*fileContent)
	if nowMs < c.checkAtMs {
		return c
	}
	next := &fileContent{value: c.value, info: c.info, checkAtMs: nowMs + fileCheckMs}
	info, err := os.Stat(w.path)
	switch {
	case err != nil:
		if !c.missing {
			w.log.printf(levelError, "file_unreadable", "%s: %v; what was read before stays in use", w.key, err)
		}
		next.missing = true
	case sameFile(info, c.info):
	case !settled(info, c.pending, nowMs):
		// Changed a moment ago, perhaps half written: taken at the next look if it stays so.
		next.pending = info
	default:
		value, err := readWatched(w)
		if after, serr := os.Stat(w.path); err == nil && (serr != nil || !sameFile(after, info)) {
			next.pending = after // changed while it was read: looked at again
			break
		}
		if err != nil {
			next.info = info // not read again until it changes again
			w.log.printf(levelError, "file_invalid", "%s changed, but %v; what was read before stays in use", w.key, err)
			break
		}
		next.value, next.info = value, info
		w.log.printf(levelDebug, "file_changed", "%s changed: read again", w.key)
	}
	w.current.Store(next)
	return next
}

// settled reports whether a changed file can be taken: it was last written at least
// fileCheckMs ago (a change made while nobody looked, as on a quiet route, is taken by
// the first request after it), or the last look saw it the same.
func settled(info, pending os.FileInfo, nowMs int64) bool {
	return nowMs-info.ModTime().UnixMilli() >= fileCheckMs || pending != nil && sameFile(info, pending)
}

// readWatched reads and parses the file.
func readWatched(w *watchedFile) ([]string, error) {
	data, err := os.ReadFile(w.path)
	if err != nil {
		return nil, err
	}
	return w.parse(data)
}

// sameFile reports whether two looks at a path saw the same file with the same content,
// as far as its identity (device and inode, through symbolic links), size and time of
// change tell.
func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
