package zegocallback

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWatchedFile: a change is taken once two looks a second apart saw it, so at most
// about two seconds after it; a file that cannot be read or parsed keeps what was taken
// before, and says so once; Kubernetes' swap of a symbolic link is a change.
func TestWatchedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secrets")
	// The looks are at nowMs + ms; each write is stamped as made at the time given, so
	// that whether it had settled does not depend on the file system's clock.
	nowMs := int64(1000000)
	write := func(content string, atMs int64) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		stamp := time.UnixMilli(nowMs + atMs)
		if err := os.Chtimes(path, stamp, stamp); err != nil {
			t.Fatal(err)
		}
	}
	parse := func(data []byte) ([]string, error) {
		text := strings.TrimSpace(string(data))
		if text == "" || strings.Contains(text, "bad") {
			return nil, errors.New("holds no secret")
		}
		return []string{text}, nil
	}
	var logs bytes.Buffer
	l := newLineLimiter("watch@test")
	l.out[levelError], l.out[levelDebug] = &logs, &logs

	write("one", -5000)
	w, err := watchFile("secretsFile", path, parse, l, nowMs)
	if err != nil {
		t.Fatal(err)
	}
	at := func(ms int64, want string) {
		t.Helper()
		if got := watchedValue(w, nowMs+ms)[0]; got != want {
			t.Fatalf("at +%d ms: %v, want %s", ms, got, want)
		}
	}
	at(0, "one")
	// Written just before a look: perhaps half written, so taken at the next one.
	write("two", 900)
	at(999, "one")  // not looked at yet
	at(1000, "one") // seen changed a moment ago: taken if it stays so
	at(1500, "one")
	at(2000, "two")
	// Written long before the look that sees it (a quiet route): taken by that look.
	write("two and a half", 2500)
	at(30000, "two and a half")

	// Unparsable: what was taken stays, and the log says so once.
	write("bad", 30500)
	at(31000, "two and a half")
	at(32000, "two and a half")
	at(34000, "two and a half")
	if n := strings.Count(logs.String(), "secretsFile changed, but holds no secret"); n != 1 {
		t.Errorf("%d lines for a bad change, want 1:\n%s", n, logs.String())
	}
	write("three", 34500)
	at(35000, "two and a half")
	at(36000, "three")

	// Gone: what was taken stays; back, it is taken again.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	at(37000, "three")
	at(38000, "three")
	if n := strings.Count(logs.String(), "secretsFile: stat"); n != 1 {
		t.Errorf("%d lines for a missing file, want 1:\n%s", n, logs.String())
	}
	write("four", 38500)
	at(39000, "three")
	at(40000, "four")

	// Rewritten in place with the same size and time (cp -p, touch -r): the content tells.
	write("fore", 38500)
	at(41000, "fore")

	// Not a regular file for a while (a folder; a named pipe would block a reader): what
	// was read stays, and the next look after it is a file again takes it.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	at(42000, "fore")
	if !strings.Contains(logs.String(), "is not a regular file") {
		t.Errorf("no line for a folder in the file's place:\n%s", logs.String())
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	write("five", 30000)
	at(43000, "five")

	// The clock set back an hour: the next look is not an hour away (the file, written
	// "later", is taken at the look after it).
	write("six", 30000)
	at(43000-3600000, "five")
	at(44000-3600000, "six")

	// A Kubernetes Secret volume: key -> ..data/key, ..data -> a folder of its own,
	// swapped by renaming a new link over ..data.
	volume := filepath.Join(dir, "volume")
	for _, d := range []string{"..v1", "..v2"} {
		if err := os.MkdirAll(filepath.Join(volume, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(volume, "..v1", "key"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(volume, "..v2", "key"), []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if written := time.UnixMilli(nowMs - 5000); os.Chtimes(filepath.Join(volume, "..v2", "key"), written, written) != nil {
		t.Fatal("chtimes")
	}
	mustLink := func(target, name string) {
		t.Helper()
		if err := os.Symlink(target, name); err != nil {
			t.Fatal(err)
		}
	}
	mustLink("..v1", filepath.Join(volume, "..data"))
	mustLink(filepath.Join("..data", "key"), filepath.Join(volume, "key"))
	k, err := watchFile("secretsFile", filepath.Join(volume, "key"), parse, l, nowMs)
	if err != nil {
		t.Fatal(err)
	}
	mustLink("..v2", filepath.Join(volume, "..data_tmp"))
	if err := os.Rename(filepath.Join(volume, "..data_tmp"), filepath.Join(volume, "..data")); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		ms   int64
		want string
	}{{500, "old"}, {1000, "new"}} {
		if got := watchedValue(k, nowMs+step.ms)[0]; got != step.want {
			t.Fatalf("Secret volume at +%d ms: %v, want %s", step.ms, got, step.want)
		}
	}
}
