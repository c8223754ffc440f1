package agentcard

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// kagentiPayload reproduces the Kagenti signer's "canonical" JSON of a card,
// so that cards it signed can be verified in CompatKagenti mode. It is not
// RFC 8785 and we never sign with it. The algorithm (its
// CreateCanonicalCardJSON): decode the card into generic maps, delete
// signatures, remove empty values (null, "", [] and {}) from objects but not
// from inside arrays, and marshal with Go's encoding/json, which sorts keys
// by bytes, writes float64 numbers in Go's format and HTML-escapes <, > and &.
//
// Kagenti decoded the card into a struct first and so dropped every field it
// did not know before signing and verifying. We do not: an unknown field in a
// served card is part of what we check, so a Kagenti-signed card that an
// intermediary extended fails here, as it should.
func kagentiPayload(c *Card) ([]byte, error) {
	// The card already passed the strict scanner: no duplicate keys, so the
	// map holds exactly the card's members.
	var m map[string]any
	if err := json.Unmarshal(c.raw, &m); err != nil {
		return nil, fmt.Errorf("agentcard: kagenti canonical form: %w", err)
	}
	delete(m, signaturesKey)
	removeEmpty(m)
	out, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("agentcard: kagenti canonical form: %w", err)
	}
	return out, nil
}

// removeEmpty deletes null, "", [] and {} values from m, recursing into
// nested objects (first, so an object emptied by the recursion goes too) but
// not into arrays, as Kagenti does.
func removeEmpty(m map[string]any) {
	for k, v := range m {
		switch val := v.(type) {
		case nil:
			delete(m, k)
		case string:
			if val == "" {
				delete(m, k)
			}
		case []any:
			if len(val) == 0 {
				delete(m, k)
			}
		case map[string]any:
			removeEmpty(val)
			if len(val) == 0 {
				delete(m, k)
			}
		}
	}
}

// kagentiKeyID is the Kagenti signer's kid: the lowercase hex of the first 8
// bytes of the leaf certificate's SHA-256.
func kagentiKeyID(thumb []byte) string {
	return hex.EncodeToString(thumb[:8])
}
