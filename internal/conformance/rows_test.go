package conformance

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// subtestName is desc as t.Run names the subtest (a space becomes an underscore), so
// that two rows whose names differ only there count as the same name: go test -run
// could not tell them apart.
func subtestName(desc string) string { return strings.ReplaceAll(desc, " ", "_") }

// TestRowNamesAreUnique: every row of Cases (ReadingCases with them), AdversarialCases
// and ConfigCases has a name no other row of the four tables has, so that each subtest
// is named by its row alone.
func TestRowNamesAreUnique(t *testing.T) {
	now := time.Now()
	seen := map[string]string{}
	check := func(table string, descs []string) {
		for _, d := range descs {
			if d == "" {
				t.Errorf("%s: a row without a name", table)
			}
			if other, dup := seen[subtestName(d)]; dup {
				t.Errorf("%s: %q is also a row of %s", table, d, other)
			}
			seen[subtestName(d)] = table
		}
	}
	check("Cases", caseNames(Cases(now, "secrets")))
	check("AdversarialCases", caseNames(AdversarialCases(now)))
	var config []string
	for _, c := range ConfigCases(t) {
		config = append(config, c.Desc)
	}
	check("ConfigCases", config)

	// ReadingCases are rows of Cases: each is there once, under its own name.
	reading := caseNames(ReadingCases(now))
	inCases := map[string]int{}
	for _, d := range caseNames(Cases(now, "secrets")) {
		inCases[d]++
	}
	for _, d := range reading {
		if inCases[d] != 1 {
			t.Errorf("ReadingCases' %q is %d times in Cases, want once", d, inCases[d])
		}
	}
}

// stepName is how the name of a row of Cases or AdversarialCases starts: the number of
// its step, 1 to 10, and a space.
var stepName = regexp.MustCompile(`^(10|[1-9]) `)

// TestRowNamesStartWithTheirStep: the rows of Cases (ReadingCases aside) and
// AdversarialCases are named by their step's number first, as README.md's "Each request,
// in order" numbers the steps, and in under 70 bytes; longer explanations are comments.
func TestRowNamesStartWithTheirStep(t *testing.T) {
	now := time.Now()
	reading := map[string]bool{}
	for _, d := range caseNames(ReadingCases(now)) {
		reading[d] = true
	}
	for table, descs := range map[string][]string{
		"Cases":            caseNames(Cases(now, "secrets")),
		"AdversarialCases": caseNames(AdversarialCases(now)),
	} {
		for _, d := range descs {
			if reading[d] {
				continue
			}
			if m := stepName.FindStringSubmatch(d); m == nil {
				t.Errorf("%s: %q does not start with its step's number", table, d)
			}
			if len(d) >= 70 {
				t.Errorf("%s: %q is %d bytes, want under 70", table, d, len(d))
			}
		}
	}
}

