package agentcard

import (
	"bytes"
	"errors"

	"github.com/agentid/agentid/internal/jsonstr"
	"github.com/agentid/agentid/internal/strictjson"
)

// Cards are read under strictjson.AgentCard, and protected and unprotected
// JWS headers and SPIFFE trust bundles (JWK sets) under strictjson.JOSE. The
// rules are the same: RFC 8259 with valid UTF-8 and no unpaired surrogate
// escapes, no duplicate keys and no keys that differ only in letter case at
// any depth (Go's encoding/json matches struct fields case-insensitively and
// keeps the last duplicate, JavaScript keeps the last, some parsers keep the
// first), no integer beyond 2^53 and no number beyond the double range (RFC
// 8785 and go-jose read numbers as doubles), and at most 64 levels of
// nesting. The signature covers the canonical form computed by one parser
// (ours); a consumer that parses the card with another parser must see the
// same card, or a signed card could say one thing to the verifier and
// another to the consumer. Only the size limits differ (strictjson documents
// both).
const maxDepth = 64

// member is one member of a JSON object: its decoded key and the byte spans
// of the whole member and of its value in the document.
type member struct {
	key        string
	start      int // index of the key's opening quote
	valueStart int
	valueEnd   int // exclusive
}

// scanStrict validates a card as a single JSON value and, if the value is
// an object, returns its top-level members in document order (nil for any
// other value).
func scanStrict(data []byte) ([]member, error) {
	return scanMembers(strictjson.AgentCard, data)
}

// scanMembers is scanStrict under profile p.
func scanMembers(p strictjson.Profile, data []byte) ([]member, error) {
	s := strictjson.NewScanner(p, data)
	defer s.Release()
	first, err := s.Next()
	if err != nil {
		return nil, err
	}
	var members []member
	if first.Kind == strictjson.Object {
		members = []member{}
		for {
			key, val, ok, err := s.Member()
			if err != nil {
				return nil, err
			}
			if !ok {
				break
			}
			members = append(members, member{key: string(s.Text(key)), start: key.Start, valueStart: val.Start, valueEnd: val.End})
		}
	}
	if err := s.Finish(); err != nil {
		return nil, err
	}
	return members, nil
}

// foldKey maps a key to a representative of its case-folding class, so that
// two keys compare equal exactly when the strict scanner treats them as
// case variants (strictjson.FoldRune: whenever strings.EqualFold says they
// match, and also when they differ by a dotted or dotless I).
func foldKey(key string) string {
	return string(strictjson.AppendFold(nil, []byte(key)))
}

// errNotObject is returned when a card or header is valid JSON but not an
// object.
var errNotObject = errors.New("not a JSON object")

// arrayElements returns the spans of the elements of a JSON array that
// scanStrict has already validated; it only finds where they are.
func arrayElements(data []byte) ([][2]int, error) {
	s := strictjson.NewScanner(strictjson.Syntax, data)
	defer s.Release()
	if t, err := s.Next(); err != nil || t.Kind != strictjson.Array {
		return nil, errors.New("not a JSON array")
	}
	var out [][2]int
	for {
		t, err := s.Skip()
		if err != nil {
			return nil, err
		}
		if t.Kind == strictjson.ArrayEnd {
			return out, nil
		}
		out = append(out, [2]int{t.Start, t.End})
	}
}

// jsonStringValue decodes a JSON string that scanStrict has validated. The
// common case, with no escapes, is the bytes between the quotes.
// Validation matters: it rules out the lone surrogates and invalid UTF-8
// that jsonstr.AppendUnescaped would decode differently from encoding/json.
func jsonStringValue(v []byte) (string, error) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", errors.New("not a string")
	}
	inner := v[1 : len(v)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), nil
	}
	return string(jsonstr.AppendUnescaped(make([]byte, 0, len(inner)), inner)), nil
}
