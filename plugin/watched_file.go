package zegocallback

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// Files a setting names (secretsFile, redis.passwordFile) hold secrets that rotate: a
// Kubernetes Secret volume swaps a symbolic link, a Docker secret is replaced, an
// operator rewrites the file. New reads each one; after that, the requests that use it
// read it again, at most once a second, and take new content once it has stayed the same
// for a second (so that a file caught half written is not taken): at once when the file
// was written longer ago than that, else at the next look. The content decides, not the
// file's size or times, which a copy that keeps them would fool. Nothing runs in the
// background: the look is made by a request, under a lock only one request takes.

// fileCheckMs is how often a watched file is looked at, and how long a change must stay
// put before it is taken: a change applies within about twice this.
const fileCheckMs = 1000

// maxWatchedBytes bounds what is read of a watched file: a few secrets, a password.
const maxWatchedBytes = 64 << 10

// watchedFile is a file a setting names, and what was last taken from it: texts (the
// secrets, or the password alone), not a value of any type, which Yaegi v0.16.1 cannot
// pass through a function value and back.
type watchedFile struct {
	key   string // the setting that names it, for the log: "secretsFile"
	path  string
	parse func(data []byte) ([]string, error) // what the setting reads from the file's bytes
	// parseTable, set instead of parse, reads a table (appSecretsFile: each app id's
	// secrets).
	parseTable func(data []byte) (map[string][]string, error)
	log        *lineLimiter // where a change that could not be taken is told
	mu         sync.Mutex   // held by the one caller that looks at the file
	// current is a *fileContent, replaced whole (never changed) at each look.
	current atomic.Value
}

// fileContent is what a watched file held when it was last taken, and when to look again.
type fileContent struct {
	value     []string
	table     map[string][]string // parseTable's
	data      []byte              // the bytes last handled: value's, or a change that did not parse
	pending   []byte              // a change seen at the last look, written a moment before it
	failed    string              // why the last look could not read the file, told once
	checkAtMs int64
}

// watchFile reads the file a setting names and parses it: New's first reading, whose
// error is New's.
func watchFile(key, path string, parse func([]byte) ([]string, error), log *lineLimiter, nowMs int64) (*watchedFile, error) {
	w := &watchedFile{key: key, path: path, parse: parse, log: log}
	data, _, err := readWatched(path)
	if err != nil {
		return nil, err
	}
	value, err := parse(data)
	if err != nil {
		return nil, err
	}
	w.current.Store(&fileContent{value: value, data: data, checkAtMs: nowMs + fileCheckMs})
	return w, nil
}

// watchTable is watchFile for a file that holds a table.
func watchTable(key, path string, parse func([]byte) (map[string][]string, error), log *lineLimiter, nowMs int64) (*watchedFile, error) {
	w := &watchedFile{key: key, path: path, parseTable: parse, log: log}
	data, _, err := readWatched(path)
	if err != nil {
		return nil, err
	}
	table, err := parse(data)
	if err != nil {
		return nil, err
	}
	w.current.Store(&fileContent{table: table, data: data, checkAtMs: nowMs + fileCheckMs})
	return w, nil
}

// watchedTable is watchedValue for a file that holds a table.
func watchedTable(w *watchedFile, nowMs int64) map[string][]string {
	c, _ := w.current.Load().(*fileContent)
	if nowMs >= c.checkAtMs || c.checkAtMs-nowMs > fileCheckMs {
		c = lookAgain(w, c, nowMs)
	}
	return c.table
}

// watchedValue is what the file holds now, as far as a look at most a second old tells.
func watchedValue(w *watchedFile, nowMs int64) []string {
	c, _ := w.current.Load().(*fileContent)
	if nowMs >= c.checkAtMs || c.checkAtMs-nowMs > fileCheckMs {
		// Due, or the clock was set back past the last look.
		c = lookAgain(w, c, nowMs)
	}
	return c.value
}

// lookAgain reads the file once its time has come, unless another caller is looking:
// new content is taken when it was written a second or more ago or the look before saw
// it too, and it parses; a file that cannot be read or parsed keeps what was taken
// before, and the log says why, once.
func lookAgain(w *watchedFile, c *fileContent, nowMs int64) *fileContent {
	if !w.mu.TryLock() {
		return c
	}
	defer w.mu.Unlock()
	c, _ = w.current.Load().(*fileContent)
	if nowMs < c.checkAtMs && c.checkAtMs-nowMs <= fileCheckMs {
		return c
	}
	next := &fileContent{value: c.value, table: c.table, data: c.data, checkAtMs: nowMs + fileCheckMs}
	data, writtenMs, err := readWatched(w.path)
	switch {
	case err != nil:
		// Tried again at the next look: a file being replaced, a permission fixed.
		next.failed = err.Error()
		if next.failed != c.failed {
			w.log.printf(levelError, "file_unreadable", "%s: %v; what was read before stays in use", w.key, err)
		}
	case bytes.Equal(data, c.data):
	case nowMs-writtenMs < fileCheckMs && !bytes.Equal(data, c.pending):
		// Written a moment ago, perhaps half: taken at the next look if it stays so.
		next.pending = data
	default:
		var value []string
		var table map[string][]string
		if w.parseTable != nil {
			table, err = w.parseTable(data)
		} else {
			value, err = w.parse(data)
		}
		next.data = data // parsed again only once it changes again
		if err != nil {
			w.log.printf(levelError, "file_invalid", "%s changed, but %v; what was read before stays in use", w.key, err)
			break
		}
		next.value, next.table = value, table
		w.log.printf(levelDebug, "file_changed", "%s changed: read again", w.key)
	}
	w.current.Store(next)
	return next
}

// errNotRegular is a watched path that is not a regular file (a folder, a named pipe,
// whose reading would wait for a writer).
var errNotRegular = errors.New("is not a regular file")

// readWatched reads a watched file, at most maxWatchedBytes, and says when it was last
// written (Unix ms).
func readWatched(path string) ([]byte, int64, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, 0, err
	}
	if !info.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%s %w", path, errNotRegular)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxWatchedBytes+1))
	_ = f.Close()
	if err != nil {
		return nil, 0, err
	}
	if len(data) > maxWatchedBytes {
		return nil, 0, fmt.Errorf("%s is larger than %d bytes", path, maxWatchedBytes)
	}
	return data, info.ModTime().UnixMilli(), nil
}
