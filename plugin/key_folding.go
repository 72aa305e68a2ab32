package zegocallback

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// Keys as Go's encoding/json matches them. A Go backend that decodes a callback into a
// struct (json.Unmarshal, json.Decoder, gin's ShouldBindJSON, echo's Bind) matches each
// key to a field without regard to letter case, by Unicode's simple folding (ſ reads as
// s, the Kelvin sign as k), and the last key that matches a field wins: a body holding
// "event" then "EVENT", "eventType", or "ſignature" would give it another event or other
// signed fields than the middleware read. So a JSON body is refused, once its signature
// holds, when a struct whose fields are named as the named fields' spellings would read
// another text into one of them than the middleware read, or a text where the middleware
// read none. encoding/json itself does the matching: the body is decoded once more into
// namedFolds, one compiled call, whatever the number of keys.

var errKeysFold = fmt.Errorf("%w: a key that Go's encoding/json reads as a named field's, under another letter case (EVENT, eventType, ſignature)", errMalformedBody)

// namedFolds has a field for each group of the named fields' spellings that fold alike:
// encoding/json puts in each the last key that folds as its name.
type namedFolds struct {
	Signature  json.RawMessage `json:"signature"`
	Timestamp  json.RawMessage `json:"timestamp"`
	Nonce      json.RawMessage `json:"nonce"`
	Event      json.RawMessage `json:"event"`
	EventType  json.RawMessage `json:"eventtype"`
	Event_Type json.RawMessage `json:"event_type"` //nolint:revive,stylecheck // the spelling's own
	AppID      json.RawMessage `json:"appid"`
	App_ID     json.RawMessage `json:"app_id"` //nolint:revive,stylecheck // the spelling's own
	// SignatureNonce is mini-game's nonce.
	SignatureNonce json.RawMessage `json:"signaturenonce"`
}

// foldGroup is, for each named field's spelling, the place of its group in namedFolds'
// fields, as foldsApart lists them.
var foldGroup = map[string]int{
	"signature": 0, "Signature": 0, "timestamp": 1, "Timestamp": 1, "nonce": 2, "Nonce": 2,
	"event": 3, "Event": 3, "EventType": 4, "event_type": 5,
	"appid": 6, "AppId": 6, "Appid": 6, "AppID": 6, "app_id": 7, "SignatureNonce": 8,
}

// foldedNamed holds the named fields' spellings in capitals: the keys of a plain body
// (ASCII) that encoding/json reads as one of them. The plain reading's copy of the cache
// of names holds none that is not a spelling, so that a body holding one goes to
// plainKeys, and so here.
var foldedNamed = func() map[string]bool {
	m := make(map[string]bool, len(namedSpellings))
	for _, sp := range namedSpellings {
		m[strings.ToUpper(sp.name)] = true
	}
	return m
}()

// namedKeyFolds finds a key that folds as a named field's spelling, in a document without
// an escape: group 1 is its text. (?i) matches as encoding/json folds (ſ for s, the
// Kelvin sign for k).
var namedKeyFolds = regexp.MustCompile(`"((?i)signature(?:nonce)?|timestamp|nonce|event(?:_?type)?|app_?id)"[ \t\r\n]*:`)

// foldAlias reports whether a JSON document may hold a key that encoding/json reads as a
// named field's without being a spelling the middleware reads (so that foldsApart has to
// look): one written with an escape, or found by namedKeyFolds (a value alike, or a
// nested key, is looked at too). One compiled pass, and a loop over the few matches.
func foldAlias(doc []byte) bool {
	if bytes.IndexByte(doc, '\\') >= 0 {
		return true
	}
	matches := namedKeyFolds.FindAllSubmatchIndex(doc, -1)
	for i := 0; i < len(matches); i++ {
		if !spellingOf[string(doc[matches[i][2]:matches[i][3]])] {
			return true
		}
	}
	return false
}

// foldsApart refuses a JSON document, whose named fields cb holds as read, from which
// encoding/json would read another text into a named field's group (see above).
func foldsApart(cb *callback, doc []byte) error {
	var f namedFolds
	if json.Unmarshal(doc, &f) != nil {
		return nil // read whole already: this does not fail
	}
	groups := [...]json.RawMessage{f.Signature, f.Timestamp, f.Nonce, f.Event, f.EventType, f.Event_Type, f.AppID, f.App_ID, f.SignatureNonce}
	fields := [...]int{fieldSignature, fieldTimestamp, fieldNonce, fieldEvent, fieldEvent, fieldEvent, fieldAppID, fieldAppID, fieldNonce}
	spelling, text := "", ""
	for g := 0; g < len(groups); g++ {
		if groups[g] == nil {
			continue
		}
		spelling = cb.spelling[fields[g]]
		text, _ = scalarText(groups[g])
		if spelling == "" || foldGroup[spelling] != g || text != cb.texts[fields[g]] {
			return errKeysFold
		}
	}
	return nil
}
