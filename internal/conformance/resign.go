package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
)

// topLevelSpans returns where each top-level field's value lies in a JSON object body:
// [start, end) byte offsets by field name (the last, for a name written twice).
func topLevelSpans(body []byte) (map[string][2]int, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	spans := map[string][2]int{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		end := int(dec.InputOffset())
		spans[name] = [2]int{end - len(raw), end}
	}
	return spans, nil
}

// replaceValues returns body with the values of the named top-level fields replaced by
// the raw JSON texts given, everything else as it was: spacing, order, other values.
func replaceValues(body []byte, values map[string]string) ([]byte, error) {
	spans, err := topLevelSpans(body)
	if err != nil {
		return nil, err
	}
	type edit struct {
		span [2]int
		raw  string
	}
	var edits []edit
	for name, raw := range values {
		span, ok := spans[name]
		if !ok {
			return nil, fmt.Errorf("no top-level field %q", name)
		}
		edits = append(edits, edit{span, raw})
	}
	sort.Slice(edits, func(i, j int) bool { return edits[i].span[0] > edits[j].span[0] })
	out := append([]byte(nil), body...)
	for _, e := range edits {
		out = append(out[:e.span[0]], append([]byte(e.raw), out[e.span[1]:]...)...)
	}
	return out, nil
}

// bodyWithField is body with one string field set to value.
func bodyWithField(body []byte, field, value string) []byte {
	raw, _ := json.Marshal(value)
	out, err := replaceValues(body, map[string]string{field: string(raw)})
	if err != nil {
		panic(fmt.Sprintf("conformance: %v", err))
	}
	return out
}
