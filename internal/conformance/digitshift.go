package conformance

import (
	"strconv"
	"strings"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// The digit shifts. ZEGO signs the secret, the timestamp and the nonce sorted as strings
// and joined; digits moved from the end of one of them to the start of the one that
// follows it in that order leave the joined string, and so the signature, as they were.
// A timestamp that gains or loses three digits that way reads as the same instant in the
// other unit, which a route that guessed the unit from the digit count would take.
//
// Each pair here is signed with zegotest.OtherSecret, which starts with 0 and so sorts
// before every timestamp (a Unix time in decimal starts with 1 to 9), and each is built
// so that it exists whatever the clock reads, while Unix milliseconds have 13 digits
// (from 2001-09-09 to 2286-11-20): no search, no date on which it fails. sharedPair
// checks the construction all the same, and TestDigitShiftsHoldAtAnyDate sweeps the
// dates, among them the ones where a search for a pair among a few nonce shapes (as
// these helpers once made) finds none.

// shiftPair is a callback and the same signature over its digits moved.
type shiftPair struct{ original, moved []byte }

// sharedPair is mix_stop with ts and nonce signed with zegotest.OtherSecret, and mix_stop
// with movedTS and movedNonce under the same signature. It panics when the two triples do
// not share their signature: a construction here that does not hold.
func sharedPair(ts, nonce, movedTS, movedNonce string) shiftPair {
	sig := zegotest.Sign(zegotest.OtherSecret, ts, nonce)
	if zegotest.Sign(zegotest.OtherSecret, movedTS, movedNonce) != sig {
		panic("conformance: a digit shift does not share its signature: " + ts + " " + nonce + " / " + movedTS + " " + movedNonce)
	}
	tpl := zegotest.Template("mix_stop.json")
	return shiftPair{original: zegotest.FillSigned(tpl, ts, nonce, sig), moved: zegotest.FillSigned(tpl, movedTS, movedNonce, sig)}
}

// digitShift returns a callback in seconds, fresh, and the same signature over a
// 13-digit timestamp that took the nonce's first three digits: now in milliseconds,
// give or take a second, which a seconds route reads as tens of thousands of years ahead.
//
// The nonce is nineteen 9s. A decimal string sorts before a string of 9s longer than it,
// so both triples sort secret, timestamp, nonce (the moved timestamp has 13 digits, the
// moved nonce sixteen 9s) and join to the same string, at any date. The signature must
// hold a letter, so that its upper-case copy (stepReplayCases) is another body: when it
// has none, one time in 150 million, the nonce takes another 9, and so on.
func digitShift(now time.Time) shiftPair {
	ts := zegotest.Seconds(now)
	for n := 19; ; n++ {
		nonce := strings.Repeat("9", n)
		if p := sharedPair(ts, nonce, ts+nonce[:3], nonce[3:]); strings.ContainsAny(zegotest.Sign(zegotest.OtherSecret, ts, nonce), "abcdef") {
			return p
		}
	}
}

// shiftMillisToNonce returns a callback in milliseconds, fresh, and the same signature
// with its timestamp's last three digits moved to the front of the nonce: a 10-digit
// timestamp, which a milliseconds route reads as January 1970.
//
// The timestamp is the last instant at or before now whose milliseconds end in 999 (at
// most 999 ms ago, well within any tolerance), the nonce nineteen 9s; the moved nonce is
// then twenty-two 9s. Both triples sort secret, timestamp, nonce, as a decimal string
// sorts before a longer string of 9s, and join to the same string, at any date.
func shiftMillisToNonce(now time.Time) shiftPair {
	ms := now.UnixMilli()
	ts := strconv.FormatInt(ms-(ms+1)%1000, 10)
	nonce := strings.Repeat("9", 19)
	return sharedPair(ts, nonce, ts[:len(ts)-3], ts[len(ts)-3:]+nonce)
}

// shiftToNow returns the hostile review's digit shift with k digits moved (1 to 4): a
// callback in seconds whose nonce ends with the first k digits of a 13-digit timestamp
// m and whose timestamp is the rest of m, and the same signature over the nonce without
// those k digits and m itself, which a seconds route reads as tens of thousands of years
// ahead and a route that guessed the unit from the digit count would read as
// milliseconds. m is now in milliseconds, or a moment after it (reviewMillis).
//
// The signed strings are alike when the nonce sorts between the secret and both
// timestamps: secret, nonce, rest of m joins as secret, nonce without the k digits, m.
// The nonce keeps the secret's characters up to the first place where the rest of m
// differs from it (the rest of m is the larger there, as reviewMillis sees to), then a 9,
// which is larger than the secret's next character (the rest of m has at most 12
// digits, and the secret's first 13 characters are digits up to 6); then 3s to 16
// characters, and the k digits. So it sorts after the secret, and before the rest of m
// and before m, which starts with 1 to 9 where the nonce starts with 0.
func shiftToNow(now time.Time, k int) shiftPair {
	m := reviewMillis(now, k)
	head, rest := m[:k], m[k:]
	i := 0
	for rest[i] == zegotest.OtherSecret[i] {
		i++
	}
	short := zegotest.OtherSecret[:i+1] + "9"
	short += strings.Repeat("3", 16-len(short))
	return sharedPair(rest, short+head, m, short)
}

// reviewMillis is the 13-digit timestamp of shiftToNow's moved callback: now in
// milliseconds, unless
//   - the digits after its first k sort before the secret (they start 000, 0010, 00110
//     and so on, for some hours or days every few months or years: on 11 December
//     2026 at 14:40 UTC for k = 4, on 15 January 2027 at 08:00 for k = 2, 3 and 4), when
//     no nonce sorts between the two as shiftToNow needs: then the first instant after
//     now where one does, whose digits after the first k are the secret's first ones
//     plus one;
//   - or those digits, the original callback's timestamp, read as seconds, are within
//     an hour of now (some 7 s every 116 days when k = 3, and within 300 s, when the
//     original callback would have been fresh, 600 ms): then 10 s later, which moves
//     them 10 000 s away, so that the original callback is stale too.
//
// What the rows check of the moved callback, stale on a seconds route, holds for any
// 13-digit timestamp; the rows hold whatever the date.
func reviewMillis(now time.Time, k int) string {
	m := zegotest.Millis(now)
	if m[k:] < zegotest.OtherSecret {
		w := len(m) - k
		first, _ := strconv.ParseInt(zegotest.OtherSecret[:w], 10, 64)
		m = m[:k] + zeroPad(first+1, w)
	}
	if rest, _ := strconv.ParseInt(m[k:], 10, 64); rest > now.Unix()-3600 && rest < now.Unix()+3600 {
		v, _ := strconv.ParseInt(m, 10, 64)
		m = strconv.FormatInt(v+10000, 10)
	}
	return m
}

// zeroPad writes v in decimal with leading zeros to w digits.
func zeroPad(v int64, w int) string {
	s := strconv.FormatInt(v, 10)
	return strings.Repeat("0", w-len(s)) + s
}