// TestREADMENumbersTheSteps: README.md's "Each request, in order" numbers the steps 1
// to 10, the numbers the rows' names start with.
func TestREADMENumbersTheSteps(t *testing.T) {
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	item := regexp.MustCompile(`^(\d+)\. `)
	var numbers []int
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#"):
			in = strings.Contains(line, "Each request, in order")
		case in:
			if m := item.FindStringSubmatch(line); m != nil {
				n, _ := strconv.Atoi(m[1])
				numbers = append(numbers, n)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	var want []int
	for n := 1; n < len(requestSteps); n++ {
		want = append(want, n)
	}
	if !reflect.DeepEqual(numbers, want) {
		t.Errorf("README.md's \"Each request, in order\" numbers its steps %v, want %v (requestSteps)", numbers, want)
	}
}

// TestCasesKeepTheirPlaces: two builds of the table, at different times, have the same
// rows in the same places with the same configurations, as CaseRows (which lists the
// rows and their middlewares before they run) and CaseAt (which builds row i again when
// it runs) need. (A row's requests are built when it runs: their number may change,
// as manyBodies' does with the bodies' places.)
func TestCasesKeepTheirPlaces(t *testing.T) {
	now := time.Now()
	a, b := Cases(now, "secrets"), Cases(now.Add(time.Hour+1234*time.Millisecond), "secrets")
	if len(a) != len(b) {
		t.Fatalf("%d rows, then %d", len(a), len(b))
	}
	for i := range a {
		if a[i].Desc != b[i].Desc || a[i].Store != b[i].Store || !reflect.DeepEqual(a[i].Config, b[i].Config) {
			t.Errorf("row %d: %q then %q, or its configuration changed", i, a[i].Desc, b[i].Desc)
		}
	}
}

func caseNames(cases []Case) []string {
	var out []string
	for _, c := range cases {
		out = append(out, c.Desc)
	}
	return out
}

// TestDigitShiftsHoldAtAnyDate builds the digit shifts (digitshift.go) at instants
// across the years Unix milliseconds have 13 digits, the ones where the former searches
// found no pair among them, and checks what the rows rely on: each pair shares its
// signature (or building it panics), and each timestamp is fresh or stale as its row
// expects, with a margin.
func TestDigitShiftsHoldAtAnyDate(t *testing.T) {
	instants := []int64{
		1791689834748,                               // the hostile review's now
		1790000000000, 1797000000000, 1797000500123, // no pair for k = 3 or 4
		1800000000000, 1800000000100, 1800001000050, 1800050000000, // no pair for k = 2 to 4, nor in milliseconds
		2000000000000,                // no pair for any k
		1801801801801, 1811811811811, // the k = 3 original would have been fresh
		1000000000000 + 86400000, 9999999999999 - 86400000, // about the ends of the range
	}
	// Either side of where the digits after the first k stop sorting before the secret.
	for k, heads := range map[int][]int64{1: {1, 2}, 2: {17, 18, 20}, 3: {179, 180, 200}, 4: {1797, 1800, 2000}} {
		w := 13 - k
		edge, _ := strconv.ParseInt(zegotest.OtherSecret[:w], 10, 64)
		for _, head := range heads {
			for _, d := range []int64{-1, 0, 1, 2} {
				instants = append(instants, head*pow10(w)+edge+d)
			}
		}
	}
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 2000; i++ {
		instants = append(instants, 1000000000000+86400000+r.Int63n(8999999999999-2*86400000))
	}
	for _, ms := range instants {
		if ms < 1000000000000 || ms > 9999999999999 {
			continue
		}
		if err := checkShifts(time.UnixMilli(ms)); err != nil {
			t.Errorf("%d (%s): %v", ms, time.UnixMilli(ms).UTC().Format(time.RFC3339Nano), err)
		}
	}
}

func pow10(n int) int64 {
	v := int64(1)
	for ; n > 0; n-- {
		v *= 10
	}
	return v
}

// checkShifts builds the digit shifts at now and checks them.
func checkShifts(now time.Time) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	nowS, nowMs := now.Unix(), now.UnixMilli()
	const margin = 3600 // seconds, far more than a row takes to run

	p := digitShift(now)
	orig, moved := shiftFields(p.original), shiftFields(p.moved)
	if orig.Timestamp != zegotest.Seconds(now) || len(moved.Timestamp) != 13 {
		return fmt.Errorf("digitShift: timestamps %s, %s", orig.Timestamp, moved.Timestamp)
	}
	if string(upperCopy(p.original)) == string(p.original) {
		return fmt.Errorf("digitShift: signature %s has no upper-case copy", orig.Signature)
	}

	p = shiftMillisToNonce(now)
	orig, moved = shiftFields(p.original), shiftFields(p.moved)
	if ts := atoi(orig.Timestamp); ts > nowMs || ts < nowMs-999 {
		return fmt.Errorf("shiftMillisToNonce: original timestamp %d, not within the second before now", ts)
	}
	if ts := atoi(moved.Timestamp); nowMs-ts < (300+margin)*1000 {
		return fmt.Errorf("shiftMillisToNonce: moved timestamp %d is fresh in milliseconds", ts)
	}

	for k := 1; k <= 4; k++ {
		p = shiftToNow(now, k)
		orig, moved = shiftFields(p.original), shiftFields(p.moved)
		m := atoi(moved.Timestamp)
		if len(moved.Timestamp) != 13 || m < nowMs {
			return fmt.Errorf("shiftToNow(%d): moved timestamp %s", k, moved.Timestamp)
		}
		if zegotest.Millis(now)[k:] > zegotest.OtherSecret && m-nowMs > 10000 {
			return fmt.Errorf("shiftToNow(%d): moved timestamp %d is %d ms from now, where a pair exists at now", k, m, m-nowMs)
		}
		if ts := atoi(orig.Timestamp); ts > nowS-margin && ts < nowS+margin {
			return fmt.Errorf("shiftToNow(%d): original timestamp %d is within %d s of now", k, ts, margin)
		}
		if orig.Nonce+orig.Timestamp != moved.Nonce+moved.Timestamp || !strings.HasSuffix(orig.Nonce, moved.Timestamp[:k]) {
			return fmt.Errorf("shiftToNow(%d): %s %s is not %s %s with %d digits moved", k, orig.Nonce, orig.Timestamp, moved.Nonce, moved.Timestamp, k)
		}
	}
	return nil
}

type shiftBody struct{ Timestamp, Nonce, Signature string }

func shiftFields(body []byte) shiftBody {
	var b shiftBody
	if err := json.Unmarshal(body, &b); err != nil {
		panic(err)
	}
	return b
}

func atoi(s string) int64 {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		panic(err)
	}
	return v
}
