package conformance

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"strings"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// stepReplayCases: step 9, replays: a copy of a delivered callback, another body under
// its signed triple, and a full store.
func stepReplayCases(now time.Time) []Case {
	sec := zegotest.Seconds(now)
	replayed, rejectedCopy, kept, notRemembered := mixNow(now), mixNow(now), mixNow(now), mixNow(now)
	lettered := letteredNow(now)
	reused, reusedRejected, apart := reusePair(sec), reusePair(sec), reusePairApart(sec)
	return []Case{
		// Acknowledged with 200 and X-Zego-Duplicate, not forwarded.
		{Desc: "9 replay after delivery: acknowledged",
			Store: true,
			Steps: []Step{Delivered(replayed), Acked(replayed), Acked(replayed)}},
		// The backend's answer is remembered: a replay gets it, whatever duplicates says.
		{Desc: "9 replay after delivery, duplicates reject: the remembered answer",
			Store:  true,
			Config: map[string]any{"duplicates": "reject"},
			Steps:  []Step{Delivered(rejectedCopy), Acked(rejectedCopy)}},
		{Desc: "9 replay after delivery, duplicates reject, no answer remembered: 409",
			Store:  true,
			Config: map[string]any{"duplicates": "reject", "rememberAnswerBytes": 0},
			Steps:  []Step{Delivered(notRemembered), {Req: Request{Body: notRemembered}, Status: 409, Code: "duplicate"}}},
		// A replay with an upper-case copy of the signature is another body: 409
		// signature_reused.
		{Desc: "9 upper-case copy of a delivered signature: 409 signature_reused",
			Store: true,
			Steps: []Step{Delivered(lettered), {Req: Request{Body: upperCopy(lettered)}, Status: 409, Code: "signature_reused"}}},
		// The same signed triple with another body, once delivered: 409
		// signature_reused, not forwarded.
		{Desc: "9 another body under a delivered triple: 409 signature_reused",
			Store: true,
			Steps: []Step{
				withBody(ok(map[string][]string{"X-Zego-Channel-Id": {"2222"}}), reused.first),
				{Req: Request{Body: reused.other}, Status: 409, Code: "signature_reused"},
				Acked(reused.first),
			}},
		{Desc: "9 another body, duplicates reject: still signature_reused",
			Store:  true,
			Config: map[string]any{"duplicates": "reject", "rememberAnswerBytes": 0},
			Steps: []Step{
				Delivered(reusedRejected.first),
				{Req: Request{Body: reusedRejected.other}, Status: 409, Code: "signature_reused"},
				{Req: Request{Body: reusedRejected.first}, Status: 409, Code: "duplicate"},
			}},
		{Desc: "9 replayKey signatureAndBody: two bodies, each forwarded once",
			Store:  true,
			Config: map[string]any{"replayKey": "signatureAndBody"},
			Steps: []Step{
				withBody(ok(map[string][]string{"X-Zego-Channel-Id": {"2222"}}), apart.first),
				Delivered(apart.other),
				Acked(apart.first),
				Acked(apart.other),
			}},
		// A captured triple carries 17 bodies at most: the first under the triple's own
		// key, then one per place (the body's SHA-256, its first 8 bytes, modulo 16).
		{Desc: "9 replayKey signatureAndBody: 17 bodies under a triple at most",
			Store:  true,
			Config: map[string]any{"replayKey": "signatureAndBody"},
			Steps:  manyBodies(sec, 40)},
		{Desc: "9 full store: 503, and it keeps what it has",
			Config: map[string]any{"nonceCapacity": 1},
			Steps: []Step{
				Delivered(kept),
				withBody(rejected(503, "nonce_store_unavailable"), mixNow(now)),
				Acked(kept),
			}},
	}
}

// letteredNow is a fresh callback whose signature holds a letter, so that its upper-case
// copy (upperCopy) is another body.
func letteredNow(now time.Time) []byte {
	for {
		if body := zegotest.New("mix_stop.json", zegotest.Secret, zegotest.Seconds(now)).Body; string(upperCopy(body)) != string(body) {
			return body
		}
	}
}

// upperCopy is body with its signature's hex in upper case: another body under the same
// signed triple.
func upperCopy(body []byte) []byte {
	s := string(body)
	i := strings.Index(s, `"signature":"`) + len(`"signature":"`)
	return []byte(s[:i] + strings.ToUpper(s[i:i+40]) + s[i+40:])
}

// reuse is a callback and another body signed with the same triple.
type reuse struct{ first, other []byte }

func reusePair(sec string) reuse {
	first := zegotest.New("mix_start.json", zegotest.Secret, sec).Body
	return reuse{first: first, other: bodyWithField(first, "channel_id", "forged-room")}
}

// reusePairApart is a reusePair whose two bodies fall in different places of
// replayKey signatureAndBody.
func reusePairApart(sec string) reuse {
	first := zegotest.New("mix_start.json", zegotest.Secret, sec).Body
	for i := 0; ; i++ {
		other := bodyWithField(first, "channel_id", "forged-room-"+strconv.Itoa(i))
		if bodyPlace(other) != bodyPlace(first) {
			return reuse{first: first, other: other}
		}
	}
}

// bodyPlace is where replayKey signatureAndBody puts a body among a triple's 16 places,
// as the README states it.
func bodyPlace(body []byte) uint64 {
	sum := sha256.Sum256(body)
	return binary.BigEndian.Uint64(sum[:8]) % 16
}

// manyBodies sends n bodies under one triple: each forwarded if its place is free, else
// 409 signature_reused; then each forwarded one again, acknowledged.
func manyBodies(sec string, n int) []Step {
	first := zegotest.New("mix_start.json", zegotest.Secret, sec).Body
	var steps, replays []Step
	taken := map[uint64]bool{}
	for i := 0; i < n; i++ {
		body := bodyWithField(first, "channel_id", "room-"+strconv.Itoa(i))
		if i == 0 {
			// The first body takes the triple's own key, whatever its place.
			steps = append(steps, Delivered(body))
			replays = append(replays, Acked(body))
		} else if p := bodyPlace(body); taken[p] {
			steps = append(steps, Step{Req: Request{Body: body}, Status: 409, Code: "signature_reused"})
		} else {
			taken[p] = true
			steps = append(steps, Delivered(body))
			replays = append(replays, Acked(body))
		}
	}
	return append(steps, replays...)
}
