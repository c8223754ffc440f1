package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/agentid/agentid/internal/jcs"
)

// CanonicalJSON returns the canonical form of a policy document (AIP
// v1alpha2 §5.2.1, DESIGN decision 12): the YAML (or JSON) document parsed
// into a generic tree exactly as written, with no defaults applied and
// metadata.signature removed, serialized with RFC 8785 (JCS).
//
// Comments, key order, quoting style, indentation and YAML anchors do not
// affect the result; any change of a value, key or list order does. YAML
// timestamps stay the strings they were written as (the YAML decoder keeps
// them as strings); numbers are formatted as JCS prescribes (IEEE 754
// doubles, so integers beyond 2^53 lose precision, as in every JCS
// implementation).
//
// The result is a function of raw alone. A document that the loader would
// refuse as YAML has no canonical form: duplicate keys, keys that become the
// same JSON member name ("0" and +0, "true" and yes, a << merge and an
// explicit key, ...), non-string keys, a second document or trailing
// content, non-finite numbers, excessive nesting or alias expansion. The
// error names the field path and, for keys, every spelling involved.
//
// The policy hash and the Ed25519 policy signature are both computed over
// these bytes.
func CanonicalJSON(raw []byte) ([]byte, error) {
	if len(raw) > MaxDocumentSize {
		return nil, fmt.Errorf("policy: canonical form: document is larger than %d bytes", MaxDocumentSize)
	}
	js, err := yamlToJSON(raw)
	if err != nil {
		return nil, &canonicalError{err}
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("policy: canonical form: %w", err)
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, errors.New("policy: canonical form: document must be a mapping")
	}
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "signature")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("policy: canonical form: %w", err)
	}
	out, err := jcs.Transform(bytes.TrimSpace(buf.Bytes()))
	if err != nil {
		return nil, fmt.Errorf("policy: canonical form: %w", err)
	}
	return out, nil
}

// canonicalError is a document that has no canonical form: the *LoadError
// that Parse would report for it, under a "canonical form" prefix.
type canonicalError struct{ err error }

func (e *canonicalError) Error() string {
	return "policy: canonical form: " + strings.TrimPrefix(e.err.Error(), "policy: ")
}

func (e *canonicalError) Unwrap() error { return e.err }

// HashCanonical returns the policy hash of a document: 64 lowercase hex
// characters of SHA-256 over CanonicalJSON(raw) (§5.2.2).
func HashCanonical(raw []byte) (string, error) {
	c, err := CanonicalJSON(raw)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}

// Hash returns the policy hash of p, computed from p.Raw (the document as
// read): 64 lowercase hex characters of SHA-256 over the canonical form.
// It is the value identity tokens carry in policy_hash and /health reports.
func (p *Policy) Hash() (string, error) {
	if len(p.Raw) == 0 {
		return "", errors.New("policy: hash: policy has no raw document (construct it with Load or Parse)")
	}
	return HashCanonical(p.Raw)
}
