package agentcard

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/agentid/agentid/internal/jcs"
)

// MaxCardSize is the largest card accepted, in bytes: the 1 MiB that the
// Kagenti fetcher reads, which is far more than any real card needs.
const MaxCardSize = 1 << 20

// maxSignatures bounds the work one card can cause: every signature costs a
// chain verification and a public-key operation.
const maxSignatures = 16

// signaturesKey is the card member that holds the JWS signatures and is left
// out of the signing payload.
const signaturesKey = "signatures"

// Card is an A2A AgentCard kept as the raw JSON it was given. It is never
// decoded into a struct, so fields of any A2A version, and fields no version
// knows, are kept and signed exactly as served.
type Card struct {
	raw     []byte
	members []member
	sigs    int // index of the signatures member in members, or -1
}

// ParseCard checks that data is an AgentCard we are willing to sign or
// verify: a JSON object of at most MaxCardSize bytes with no duplicate or
// case-variant keys at any depth, valid UTF-8, no unpaired surrogates, no
// integer beyond 2^53 and at most 64 levels of nesting. A `signatures`
// member, if present, must be an array. The card keeps a reference to data.
func ParseCard(data []byte) (*Card, error) {
	if len(data) > MaxCardSize {
		return nil, fmt.Errorf("agentcard: card is %d bytes, more than the %d allowed", len(data), MaxCardSize)
	}
	members, err := scanStrict(data)
	if err != nil {
		return nil, fmt.Errorf("agentcard: card: %w", err)
	}
	if members == nil {
		return nil, fmt.Errorf("agentcard: card: %w", errNotObject)
	}
	c := &Card{raw: data, members: members, sigs: -1}
	for i, m := range members {
		if m.key == signaturesKey {
			c.sigs = i
			if data[m.valueStart] != '[' {
				return nil, errors.New("agentcard: card: signatures is not an array")
			}
		}
	}
	return c, nil
}

// Bytes returns the card as it was parsed.
func (c *Card) Bytes() []byte { return c.raw }

// Payload returns the signing payload: the RFC 8785 (JCS) canonical form of
// the card without its signatures member. Keys are sorted by UTF-16 code
// units, strings are escaped minimally (no HTML escaping of < > &), numbers
// are written as ECMAScript does, and nothing else is removed or added:
// empty strings, empty arrays, false and 0 are all signed.
//
// The signatures member is left out while canonicalizing rather than by
// first copying the card without it.
func (c *Card) Payload() ([]byte, error) {
	out, err := jcs.CanonicalizeWithout(nil, c.raw, signaturesKey)
	if err != nil {
		return nil, fmt.Errorf("agentcard: canonicalizing the card: %w", err)
	}
	return out, nil
}

// rawSignature is one entry of the card's signatures array, in the A2A
// AgentCardSignature shape (RFC 7515 §7.2.1 general JSON serialization with a
// detached payload).
type rawSignature struct {
	protected string
	signature string
	header    json.RawMessage // unprotected header, if any
}

// signatures returns the entries of the signatures array. Each entry must be
// an object with string members protected and signature, an optional object
// member header, and nothing else: a `payload` member would mean the entry
// signs something other than this card.
func (c *Card) signatures() ([]rawSignature, error) {
	if c.sigs < 0 {
		return nil, nil
	}
	m := c.members[c.sigs]
	arr := c.raw[m.valueStart:m.valueEnd]
	spans, err := arrayElements(arr)
	if err != nil {
		return nil, fmt.Errorf("agentcard: signatures: %w", err)
	}
	if len(spans) > maxSignatures {
		return nil, fmt.Errorf("agentcard: card has %d signatures, more than the %d allowed", len(spans), maxSignatures)
	}
	out := make([]rawSignature, len(spans))
	for i, sp := range spans {
		e := arr[sp[0]:sp[1]]
		// The card was validated as a whole, so re-scanning one entry only
		// collects its members; keys are exact, so "Protected" is unknown.
		fields, err := scanStrict(e)
		if err != nil || fields == nil {
			return nil, fmt.Errorf("agentcard: signatures[%d] is not an object", i)
		}
		for _, f := range fields {
			v := e[f.valueStart:f.valueEnd]
			var err error
			switch f.key {
			case "protected":
				out[i].protected, err = jsonStringValue(v)
			case "signature":
				out[i].signature, err = jsonStringValue(v)
			case "header":
				if v[0] != '{' {
					err = errNotObject
				}
				out[i].header = v
			default:
				return nil, fmt.Errorf("agentcard: signatures[%d] has unexpected member %q", i, truncate(f.key))
			}
			if err != nil {
				return nil, fmt.Errorf("agentcard: signatures[%d].%s has the wrong type", i, f.key)
			}
		}
	}
	return out, nil
}

// appendSignature returns the card with one more entry at the end of its
// signatures array (creating the array if needed), indented with two spaces.
// Every other member keeps its bytes: json.Indent changes only whitespace.
func (c *Card) appendSignature(protected, signature string) ([]byte, error) {
	entry, err := json.Marshal(struct {
		Protected string `json:"protected"`
		Signature string `json:"signature"`
	}{protected, signature})
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(len(c.raw) + len(entry) + 32)
	b.WriteByte('{')
	for i, m := range c.members {
		if i == c.sigs {
			continue
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.Write(c.raw[m.start:m.valueEnd])
	}
	if b.Len() > 1 {
		b.WriteByte(',')
	}
	b.WriteString(`"signatures":[`)
	if c.sigs >= 0 {
		m := c.members[c.sigs]
		old := bytes.TrimSpace(c.raw[m.valueStart+1 : m.valueEnd-1])
		if len(old) > 0 {
			b.Write(old)
			b.WriteByte(',')
		}
	}
	b.Write(entry)
	b.WriteString("]}")
	var out bytes.Buffer
	out.Grow(b.Len() * 5 / 4)
	if err := json.Indent(&out, b.Bytes(), "", "  "); err != nil {
		return nil, fmt.Errorf("agentcard: formatting the signed card: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// truncate shortens attacker-controlled text before it goes into an error.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
